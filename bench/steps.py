"""One delivery through the library's steps, timed: what both benches measure."""

from __future__ import annotations

import time
from pathlib import Path

from firstlight.domain.ledger import Stage
from firstlight.services.context import Context
from firstlight.services.pipeline import run_release


def release_timed(ctx: Context, delivery: Path) -> dict[str, float]:
    """Seconds in all (``total``) and per step, as the ledger recorded them."""
    started = time.perf_counter()
    outcome = run_release(ctx, delivery)  # the steps in their one order (gate included)
    total = time.perf_counter() - started
    if outcome.status != "released":
        raise RuntimeError(f"bench delivery {outcome.status}: {outcome.detail}")
    ticket = outcome.ticket
    stages = {
        s.stage.value: s.seconds
        for s in ctx.archive.ledger.stages(ticket.delivery_pk)
        if s.stage is not Stage.ADMIT
    }
    return {"total": total, **stages}
