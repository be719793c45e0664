"""One delivery through the library's steps, timed: what both benches measure."""

from __future__ import annotations

import time
from pathlib import Path

from firstlight.domain.ledger import Stage
from firstlight.services.context import Context
from firstlight.services.indexing import index_release
from firstlight.services.ingest import ingest
from firstlight.services.promotion import promote_release
from firstlight.services.validation import validate
from firstlight.services.verification import admit_delivery, verify_delivery


def release_timed(ctx: Context, delivery: Path) -> dict[str, float]:
    """Seconds in all (``total``) and per step, as the ledger recorded them."""
    started = time.perf_counter()
    ticket = admit_delivery(ctx, delivery)
    verify_delivery(ctx, ticket)
    validate(ctx, ticket)
    ingest(ctx, ticket)
    index_release(ctx, ticket)
    promote_release(ctx, ticket)
    total = time.perf_counter() - started
    stages = {
        s.stage.value: s.seconds
        for s in ctx.archive.ledger.stages(ticket.delivery_pk)
        if s.stage is not Stage.ADMIT
    }
    return {"total": total, **stages}
