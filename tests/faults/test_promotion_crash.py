"""kill -9 around promotion's switch: the crash leaves the old state or the new one, and
a rerun finishes the job (issue 12 item 1).

Before the switch and the ledger's terminal state shared one transaction, a kill
between them left the release current, the delivery `processing`, and every rerun
failing with "promoted and immutable". The last case rebuilds that wedge by hand
(an archive written by an older version) and shows admission closing it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firstlight.domain.ledger import Decision, DeliveryState
from firstlight.domain.release import ReleaseState
from firstlight.services.context import Context
from firstlight.services.inbox import settle_duplicate
from firstlight.services.ticket import Ticket
from tests.deliveries import generated
from tests.faults import invariants
from tests.faults.conftest import drop_in_inbox
from tests.steps import release_or_quarantine, stage_release

REPO = Path(__file__).resolve().parents[2]
KEY = "demo_dr1_v1"


def _crash(ctx: Context, ticket: Ticket, point: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    ticket_file = tmp_path / "ticket.json"
    ticket_file.write_text(json.dumps(dataclasses.asdict(ticket)))
    env = {**os.environ, "FIRSTLIGHT_DATA_DIR": str(ctx.settings.data_dir)}
    if ctx.settings.database_url:
        env["FIRSTLIGHT_DATABASE_URL"] = ctx.settings.database_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.crash_promotion", str(ticket_file), point],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    return proc


def _state(ctx: Context, pk: int) -> tuple[DeliveryState, ReleaseState | None, bool]:
    release = ctx.archive.releases.get(KEY)
    entry = ctx.archive.ledger.entry(pk)
    current = bool(release and release.current)
    return entry.state, None if release is None else release.state, current


def _rerun_finishes(ctx: Context, inbox_copy: Path, original: Path) -> None:
    ticket = release_or_quarantine(ctx, inbox_copy)
    if ticket.decision is Decision.SKIP:
        settle_duplicate(ctx, ticket)  # what the flow does with a skipped arrival
    assert _state(ctx, ticket.delivery_pk) == (
        DeliveryState.RELEASED,
        ReleaseState.PROMOTED,
        True,
    )
    assert not inbox_copy.exists(), "a released delivery stays in the inbox"
    invariants.every_delivery_terminal(ctx, expected=1)
    assert invariants.public_files_match(ctx) > 0
    invariants.current_never_older(ctx)


def _kill_at(ctx: Context, point: str, tmp_path: Path) -> None:
    original = generated(tmp_path / "producer", rows=300)
    inbox_copy = drop_in_inbox(ctx, original)
    ticket = stage_release(ctx, inbox_copy)
    proc = _crash(ctx, ticket, point, tmp_path)
    invariants.no_process_left([proc])

    state = _state(ctx, ticket.delivery_pk)
    if point == "after-commit":  # the new state, whole
        assert state == (DeliveryState.RELEASED, ReleaseState.PROMOTED, True)
        assert inbox_copy.is_dir(), "the kill came before the inbox copy was removed"
    else:  # the old state, whole: nothing public, the delivery still being worked on
        assert state == (DeliveryState.PROCESSING, ReleaseState.STAGING, False)
    _rerun_finishes(ctx, inbox_copy, original)


def test_kill_between_switch_and_ledger_sqlite(lite: Context, tmp_path: Path) -> None:
    """The fast case, in `make test`: the kill lands inside the one transaction."""
    _kill_at(lite, "after-switch", tmp_path)


@pytest.mark.faults
@pytest.mark.parametrize("point", ["before-switch", "after-switch", "after-commit"])
def test_kill_around_the_switch(archive: Context, point: str, tmp_path: Path) -> None:
    _kill_at(archive, point, tmp_path)


@pytest.mark.faults
def test_wedge_left_by_an_older_version_is_closed_from_the_switch(
    archive: Context, tmp_path: Path
) -> None:
    """Switch committed, ledger never closed (promotion before this fix): a rerun settles it."""
    original = generated(tmp_path / "producer", rows=300)
    inbox_copy = drop_in_inbox(archive, original)
    ticket = stage_release(archive, inbox_copy)
    for _, rec in archive.archive.releases.products(KEY):
        archive.public_store.put_file(inbox_copy / rec.path, rec.storage_key, rec.sha256)
    for product_id, _ in archive.archive.releases.products(KEY):
        archive.archive.releases.mark_stored(product_id)
    archive.archive.releases.promote(KEY)  # its own transaction, as the old code did
    assert _state(archive, ticket.delivery_pk)[0] is DeliveryState.PROCESSING
    _rerun_finishes(archive, inbox_copy, original)
    entry = archive.archive.ledger.entry(ticket.delivery_pk)
    assert entry.reason == f"released as {KEY}"
