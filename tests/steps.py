"""The release steps in order without Prefect: how library tests run a delivery."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text

from firstlight.domain.findings import DeliveryRejected
from firstlight.domain.ledger import Decision
from firstlight.services.context import Context
from firstlight.services.indexing import index_release
from firstlight.services.ingest import ingest
from firstlight.services.promotion import PromotionSummary, promote_release
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.ticket import Ticket
from firstlight.services.validation import validate
from firstlight.services.verification import Announced, admit_delivery, verify_delivery
from firstlight.storage.schema import observations, products, release_tables, releases


def stage_release(ctx: Context, path: Path) -> Ticket:
    """Admit, verify, validate, ingest and index: a staging release, not yet public."""
    ticket = admit_delivery(ctx, path)
    assert ticket.decision is Decision.PROCEED, ticket.reason
    verify_delivery(ctx, ticket)
    validate(ctx, ticket)
    ingest(ctx, ticket)
    index_release(ctx, ticket)
    return ticket


def release(ctx: Context, path: Path) -> PromotionSummary:
    ticket = stage_release(ctx, path)
    return promote_release(ctx, ticket)


def release_or_quarantine(ctx: Context, path: Path, announced: Announced | None = None) -> Ticket:
    """What the flow does, without Prefect; ``announced``: the arrival event's identity."""
    ticket = admit_delivery(ctx, path, announced=announced)
    if ticket.decision is Decision.SKIP:
        return ticket
    try:
        verify_delivery(ctx, ticket)
        validate(ctx, ticket)
        ingest(ctx, ticket)
        index_release(ctx, ticket)
        promote_release(ctx, ticket)
    except DeliveryRejected as exc:
        quarantine_delivery(ctx, ticket, exc.report)
    return ticket


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
