"""The release flow: verify -> validate -> ingest -> index -> gate -> promote.

Thin orchestration: the ledger decides whether an arrival is new work; a
delivery that fails a check is quarantined and the run ends Failed with the
reason in one line (no traceback: a rejection is expected) and a findings
table artifact (file, check, rows, message); anything else that fails (the
database down, a full disk) leaves the delivery in the inbox for a rerun.
Retry of a run that quarantined its delivery stays Failed and says to use
``firstlight quarantine retry`` (the bytes are in quarantine, not the inbox).

The steps and their order come from ``firstlight.services.pipeline``; each is
one task here. Every step's result is cached per flow run and manifest, so
Retry in the UI, and the resumption of a suspended run, redo nothing that
finished. While the run works it renews its claim on the delivery
(``keep_claim``): a run that dies lets go within one lease.

The gate (docs/gate.md) may hold a release: the run then *suspends* (its
process exits and its worker slot is free) with a form in the Prefect UI
(decision, reason, operator: all required) showing the gate's reasons and
scores. Approving reschedules the run, which resumes past the finished steps
and promotes; reject quarantines with the reason. `firstlight gate
approve|reject` answers the same form from a shell (``resume_held_run``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, NoReturn
from uuid import UUID

from prefect import flow, get_run_logger, pause_flow_run, suspend_flow_run
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from prefect.exceptions import FlowPauseTimeout, ObjectNotFound
from prefect.flow_runs import resume_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment, flow_run
from prefect.states import Completed, Failed
from pydantic import Field

from firstlight.domain.findings import DeliveryRejected
from firstlight.domain.ledger import Decision, DeliveryState, Stage
from firstlight.services.claims import keep_claim
from firstlight.services.context import context_for
from firstlight.services.gate import (
    GateAssessment,
    operator_label,
    rejection_report,
    resolve_held,
)
from firstlight.services.ingest import IngestSummary
from firstlight.services.pipeline import RELEASE_STEPS
from firstlight.services.promotion import PromotionSummary
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.ticket import Ticket
from firstlight.services.verification import Announced
from tasks.steps import (
    STEP_TASKS,
    Rejection,
    admit_task,
    forecast_task,
    quarantine_task,
    settle_duplicate_task,
)

DEPLOYMENT = "release-delivery"
REJECTED_PREFIX = "Rejected: "  # a rejected run's state message starts so
# How the API names the deployment: "<flow name>/<deployment name>".
RELEASE_DEPLOYMENT = f"release-delivery/{DEPLOYMENT}"


@dataclass(frozen=True)
class ReleaseOutcome:
    status: str  # released | skipped
    mission: str
    delivery_id: str
    delivery_pk: int
    release_key: str | None
    detail: str


class GateDecision(RunInput):
    """Approve or reject this held release; every field is required."""

    # (The docstring is the form's schema description: short.) No field has a
    # default: the server validates Submit against this schema and refuses an
    # untouched form, so nothing is decided by accident and the ledger names who decided.

    decision: Literal["approve", "reject"] = Field(
        description="approve: promote it. reject: quarantine it."
    )
    reason: str = Field(pattern=r"\S", description="Why (kept with the decision).")
    operator: str = Field(pattern=r"\S", description="Your name (the ledger records it).")


def resume_held_run(flow_run_id: str, answer: GateDecision) -> bool:
    """Answer a suspended (or paused) run's form from a shell, as Submit in the UI does.

    False when no run waits any more (it ended, say Failed or Crashed, or the
    server forgot it): the decision is then the caller's to carry out. Raises
    RuntimeError when the server refuses the input, or the run is on its way
    (resuming) and decides by itself.
    """
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return False
    if run.state is None or run.state.is_final():
        return False
    if not run.state.is_paused():
        raise RuntimeError(f"flow run {flow_run_id} is {run.state.name}, not waiting for input")
    resume_flow_run(UUID(flow_run_id), run_input=answer.model_dump(mode="json"))
    return True


def _artifact_key(prefix: str, mission: str) -> str:
    return f"{prefix}-{mission}".replace("_", "-")


def _wait_for_operator(ticket: Ticket, assessment: GateAssessment) -> None:
    """Suspend for the operator's decision; return if approved, raise DeliveryRejected if not.

    The first call suspends: the process exits and frees its worker. Approving
    (or rejecting) in the UI reschedules the run; it resumes past its cached
    steps and this call then returns the operator's answer.
    """
    settings = context_for().settings
    create_markdown_artifact(
        key=_artifact_key("gate", ticket.mission),
        markdown=assessment.markdown(),
        description=f"Gate of {ticket.label}: held for an operator",
    )
    form = GateDecision.with_initial_data(description=assessment.form_description())
    key = f"gate-{ticket.attempt}"
    if deployment.id is None:
        # An ad-hoc run (tests, a script) cannot be rescheduled: it waits in place.
        try:
            answer = pause_flow_run(
                wait_for_input=form,
                timeout=settings.gate_pause_seconds,
                poll_interval=settings.gate_poll_seconds,
                key=key,
            )
        except FlowPauseTimeout:
            _reject_unanswered(ticket)
    else:
        answer = suspend_flow_run(wait_for_input=form, timeout=settings.gate_pause_seconds, key=key)
    operator = operator_label(answer.operator)
    approve = answer.decision == "approve"
    record = resolve_held(
        context_for(), ticket, approve=approve, reason=answer.reason, decided_by=operator
    )
    if not approve:
        raise DeliveryRejected(rejection_report(record))
    get_run_logger().info("%s approved by %s: %s", ticket.label, operator, answer.reason)


class _UnansweredHold(DeliveryRejected):
    """An ad-hoc run's wait for the operator ran out: the server has already failed the
    run ("never resumed"), so only the raised rejection reaches the caller."""


def _reject_unanswered(ticket: Ticket) -> NoReturn:
    ctx = context_for()
    record = resolve_held(
        ctx,
        ticket,
        approve=None,
        reason=f"no operator decision within {ctx.settings.gate_pause_seconds} s",
        decided_by="timeout",
    )
    report = rejection_report(record)
    quarantine_delivery(ctx, ticket, report)
    raise _UnansweredHold(report)


def _rejected(ticket: Ticket, rejected: DeliveryRejected) -> State[ReleaseOutcome]:
    """The run's end for a rejected delivery: Failed, its findings as a table artifact."""
    create_table_artifact(
        key=_artifact_key("findings", ticket.mission),
        table=rejected.report.table(),
        description=(
            f"Findings of {ticket.label}, attempt {ticket.attempt} "
            f"(rejected at {rejected.report.step})"
        ),
    )
    # "Rejected: ": how the activity log (events/activity.py) tells a verdict from a fault.
    return Failed(message=f"{REJECTED_PREFIX}{rejected}", data=rejected)


