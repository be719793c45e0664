"""The database's disk fills up while a delivery is being ingested (issue 12 item 7).

The SQLite archive lives on a tmpfs of its own; when the ingest step begins, a ballast
file takes all but a few pages of it, so the catalogue's rows meet a real ``ENOSPC``
("database or disk is full") half-way. ``firstlight ingest`` must exit 4 (an
infrastructure failure, to retry) saying so, with nothing of the release public, the
ledger line ``processing`` with the failed ingest recorded and its claim given up, and
the delivery untouched in the inbox. Once the ballast is deleted, a rerun releases it.
With no room at all, not even the failure can be written: the claim then lapses by its
lease, as after a kill.
Mounting needs root: elsewhere the case is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import firstlight.services.pipeline as pipeline
from firstlight.cli import app
from firstlight.config import Settings
from firstlight.domain.ledger import DeliveryState, Stage
from firstlight.domain.release import ReleaseState
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.services.pipeline import RELEASE_STEPS
from firstlight.services.ticket import Ticket
from firstlight.storage.schema import current_releases, deliveries, observations
from tests.deliveries import generated, tree_digest
from tests.faults import invariants
from tests.faults.conftest import drop_in_inbox

KEY = "demo_dr1_v1"
ROWS = 8000  # more than LEFT_FREE in SQLite, loaded in one transaction
# Free space left when ingest begins: room for the ledger's small writes (which reuse the
# failed transaction's pages of the write-ahead log) but not the catalogue, or none.
LEFT_FREE = {"ledger": 512 << 10, "none": 0}


@pytest.fixture
def db_disk(
    fault_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A 64 MiB tmpfs holding the archive database (its folder)."""
    disk = tmp_path / "db-disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)]
    done = shutil.which("mount") and subprocess.run(mount, check=False, capture_output=True)
    if not done or done.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    monkeypatch.setenv("FIRSTLIGHT_DATABASE_URL", f"sqlite:///{disk / 'archive.db'}")
    try:
        yield disk
    finally:
        close_contexts()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A ballast file taking all of ``disk`` but ``leave`` bytes (written, so allocated)."""
    ballast = disk / "ballast"
    stat = os.statvfs(disk)
    size = stat.f_bavail * stat.f_frsize - leave
    chunk = b"\0" * (1 << 20)
    with ballast.open("wb") as fh:
        while size > 0:
            size -= fh.write(chunk[: min(size, len(chunk))])
    return ballast


@pytest.mark.faults  # 30 to 70 s each on the loaded 2-core machine: `make faults` only
@pytest.mark.parametrize(
    "room",
    [
        "ledger",  # the catalogue's transaction fails; its pages serve the ledger's writes
        "none",  # nothing can be written: the lease decides
    ],
)
def test_database_disk_full_during_ingest_then_rerun_releases(
    db_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: str
) -> None:
    ctx: Context = context_for(Settings())
    original = generated(tmp_path / "producer", rows=ROWS)
    inbox_copy = drop_in_inbox(ctx, original)

    ballast: list[Path] = []

    def fill_then_ingest(ctx: Context, ticket: Ticket) -> object:
        ballast.append(_fill(db_disk, LEFT_FREE[room]))
        return pipeline.ingest(ctx, ticket)

    steps = tuple(
        replace(s, run=fill_then_ingest, reports_rows=False) if s.stage is Stage.INGEST else s
        for s in pipeline.RELEASE_STEPS
    )
    monkeypatch.setattr(pipeline, "RELEASE_STEPS", steps)
    failed = CliRunner().invoke(app, ["ingest", str(inbox_copy)])
    assert ballast, failed.output
    assert failed.exit_code == 4, failed.output
    assert "database or disk is full" in failed.output, failed.output

    entry = ctx.archive.ledger.latest_at(str(inbox_copy))
    assert entry is not None and entry.state is DeliveryState.PROCESSING
    stages = ctx.archive.ledger.stages(entry.delivery_pk)
    ingest = [s for s in stages if s.stage is Stage.INGEST]
    with ctx.archive.engine.connect() as conn:
        claimed_at = conn.execute(
            select(deliveries.c.claimed_at).where(deliveries.c.id == entry.delivery_pk)
        ).scalar_one()
    if room == "ledger":
        assert [s.outcome for s in ingest] == ["failed"], stages
        assert ingest[0].detail is not None and "disk is full" in ingest[0].detail
        assert claimed_at is None, "claim not given up"
    else:
        # Not even the failure could be written: the ledger says what it last could, and
        # the claim stays until its lease runs out (then the reconciler hands it on).
        assert ingest == [] and claimed_at is not None, stages
        time.sleep(ctx.archive.ledger.lease_seconds + 0.5)
        assert [e.delivery_pk for e in ctx.archive.ledger.lapsed()] == [entry.delivery_pk]
    assert tree_digest(inbox_copy) == tree_digest(original), "the delivery was touched"
    release = ctx.archive.releases.get(KEY)
    assert release is None or (release.state is ReleaseState.STAGING and not release.current)
    with ctx.archive.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(current_releases)).scalar_one() == 0
    assert not [p for p in ctx.settings.public_dir.rglob("*") if p.is_file()]

    # Space is freed; the same command again.
    ballast[0].unlink()
    monkeypatch.setattr(pipeline, "RELEASE_STEPS", RELEASE_STEPS)
    again = CliRunner().invoke(app, ["ingest", str(inbox_copy)])
    assert again.exit_code == 0, again.output
    entry = ctx.archive.ledger.entry(entry.delivery_pk)
    assert entry.state is DeliveryState.RELEASED and entry.attempts == 2, entry
    release = ctx.archive.releases.get(KEY)
    assert release is not None and release.state is ReleaseState.PROMOTED and release.current
    assert not inbox_copy.exists()
    with ctx.archive.engine.connect() as conn:
        loaded = conn.execute(select(func.count()).select_from(observations)).scalar_one()
    assert loaded > 0
    invariants.every_delivery_terminal(ctx, expected=1)
    assert invariants.public_files_match(ctx) > 0
    invariants.current_never_older(ctx)
