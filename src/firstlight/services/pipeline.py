"""The release steps and their order, defined once.

``RELEASE_STEPS`` is the order every runner follows: the Prefect flow
(flows/release_delivery.py, one task per step), `firstlight ingest` and the
tests (``run_release``, in this process, no orchestrator). Admission comes
first and decides whether there is work; a rejection at any step
quarantines; the gate may hold the release for an operator, which only the
flow can wait for (``run_release`` returns ``held``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from firstlight.domain.findings import DeliveryRejected, Report
from firstlight.domain.ledger import Decision, Stage
from firstlight.domain.progress import Progress
from firstlight.services.claims import keep_claim
from firstlight.services.context import Context
from firstlight.services.gate import GateAssessment, assess_release, hold_claim
from firstlight.services.inbox import settle_duplicate
from firstlight.services.indexing import index_release
from firstlight.services.ingest import ingest
from firstlight.services.promotion import promote_release
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.ticket import Ticket
from firstlight.services.validation import validate
from firstlight.services.verification import Announced, admit_delivery, verify_delivery


@dataclass(frozen=True)
class Step:
    stage: Stage
    run: Callable[..., object]  # (ctx, ticket), and progress= where ``reports_rows``
    reports_rows: bool = False


RELEASE_STEPS: tuple[Step, ...] = (
    Step(Stage.VERIFY, verify_delivery),
    Step(Stage.VALIDATE, validate, reports_rows=True),
    Step(Stage.INGEST, ingest, reports_rows=True),
    Step(Stage.INDEX, index_release),
    Step(Stage.GATE, assess_release),
    Step(Stage.PROMOTE, promote_release),
)

Status = Literal["released", "skipped", "rejected", "held"]


@dataclass(frozen=True)
class RunOutcome:
    status: Status
    ticket: Ticket
    detail: str
    report: Report | None = None


def run_release(
    ctx: Context,
    path: Path,
    *,
    claim_token: str | None = None,
    landed_at: datetime | None = None,
    announced: Announced | None = None,
    on_step: Callable[[Stage], None] | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Every step in order, in this process: released, skipped, rejected or held.

    ``on_step`` hears of each step as it starts, ``progress`` of the rows validate
    and ingest have done (see ``domain.progress.throttled`` for a few lines a file).
    """
    token = claim_token or uuid.uuid4().hex
    ticket = admit_delivery(ctx, path, claim_token=token, landed_at=landed_at, announced=announced)
    if ticket.decision is Decision.SKIP:
        settle_duplicate(ctx, ticket)
        return RunOutcome("skipped", ticket, ticket.reason)
    with keep_claim(ctx, ticket, token):
        try:
            for step in RELEASE_STEPS:
                if on_step is not None:
                    on_step(step.stage)
                if step.reports_rows and progress is not None:
                    result = step.run(ctx, ticket, progress=progress)
                else:
                    result = step.run(ctx, ticket)
                if isinstance(result, GateAssessment) and result.held:
                    hold_claim(ctx, ticket, token)
                    return RunOutcome("held", ticket, result.reason)
        except DeliveryRejected as rejected:
            quarantine_delivery(ctx, ticket, rejected.report)
            return RunOutcome("rejected", ticket, rejected.report.summary(), rejected.report)
    return RunOutcome("released", ticket, f"{ticket.release_key} is current")
