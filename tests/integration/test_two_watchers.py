"""Two watchers see one delivery: two announcements, one release."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from firstlight.domain.ledger import Decision, DeliveryState
from firstlight.events.arrival import CollectingSink
from firstlight.events.local_inbox import InboxWatcher
from firstlight.services.context import Context
from firstlight.services.verification import Announced
from tests.deliveries import generated
from tests.steps import release_or_quarantine
from tests.unit.test_local_inbox import arrivals_at


def test_two_watchers_one_delivery_one_release(ctx: Context) -> None:
    inbox = ctx.settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    sinks = [CollectingSink(), CollectingSink()]
    watchers = [InboxWatcher(inbox, s, settle_seconds=30, poll_seconds=0.05) for s in sinks]
    for w in watchers:
        w.start()
    try:
        generated(inbox, rows=500)
        announced = [arrivals_at(s, 1)[0] for s in sinks]
    finally:
        for w in watchers:
            w.stop()
    # The same delivery; each watcher saw it complete at its own instant (its landed_at).
    assert replace(announced[0], landed_at=None) == replace(announced[1], landed_at=None)

    decisions: list[Decision] = []
    runs = [
        threading.Thread(
            target=lambda a=a: decisions.append(
                release_or_quarantine(
                    ctx,
                    Path(a.location),
                    Announced(a.mission, a.delivery_id, a.manifest_sha256),
                ).decision
            )
        )
        for a in announced
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)

    assert sorted(decisions) == [Decision.PROCEED, Decision.SKIP]
    [entry] = ctx.archive.ledger.entries()
    assert entry.state is DeliveryState.RELEASED and entry.attempts == 1
    assert [r.release_key for r in ctx.archive.releases.list_releases()] == ["demo_dr1_v1"]


def test_event_arriving_after_its_delivery_left_the_inbox_is_skipped(ctx: Context) -> None:
    path = generated(ctx.settings.inbox_dir, rows=300)
    first = release_or_quarantine(ctx, path)
    assert first.decision is Decision.PROCEED and not path.exists()  # released, inbox cleared

    late = release_or_quarantine(
        ctx, path, Announced(first.mission, first.delivery_id, first.manifest_sha256)
    )

    assert late.decision is Decision.SKIP and "left the inbox" in late.reason
    [entry] = ctx.archive.ledger.entries()  # no second line for an empty folder
    assert entry.state is DeliveryState.RELEASED
