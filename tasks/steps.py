"""One Prefect task per step of a release, each a thin wrapper of a service.

Tasks receive and return tickets and summaries (ids and paths), build their
context from the environment's settings, and add only what Prefect is for:
names, retries, caching, logging of progress. A step's verdict against the
delivery (``DeliveryRejected``) is returned as a ``Rejection``, not raised: the
task ends without a traceback and the flow ends the run Failed with one clear
line (a rejection is expected, not a crash). Every step's result up to the
gate is persisted and cached per flow run and manifest sha256: a rerun of a
run that failed later (say, the database was down at promotion), and the
resumption of a run suspended at the gate, redo nothing that finished.
``STEP_TASKS`` maps each step of ``services.pipeline.RELEASE_STEPS`` to its task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from prefect import Task, get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.context import TaskRunContext
from prefect.runtime import flow_run

from firstlight.analytics.forecast import Forecast, forecast_time_to_data
from firstlight.checks.isolation import start_sandbox
from firstlight.domain.findings import DeliveryRejected, Report
from firstlight.domain.ledger import Stage
from firstlight.domain.progress import Progress, describe, throttled
from firstlight.query.pages.operations import data_docs_url
from firstlight.services.context import context_for
from firstlight.services.gate import GateAssessment, assess_release, hold_claim
from firstlight.services.inbox import settle_duplicate
from firstlight.services.indexing import index_release
from firstlight.services.ingest import IngestSummary, ingest
from firstlight.services.promotion import PromotionSummary, promote_release
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.ticket import Ticket
from firstlight.services.validation import validate
from firstlight.services.verification import Announced, admit_delivery, verify_delivery

T = TypeVar("T")


@dataclass(frozen=True)
class Rejection:
    """A step found the delivery unfit: its report, for the flow to quarantine and show."""

    report: Report


def _verdict(step: Callable[[], T]) -> T | Rejection:
    try:
        return step()
    except DeliveryRejected as rejected:
        return Rejection(rejected.report)


def _same_run_same_content(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    ticket: Ticket = parameters["ticket"]
    return f"{context.task.name}-{flow_run.id}-{ticket.manifest_sha256}"


@task(name="admit")
def admit_task(
    delivery_path: str, landed_at: datetime | None = None, announced: Announced | None = None
) -> Ticket:
    # The flow run is the claimant: a retry of the same run resumes its claim.
    return admit_delivery(
        context_for(),
        Path(delivery_path),
        claim_token=flow_run.id,
        landed_at=landed_at,
        announced=announced,
    )


@task(name="settle-duplicate")
def settle_duplicate_task(ticket: Ticket) -> bool:
    return settle_duplicate(context_for(), ticket)


@task(name="verify", cache_key_fn=_same_run_same_content, persist_result=True)
def verify_task(ticket: Ticket) -> Report | Rejection:
    start_sandbox()  # validation's sandbox warms up while the files are hashed
    return _verdict(lambda: verify_delivery(context_for(), ticket))


@task(name="validate", cache_key_fn=_same_run_same_content, persist_result=True)
def validate_task(ticket: Ticket) -> Report | Rejection:
    progress = _rows_logged()
    verdict = _verdict(lambda: validate(context_for(), ticket, progress=progress))
    _link_data_docs(ticket)  # passed or rejected
    return verdict


def _rows_logged() -> Progress:
    """Rows done of each file in the run's log: a line a tenth (or 30 s), not a chunk."""
    logger = get_run_logger()
    return throttled(lambda what, n, total: logger.info("%s", describe(what, n, total)))


def _link_data_docs(ticket: Ticket) -> None:
    """Passed or rejected, the run links the Data Docs its validation published, as the
    query service serves them (http: a browser refuses a file:// link from the UI)."""
    ctx = context_for()
    if ctx.archive.ledger.entry(ticket.delivery_pk).data_docs:
        create_link_artifact(
            key=f"data-docs-{ticket.mission}".replace("_", "-"),
            link=data_docs_url(ctx.settings, ticket.delivery_pk),
            link_text=f"Data Docs of {ticket.label}, attempt {ticket.attempt}",
            description=f"Great Expectations validation results of {ticket.label}",
        )


@task(name="ingest", cache_key_fn=_same_run_same_content, persist_result=True)
def ingest_task(ticket: Ticket) -> IngestSummary | Rejection:
    progress = _rows_logged()
    return _verdict(lambda: ingest(context_for(), ticket, progress=progress))


@task(name="index", cache_key_fn=_same_run_same_content, persist_result=True)
def index_task(ticket: Ticket) -> int | Rejection:
    return _verdict(lambda: index_release(context_for(), ticket))


@task(name="forecast")
def forecast_task(ticket: Ticket) -> Forecast:
    forecast = forecast_time_to_data(context_for(), ticket)
    get_run_logger().info("%s: %s", ticket.label, forecast.describe())
    return forecast


@task(name="gate", cache_key_fn=_same_run_same_content, persist_result=True)
def gate_task(ticket: Ticket) -> GateAssessment | Rejection:
    ctx = context_for()
    assessment = _verdict(lambda: assess_release(ctx, ticket))
    if isinstance(assessment, Rejection):
        return assessment
    if assessment.held and flow_run.id is not None:
        # The run is about to wait for an operator: its claim must outlast the wait.
        hold_claim(ctx, ticket, flow_run.id)
    get_run_logger().info("%s: gate %s (%s)", ticket.label, assessment.decision, assessment.reason)
    return assessment


@task(name="promote")
def promote_task(ticket: Ticket) -> PromotionSummary | Rejection:
    return _verdict(lambda: promote_release(context_for(), ticket))


@task(name="quarantine")
def quarantine_task(ticket: Ticket, report: Report) -> str | None:
    dest = quarantine_delivery(context_for(), ticket, report)
    if dest is None:  # it could not be copied: rejected and left where it is
        reason = context_for().archive.ledger.entry(ticket.delivery_pk).reason
        get_run_logger().error("%s rejected: %s", ticket.label, reason)
        return None
    get_run_logger().error("%s quarantined at %s: %s", ticket.label, dest, report.summary())
    return str(dest)


STEP_TASKS: dict[Stage, Task[[Ticket], Any]] = {
    Stage.VERIFY: verify_task,
    Stage.VALIDATE: validate_task,
    Stage.INGEST: ingest_task,
    Stage.INDEX: index_task,
    Stage.GATE: gate_task,
    Stage.PROMOTE: promote_task,
}
