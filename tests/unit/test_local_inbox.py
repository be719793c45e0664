"""The local inbox: which folders are deliveries, when one is ready, and the watcher's promises.

Watcher tests run real threads against a real folder with a short poll and
settle time; they wait on conditions with deadlines, never on fixed sleeps
alone, and prove each "nothing happened" with a later positive control where
they can.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firstlight.checks.verify import verify_files
from firstlight.domain.manifest import MANIFEST_NAME, Manifest, raw_identity
from firstlight.events import local_inbox
from firstlight.events.arrival import Arrival, CollectingSink
from firstlight.events.local_inbox import InboxWatcher, find_deliveries, readiness
from firstlight.producer.manifest_builder import write_manifest
from tests.deliveries import generated

POLL = 0.05
SETTLE = 0.3
QUIET = 0.4  # eight polls: long enough for a watcher to have acted if it were going to
DEADLINE = 5.0
FILES = {"a.dat": b"alpha " * 50, "sub/b.dat": b"beta " * 80}


# --- making deliveries -------------------------------------------------------------------------


def manifest_for(
    files: dict[str, bytes], *, delivery_id: str = "d-001", producer: str = "unit tests"
) -> Manifest:
    return Manifest.model_validate(
        {
            "mission": "testmission",
            "delivery_id": delivery_id,
            "release": {"name": "dr1", "version": "1"},
            "producer": producer,
            "created": "2026-01-02T03:04:05Z",
            "files": [
                {
                    "path": path,
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "product_type": "auxiliary",
                    "format": "other",
                }
                for path, data in files.items()
            ],
        }
    )


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def deliver(folder: Path, files: dict[str, bytes] = FILES, **kwargs: str) -> str:
    """Data first, manifest last (atomically); return the manifest's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    write_files(folder, files)
    path = write_manifest(
        folder, manifest_for(files, delivery_id=folder.name.lstrip("."), **kwargs)
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- watching ----------------------------------------------------------------------------------


@contextmanager
def watching(
    inbox: Path, sink: CollectingSink | None = None, *, settle: float = SETTLE
) -> Iterator[CollectingSink]:
    sink = sink or CollectingSink()
    with InboxWatcher(inbox, sink, settle_seconds=settle, poll_seconds=POLL):
        yield sink


def wait_for(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


def arrivals_at(sink: CollectingSink, n: int) -> list[Arrival]:
    wait_for(lambda: len(sink.arrivals) >= n)
    return list(sink.arrivals)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


# --- find_deliveries and readiness -------------------------------------------------------------


def test_find_deliveries_at_depth_one_and_two_skipping_hidden_and_symlinks(
    inbox: Path, tmp_path: Path
) -> None:
    deliver(inbox / "d1")
    deliver(inbox / "s3" / "d2")
    deliver(inbox / ".s3-staging" / "d3")  # a downloader's private staging area
    deliver(inbox / "s3" / ".partial")
    deliver(inbox / "g" / "h" / "too-deep")
    write_files(inbox / "d1" / "sub", {MANIFEST_NAME: b"{}"})  # a delivery's data, not another
    (inbox / "empty").mkdir()
    deliver(tmp_path / "outside")
    (inbox / "linked").symlink_to(tmp_path / "outside")
    (inbox / "linked-group").symlink_to(tmp_path)

    assert find_deliveries(inbox) == [inbox / "d1", inbox / "s3" / "d2"]
    assert find_deliveries(tmp_path / "no-such-inbox") == []


def test_complete_delivery_is_ready_with_its_arrival(inbox: Path) -> None:
    sha = deliver(inbox / "d1")

    state = readiness(inbox / "d1")

    assert state.ready and state.manifest_parsed and state.waiting_for == []
    assert state.arrival == Arrival(
        mission="testmission",
        delivery_id="d1",
        location=str((inbox / "d1").resolve()),
        manifest_sha256=sha,
        source="inbox",
    )


def test_missing_and_short_files_are_waited_for(inbox: Path) -> None:
    folder = inbox / "d1"
    folder.mkdir()
    write_manifest(folder, manifest_for(FILES, delivery_id="d1"))
    (folder / "a.dat").write_bytes(FILES["a.dat"][:10])

    state = readiness(folder)

    assert not state.ready and state.manifest_parsed
    assert state.waiting_for == ["a.dat", "sub/b.dat"]
    assert "a.dat (10 of 300 bytes)" in state.reason and "sub/b.dat (absent)" in state.reason
    assert state.arrival is not None and state.arrival.delivery_id == "d1"


@pytest.mark.parametrize(
    ("content", "identity"),
    [
        (b'{"mission": "gaia", "delivery_id": "g-1", "files": 3}', ("gaia", "g-1")),
        (b'{"mission": "gaia"', ("_unknown", "broken")),
        (b"\xff\xfe not even text", ("_unknown", "broken")),
        (b'{"mission": "", "delivery_id": "g-1"}', ("_unknown", "broken")),
    ],
)
def test_unparseable_manifest_is_not_ready_but_has_an_identity(
    inbox: Path, content: bytes, identity: tuple[str, str]
) -> None:
    write_files(inbox / "broken", {MANIFEST_NAME: content})

    state = readiness(inbox / "broken")

    assert not state.ready and not state.manifest_parsed
    assert state.reason.startswith("manifest.json does not parse")
    assert state.manifest_sha256 == hashlib.sha256(content).hexdigest()
    assert state.arrival is not None
    assert (state.arrival.mission, state.arrival.delivery_id) == identity
    # Admission names the ledger line by the same rule (domain.manifest.raw_identity).
    assert raw_identity(content, "broken") == identity


def test_manifest_that_is_not_a_file_is_not_read(inbox: Path) -> None:
    (inbox / "odd" / MANIFEST_NAME).mkdir(parents=True)
    (inbox / "fifo-delivery").mkdir()
    os.mkfifo(inbox / "fifo-delivery" / MANIFEST_NAME)

    for name in ("odd", "fifo-delivery"):
        state = readiness(inbox / name)  # must not block on the FIFO
        assert not state.ready and "not a regular file" in state.reason
        assert state.manifest_sha256 == hashlib.sha256(b"").hexdigest()  # as admission hashes it


# --- the watcher -------------------------------------------------------------------------------


def test_delivery_with_manifest_written_last_is_announced_once(inbox: Path) -> None:
    with watching(inbox) as sink:
        folder = generated(inbox, rows=50)
        [arrival] = arrivals_at(sink, 1)
        time.sleep(QUIET)

    assert sink.arrivals == [arrival]
    assert arrival == Arrival(
        mission="demo",
        delivery_id="demo-v1",
        location=str(folder.resolve()),
        manifest_sha256=hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest(),
        source="inbox",
        landed_at=arrival.landed_at,
    )
    assert arrival.landed_at is not None
    assert arrival.payload()["landed_at"] == arrival.landed_at.isoformat()


def test_folder_moved_in_with_old_timestamps_lands_when_seen_complete(
    inbox: Path, tmp_path: Path
) -> None:
    """`mv` keeps the producer's mtimes: time-to-data must not start at them."""
    old = generated(tmp_path / "producer", rows=50)
    two_hours_ago = time.time() - 7200
    for path in [old, *old.rglob("*")]:
        os.utime(path, (two_hours_ago, two_hours_ago))
    with watching(inbox) as sink:
        moved_at = datetime.now(UTC)
        old.rename(inbox / old.name)
        [arrival] = arrivals_at(sink, 1)

    assert arrival.landed_at is not None and arrival.landed_at >= moved_at
    assert (inbox / old.name / MANIFEST_NAME).stat().st_mtime < two_hours_ago + 1


def test_manifest_first_waits_for_data_written_in_pieces(inbox: Path) -> None:
    folder = inbox / "d1"
    folder.mkdir()
    # A long settle time: the announcement must come from completeness, not from giving up.
    with watching(inbox, settle=60) as sink:
        write_manifest(folder, manifest_for(FILES, delivery_id="d1"))
        (folder / "a.dat").write_bytes(FILES["a.dat"][:100])
        time.sleep(QUIET)
        assert sink.arrivals == []
        with (folder / "a.dat").open("ab") as fh:
            fh.write(FILES["a.dat"][100:])
        write_files(folder, {"sub/b.dat": FILES["sub/b.dat"][:-1]})
        time.sleep(QUIET)
        assert sink.arrivals == []

        with (folder / "sub" / "b.dat").open("ab") as fh:
            fh.write(FILES["sub/b.dat"][-1:])
        [arrival] = arrivals_at(sink, 1)
        time.sleep(QUIET)

    assert len(sink.arrivals) == 1
    assert arrival.delivery_id == "d1"


def test_short_file_is_announced_after_settle_for_verification_to_reject(inbox: Path) -> None:
    folder = inbox / "d1"
    folder.mkdir()
    settle = 1.0
    with watching(inbox, settle=settle) as sink:
        write_files(folder, {**FILES, "a.dat": FILES["a.dat"][:-5]})
        manifest = manifest_for(FILES, delivery_id="d1")
        write_manifest(folder, manifest)
        written = time.monotonic()
        time.sleep(settle / 2)
        assert sink.arrivals == []

        [arrival] = arrivals_at(sink, 1)
        assert time.monotonic() - written >= settle
        time.sleep(QUIET)

    assert len(sink.arrivals) == 1
    assert arrival.delivery_id == "d1"
    assert [f.check for f in verify_files(folder, manifest).findings] == ["verify.size"]


def test_rewritten_manifest_is_announced_again_touched_one_is_not(inbox: Path) -> None:
    folder = inbox / "d1"
    with watching(inbox) as sink:
        first_sha = deliver(folder)
        arrivals_at(sink, 1)

        os.utime(folder / MANIFEST_NAME)
        write_manifest(folder, manifest_for(FILES, delivery_id="d1"))  # same bytes, new inode
        time.sleep(QUIET)
        assert len(sink.arrivals) == 1

        write_manifest(folder, manifest_for(FILES, delivery_id="d1", producer="corrected"))
        first, second = arrivals_at(sink, 2)
        time.sleep(QUIET)

    assert len(sink.arrivals) == 2
    assert first.manifest_sha256 == first_sha
    assert (
        second.manifest_sha256 == hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()
    )
    assert second.manifest_sha256 != first_sha


def test_hidden_folders_are_ignored_and_depth_two_is_found(inbox: Path) -> None:
    with watching(inbox) as sink:
        deliver(inbox / ".s3-staging" / "staged")
        deliver(inbox / ".half-copied")
        time.sleep(QUIET)
        deliver(inbox / "s3" / "from-bucket")  # the positive control, written after
        [arrival] = arrivals_at(sink, 1)
        time.sleep(QUIET)

    assert sink.arrivals == [arrival]
    assert arrival.location == str((inbox / "s3" / "from-bucket").resolve())


def test_deliveries_already_there_are_announced_on_start(inbox: Path) -> None:
    deliver(inbox / "d1")
    deliver(inbox / "s3" / "d2")

    with watching(inbox) as sink:
        arrivals = arrivals_at(sink, 2)

    assert sorted(a.delivery_id for a in arrivals) == ["d1", "d2"]


def test_unparseable_manifest_is_announced_once_stable_for_settle(inbox: Path) -> None:
    folder = inbox / "broken"
    folder.mkdir()
    settle = 1.0
    with watching(inbox, settle=settle) as sink:
        (folder / MANIFEST_NAME).write_bytes(b'{"mission": "gaia", "delivery_id": "g-1"')
        time.sleep(settle * 0.6)
        assert sink.arrivals == []
        final = b'{"mission": "gaia", "delivery_id": "g-1", "files": []}'
        (folder / MANIFEST_NAME).write_bytes(final)  # changed bytes: the clock starts again
        changed = time.monotonic()

        [arrival] = arrivals_at(sink, 1)
        assert time.monotonic() - changed >= settle
        time.sleep(QUIET)

    assert len(sink.arrivals) == 1
    assert (arrival.mission, arrival.delivery_id) == ("gaia", "g-1")
    assert arrival.manifest_sha256 == hashlib.sha256(final).hexdigest()


def test_folder_that_disappears_is_forgotten(inbox: Path) -> None:
    with watching(inbox) as sink:
        sha = deliver(inbox / "d1")
        arrivals_at(sink, 1)
        shutil.rmtree(inbox / "d1")  # e.g. quarantined, then removed from the inbox
        time.sleep(QUIET)
        assert deliver(inbox / "d1") == sha  # delivered again: a new arrival of the same bytes
        arrivals = arrivals_at(sink, 2)

    assert [a.manifest_sha256 for a in arrivals] == [sha, sha]


def test_folder_moved_out_and_back_is_announced_again(inbox: Path, tmp_path: Path) -> None:
    with watching(inbox) as sink:
        sha = deliver(inbox / "d1")
        arrivals_at(sink, 1)
        (inbox / "d1").rename(tmp_path / "away")
        time.sleep(QUIET)
        (tmp_path / "away").rename(inbox / "d1")
        arrivals = arrivals_at(sink, 2)

    assert [a.manifest_sha256 for a in arrivals] == [sha, sha]


def test_watcher_survives_failing_checks_and_folders_deleted_mid_check(
    inbox: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_readiness = local_inbox.readiness

    def sabotaged(folder: Path, *, source: str = "inbox") -> local_inbox.Readiness:
        if folder.name == "doomed":
            shutil.rmtree(folder)  # gone between being found and being read
        if folder.name == "cursed":
            raise OSError("the disk said no")
        return real_readiness(folder, source=source)

    monkeypatch.setattr(local_inbox, "readiness", sabotaged)
    caplog.set_level(logging.ERROR, logger=local_inbox.__name__)
    with watching(inbox) as sink:
        deliver(inbox / "doomed")
        deliver(inbox / "cursed")
        wait_for(lambda: "checking delivery folder" in caplog.text)
        deliver(inbox / "fine")
        [arrival] = arrivals_at(sink, 1)

    assert arrival.delivery_id == "fine"
    assert not (inbox / "doomed").exists()


def test_failed_emit_is_retried(inbox: Path) -> None:
    class FlakySink(CollectingSink):
        failures = 2

        def emit(self, arrival: Arrival) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("event API unreachable")
            super().emit(arrival)

    sink = FlakySink()
    with watching(inbox, sink):
        deliver(inbox / "d1")
        arrivals_at(sink, 1)
        time.sleep(QUIET)

    assert len(sink.arrivals) == 1 and sink.failures == 0


def test_start_creates_the_inbox_and_stop_is_prompt_and_idempotent(tmp_path: Path) -> None:
    inbox = tmp_path / "not" / "yet"
    watcher = InboxWatcher(inbox, CollectingSink(), settle_seconds=SETTLE, poll_seconds=10.0)
    watcher.start()
    assert inbox.is_dir()
    threads = {t.name for t in threading.enumerate()}
    assert any(name.startswith("inbox-watcher:") for name in threads)

    started = time.monotonic()
    watcher.stop()
    assert time.monotonic() - started < 2.0
    watcher.stop()
    assert not any(t.name.startswith("inbox-watcher:") for t in threading.enumerate())
    with pytest.raises(RuntimeError):
        watcher.start()
