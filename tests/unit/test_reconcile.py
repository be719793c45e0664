"""The reconciler finds deliveries that are due but have no ledger line: a missed event."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from firstlight.domain.manifest import MANIFEST_NAME
from firstlight.events.arrival import Arrival
from firstlight.events.reconcile import find_missed
from firstlight.producer.manifest_builder import write_manifest
from firstlight.services.context import Context
from firstlight.services.verification import admit_delivery
from tests.deliveries import generated
from tests.unit.test_local_inbox import FILES, deliver, manifest_for, write_files

SETTLE = 600.0
BROKEN = b'{"mission": "gaia", "delivery_id": "g-1", "files": 3}'


def _missed(ctx: Context) -> list[Arrival]:
    return find_missed(ctx.settings.inbox_dir, ctx.archive.ledger, settle_seconds=SETTLE)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_ready_delivery_without_ledger_line_is_missed_once_settled(ctx: Context) -> None:
    folder = generated(ctx.settings.inbox_dir, rows=50)
    assert _missed(ctx) == []  # its announcement may still be on its way
    _age(folder / MANIFEST_NAME, 2 * SETTLE)

    [arrival] = _missed(ctx)

    assert arrival == Arrival(
        mission="demo",
        delivery_id="demo-v1",
        location=str(folder.resolve()),
        manifest_sha256=hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest(),
        source="reconcile",
    )


def test_delivery_with_a_ledger_line_is_left_to_its_run(ctx: Context) -> None:
    inbox = ctx.settings.inbox_dir
    sha = deliver(inbox / "d1")
    deliver(inbox / "s3" / "d2")
    for name in ("d1", "s3/d2"):
        _age(inbox / name / MANIFEST_NAME, 2 * SETTLE)
    ctx.archive.ledger.admit(
        mission="testmission",
        delivery_id="d1",
        manifest_sha256=sha,
        release_key=None,
        location=str((inbox / "d1").resolve()),
        claim_token="run-1",
    )

    assert [a.delivery_id for a in _missed(ctx)] == ["d2"]


def test_same_delivery_with_new_bytes_is_missed_again(ctx: Context) -> None:
    folder = ctx.settings.inbox_dir / "d1"
    deliver(folder)
    admit_delivery(ctx, folder, claim_token="run-1")
    assert _missed(ctx) == []

    write_manifest(folder, manifest_for(FILES, delivery_id="d1", producer="corrected"))
    _age(folder / MANIFEST_NAME, 2 * SETTLE)

    [arrival] = _missed(ctx)
    assert (
        arrival.manifest_sha256 == hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()
    )


def test_incomplete_delivery_is_missed_only_once_settled(ctx: Context) -> None:
    folder = ctx.settings.inbox_dir / "d1"
    folder.mkdir()
    write_files(folder, {"a.dat": FILES["a.dat"]})
    write_manifest(folder, manifest_for(FILES, delivery_id="d1"))
    assert _missed(ctx) == []  # its files may still be on their way

    _age(folder / MANIFEST_NAME, 2 * SETTLE)

    # Its announcement may be the one that was lost: it must not wait for ever.
    [arrival] = _missed(ctx)
    assert arrival.delivery_id == "d1"


def test_unparseable_manifest_is_missed_once_settled(ctx: Context) -> None:
    folder = ctx.settings.inbox_dir / "broken"
    write_files(folder, {MANIFEST_NAME: BROKEN})
    assert _missed(ctx) == []  # still being written, perhaps

    _age(folder / MANIFEST_NAME, 2 * SETTLE)
    [arrival] = _missed(ctx)
    assert (arrival.mission, arrival.delivery_id) == ("gaia", "g-1")
    assert arrival.manifest_sha256 == hashlib.sha256(BROKEN).hexdigest()

    # Admission records it under the identity the reconciler named: found, not missed.
    admit_delivery(ctx, folder, claim_token="run-1")
    assert _missed(ctx) == []


def test_hidden_staging_folders_are_not_reconciled(ctx: Context) -> None:
    deliver(ctx.settings.inbox_dir / ".s3-staging" / "half")

    assert _missed(ctx) == []
