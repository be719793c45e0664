"""One delivery through the library's steps, timed: what both benches measure."""

from __future__ import annotations

import time
from pathlib import Path

from firstlight.checks.isolation import Limits, run_isolated
from firstlight.domain.findings import Finding
from firstlight.domain.ledger import Stage
from firstlight.services.context import Context
from firstlight.services.pipeline import run_release


def _nothing(ctx: None) -> list[Finding]:
    return []


def warm_sandbox() -> None:
    """Start the validation sandbox untimed, as a worker does once before any delivery:
    a delivery never pays for its forkserver importing Great Expectations."""
    run_isolated(_nothing, None, Limits(memory_bytes=2**31, seconds=60), file="warm-up")


def release_timed(ctx: Context, delivery: Path) -> dict[str, float]:
    """Seconds in all (``total``) and per step, as the ledger recorded them; the sandbox
    is warm, as on a worker."""
    warm_sandbox()
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
