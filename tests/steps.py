"""The release steps in order without Prefect: how library tests run a delivery.

The order is ``services.pipeline.RELEASE_STEPS``, the one the flow follows too.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from firstlight.domain.ledger import Decision, Stage
from firstlight.services.context import Context
from firstlight.services.pipeline import RELEASE_STEPS, run_release
from firstlight.services.promotion import PromotionSummary, promote_release
from firstlight.services.ticket import Ticket
from firstlight.services.verification import Announced, admit_delivery
from firstlight.storage.schema import observations, products, release_tables, releases


def stage_release(ctx: Context, path: Path) -> Ticket:
    """Admit and every step before the gate: a staging release, not yet public."""
    ticket = admit_delivery(ctx, path)
    assert ticket.decision is Decision.PROCEED, ticket.reason
    for step in RELEASE_STEPS:
        if step.stage is Stage.GATE:
            return ticket
        step.run(ctx, ticket)
    raise AssertionError("RELEASE_STEPS has no gate step")


def release(ctx: Context, path: Path) -> PromotionSummary:
    ticket = stage_release(ctx, path)
    return promote_release(ctx, ticket)


def release_or_quarantine(ctx: Context, path: Path, announced: Announced | None = None) -> Ticket:
    """What the flow does, without Prefect (``services.pipeline``); ``announced``: the
    arrival event's identity."""
    return run_release(ctx, path, announced=announced).ticket


def archive_counts(ctx: Context) -> dict[str, int]:
    """Rows of the release tables and catalogue tables (SQLite): all zero = nothing left."""
    with ctx.archive.engine.connect() as conn:
        counts = {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (releases, products, observations, release_tables)
        }
        counts["catalogue_tables"] = int(
            conn.execute(
                text("SELECT count(*) FROM sqlite_master WHERE type='table' AND name LIKE 'cat_%'")
            ).scalar_one()
        )
    return counts