def _retry_of_a_rejection(ticket: Ticket) -> str | None:
    """Why this run may not go on: it is a rerun (Retry in the UI) of the very run that
    quarantined or rejected the delivery, whose fix is `firstlight quarantine retry`."""
    ledger = context_for().archive.ledger
    entry = ledger.entry(ticket.delivery_pk)
    token, _ = ledger.claim(ticket.delivery_pk)
    if flow_run.id is None or token != flow_run.id:
        return None
    if entry.state not in (DeliveryState.QUARANTINED, DeliveryState.REJECTED):
        return None
    return (
        f"{ticket.label} was {entry.state.value} by this run ({entry.reason}); "
        "a retry of the run cannot release it: fix the delivery and run "
        f"`firstlight quarantine retry {ticket.delivery_pk}`"
    )


def _run_name() -> str:
    path = flow_run.parameters.get("delivery_path", "")
    return f"release-{Path(str(path)).name}"


def _name_run(mission: str, delivery_id: str) -> None:
    """Once the manifest is read: name the run after the delivery, tag it by mission."""
    if flow_run.id is None:
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(
            UUID(flow_run.id),
            name=f"{mission}/{delivery_id}",
            tags=sorted({*flow_run.tags, "firstlight", f"mission:{mission}"}),  # no repeats
        )


