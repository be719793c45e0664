"""Hostile deliveries end in a terminal state by themselves, and never stop the others
(issue 12 items 2 and 5).

Each is quarantined byte-identical with a reason or, where it cannot be copied
byte-identically in bounded space (FIFOs, sockets, sparse files), recorded
rejected with the reason and left untouched where it lies.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import firstlight.services.quarantine as quarantine
from firstlight.domain.ledger import DeliveryState
from firstlight.domain.manifest import MANIFEST_NAME
from firstlight.events.reconcile import find_missed
from firstlight.producer.manifest_builder import build_manifest, write_manifest
from firstlight.services.context import Context
from firstlight.services.verification import admit_delivery
from tests.faults import invariants
from tests.faults.conftest import drop_in_inbox
from tests.steps import release_or_quarantine

SPARSE_BYTES = 64 << 20


def small_delivery(root: Path, name: str) -> Path:
    """A valid delivery of one small auxiliary file, its manifest written last."""
    path = root / name
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("observing log\n" * 50)
    write_manifest(
        path,
        build_manifest(
            path,
            mission="demo",
            delivery_id=name,
            release_name="dr1",
            release_version=name.rsplit("-", 1)[-1],
            producer="tests",
        ),
    )
    return path


def _fifo_listed(path: Path) -> None:
    (path / "notes.txt").unlink()
    os.mkfifo(path / "notes.txt")


def _fifo_unlisted(path: Path) -> None:
    os.mkfifo(path / "pipe")


def _fifo_manifest(path: Path) -> None:
    (path / MANIFEST_NAME).unlink()
    os.mkfifo(path / MANIFEST_NAME)


def _socket_unlisted(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path / "s"))


def _recursion_bomb(path: Path) -> None:
    (path / MANIFEST_NAME).write_bytes(b"[" * 100_000 + b"]" * 100_000)


def _undecodable(path: Path) -> None:
    (path / MANIFEST_NAME).write_bytes(b"\xff\xfe{\x00\x00 not json \xc3\x28")


def _huge_number(path: Path) -> None:
    (path / MANIFEST_NAME).write_bytes(b'{"mission": ' + b"9" * 6000 + b"}")


def _sparse_declared_small(path: Path) -> None:
    with (path / "notes.txt").open("r+b") as f:
        f.truncate(SPARSE_BYTES)  # apparent 64 MiB, nothing allocated; manifest says ~700 B


def _sparse_declared_honestly(path: Path) -> None:
    (path / "notes.txt").unlink()
    with (path / "zeros.bin").open("wb") as f:
        f.truncate(SPARSE_BYTES)
    (path / MANIFEST_NAME).unlink()
    write_manifest(
        path,
        build_manifest(
            path,
            mission="demo",
            delivery_id=path.name,
            release_name="dr1",
            release_version=path.name.rsplit("-", 1)[-1],
            producer="tests",
        ),
    )


# name -> (how the delivery is spoilt, its terminal state, copied to quarantine?, reason has)
CASES: dict[str, tuple[Callable[[Path], None], DeliveryState, bool, str]] = {
    "fifo-listed": (_fifo_listed, DeliveryState.REJECTED, False, "named pipe"),
    "fifo-unlisted": (_fifo_unlisted, DeliveryState.REJECTED, False, "named pipe"),
    "fifo-manifest": (_fifo_manifest, DeliveryState.REJECTED, False, "not a regular file"),
    "socket": (_socket_unlisted, DeliveryState.REJECTED, False, "socket"),
    "recursion-bomb": (_recursion_bomb, DeliveryState.QUARANTINED, True, "nested too deeply"),
    "undecodable": (_undecodable, DeliveryState.QUARANTINED, True, "not valid JSON"),
    "huge-number": (_huge_number, DeliveryState.QUARANTINED, True, "not valid JSON"),
    "sparse-small": (_sparse_declared_small, DeliveryState.REJECTED, False, "sparse"),
    "sparse-honest": (_sparse_declared_honestly, DeliveryState.REJECTED, False, "sparse"),
}
FAST = ("fifo-listed", "recursion-bomb", "sparse-small")


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """(mode, size, bytes of small regular files) of everything under root, links unfollowed."""
    seen = {}
    for current, _, files in os.walk(root):
        for name in files:
            path = Path(current) / name
            st = path.lstat()
            small = path.is_file() and st.st_blocks * 512 >= st.st_size
            seen[path.relative_to(root).as_posix()] = (
                st.st_mode,
                st.st_size,
                path.read_bytes() if small else None,
            )
    return seen


def _hostile(ctx: Context, case: str, tmp_path: Path) -> None:
    spoil, state, copied, reason = CASES[case]
    original = small_delivery(tmp_path / "producer", f"hostile-{case}-1")
    spoil(original)
    inbox_copy = ctx.settings.inbox_dir / original.name
    inbox_copy.parent.mkdir(parents=True, exist_ok=True)
    original.rename(inbox_copy)  # a FIFO or socket cannot be copied: move it whole
    before = _snapshot(inbox_copy)
    used_before = _disk_used(ctx.settings.data_dir)

    ticket = release_or_quarantine(ctx, inbox_copy)

    entry = ctx.archive.ledger.entry(ticket.delivery_pk)
    assert entry.state is state, (entry.state, entry.reason)
    assert entry.reason is not None and reason in entry.reason, entry.reason
    invariants.every_delivery_terminal(ctx, expected=1)
    if copied:
        assert entry.quarantine_path is not None and not inbox_copy.exists()
        copy = Path(entry.quarantine_path) / "delivery"
        assert _snapshot(copy).keys() == before.keys()
        assert {k: v[2] for k, v in _snapshot(copy).items()} == {k: v[2] for k, v in before.items()}
        report = json.loads((Path(entry.quarantine_path) / "report.json").read_text())
        assert reason in report["reason"]
    else:  # rejected and left untouched; no quarantine folder, not even a partial one
        assert entry.quarantine_path is None
        assert _snapshot(inbox_copy) == before
        assert not any(ctx.settings.quarantine_dir.rglob("delivery"))
        # Bounded space: nothing anywhere grew by the sparse file's apparent size.
        assert _disk_used(ctx.settings.data_dir) - used_before < SPARSE_BYTES // 4


def _disk_used(root: Path) -> int:
    return sum(
        (Path(d) / f).lstat().st_blocks * 512 for d, _, files in os.walk(root) for f in files
    )


@pytest.mark.parametrize("case", FAST)
def test_hostile_delivery_fast(lite: Context, case: str, tmp_path: Path) -> None:
    _hostile(lite, case, tmp_path)


@pytest.mark.faults
@pytest.mark.parametrize("case", sorted(set(CASES) - set(FAST)))
def test_hostile_delivery(lite: Context, case: str, tmp_path: Path) -> None:
    _hostile(lite, case, tmp_path)


def test_poison_deliveries_do_not_stop_the_reconciler(lite: Context, tmp_path: Path) -> None:
    """Poison folders sit in the inbox; the one whose event was lost is still found."""
    for case in ("recursion-bomb", "fifo-manifest", "undecodable"):
        poison = small_delivery(tmp_path / "producer", f"poison-{case}-1")
        CASES[case][0](poison)
        poison.rename(lite.settings.inbox_dir / poison.name)
    good = drop_in_inbox(lite, small_delivery(tmp_path / "producer", "good-2"))
    missed = find_missed(lite.settings.inbox_dir, lite.archive.ledger, settle_seconds=0)
    assert str(good.resolve()) in {a.location for a in missed}
    # Every poison one gets its ledger line (and a reason) too, once admitted.
    for arrival in missed:
        admit_delivery(lite, Path(arrival.location))
    assert {e.delivery_id for e in lite.archive.ledger.entries()} >= {"good-2"}


def test_quarantine_disk_full_leaves_no_partial_copy(
    lite: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No room for the copy: an infrastructure error; the delivery waits intact for a rerun."""
    original = small_delivery(tmp_path / "producer", "full-1")
    _undecodable(original)
    inbox_copy = drop_in_inbox(lite, original)
    monkeypatch.setattr(quarantine, "FREE_SPACE_RESERVE_BYTES", 1 << 62)
    with pytest.raises(OSError, match="quarantine disk full"):
        release_or_quarantine(lite, inbox_copy)
    assert not any(lite.settings.quarantine_dir.rglob("delivery"))
    assert _snapshot(inbox_copy) == _snapshot(original)
    monkeypatch.undo()
    time.sleep(1.5)  # the failed run's claim (a one-second lease here) lapses
    ticket = release_or_quarantine(lite, inbox_copy)
    assert lite.archive.ledger.entry(ticket.delivery_pk).state is DeliveryState.QUARANTINED
    assert invariants.quarantine_identical(lite, {"full-1": original}) == 1