@flow(name="release-delivery", flow_run_name=_run_name)
def release_delivery(
    delivery_path: str,
    landed_at: datetime | None = None,
    mission: str | None = None,
    delivery_id: str | None = None,
    manifest_sha256: str | None = None,
) -> ReleaseOutcome:
    """Make the delivery at ``delivery_path`` a public release, or quarantine it.

    The other parameters come from the arrival event: ``landed_at``, when the
    manifest landed (where time-to-data starts; default: admission), and the
    announced identity, which lets a late duplicate event whose delivery has
    already left the inbox be recognised and skipped.
    """
    logger = get_run_logger()
    announced = (
        Announced(mission, delivery_id, manifest_sha256)
        if mission and delivery_id and manifest_sha256
        else None
    )
    ticket = admit_task(delivery_path, landed_at, announced)
    _name_run(ticket.mission, ticket.delivery_id)
    if ticket.decision is Decision.SKIP and (refused := _retry_of_a_rejection(ticket)):
        logger.error(refused)
        return Failed(message=refused)  # type: ignore[return-value]
    if ticket.decision is Decision.SKIP:
        logger.info("%s: %s", ticket.label, ticket.reason)
        settle_duplicate_task(ticket)
        outcome = ReleaseOutcome(
            "skipped",
            ticket.mission,
            ticket.delivery_id,
            ticket.delivery_pk,
            ticket.release_key,
            ticket.reason,
        )
        # A completed run named "Skipped": duplicates stand out in the UI.
        return Completed(name="Skipped", message=ticket.reason, data=outcome)  # type: ignore[return-value]
    forecast = forecast_task(ticket)
    results: dict[Stage, object] = {}
    rejection: DeliveryRejected | None = None
    with keep_claim(context_for(), ticket, flow_run.id or ticket.delivery_path):
        try:
            for step in RELEASE_STEPS:
                result = STEP_TASKS[step.stage](ticket)
                if isinstance(result, Rejection):
                    raise DeliveryRejected(result.report)
                results[step.stage] = result
                if isinstance(result, GateAssessment) and result.held:
                    _wait_for_operator(ticket, result)
        except DeliveryRejected as rejected:
            if not context_for().archive.ledger.entry(ticket.delivery_pk).state.terminal:
                quarantine_task(ticket, rejected.report)  # (not already: an unanswered hold)
            if isinstance(rejected, _UnansweredHold):
                raise
            rejection = rejected
    if rejection is not None:
        return _rejected(ticket, rejection)  # type: ignore[return-value]
    ingested = results[Stage.INGEST]
    assessment = results[Stage.GATE]
    promoted = results[Stage.PROMOTE]
    assert isinstance(ingested, IngestSummary)
    assert isinstance(assessment, GateAssessment)
    assert isinstance(promoted, PromotionSummary)
    rows = ", ".join(f"{path}: {n:,} rows" for path, n in ingested.table_rows.items())
    standing = (
        f"{promoted.release_key} is current (was {promoted.previous_release_key or 'none'}); "
        if promoted.made_current
        else f"{promoted.release_key} is public by name; {promoted.current_release_key} "
        "stays current (it is newer); "
    )
    detail = (
        standing + f"{ingested.observations} observations, {rows or 'no catalogues'}; "
        f"{promoted.public_files} public and {promoted.embargoed_files} embargoed files"
    )
    create_markdown_artifact(
        key=_artifact_key("release", ticket.mission),
        markdown=(
            f"## {ticket.label} released\n\n{detail}\n\n"
            f"- forecast at arrival: {forecast.describe()}\n"
            f"- gate: {assessment.decision} by {assessment.decided_by} ({assessment.reason})\n"
        ),
        description=f"Release of {ticket.label}",
    )
    logger.info("%s: %s", ticket.label, detail)
    return ReleaseOutcome(
        "released",
        ticket.mission,
        ticket.delivery_id,
        ticket.delivery_pk,
        promoted.release_key,
        detail,
    )
