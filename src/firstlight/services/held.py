"""Held releases: which deliveries wait for an operator, and deciding one without Prefect.

Belongs here: ``held_releases`` and ``find_held`` (what `firstlight held`
lists and `firstlight gate` looks up), ``flow_run_of`` (whether a Prefect
run waits on the hold: then the decision is that run's input, see
flows/release_delivery.py) and ``decide_in_process``, which finishes a
release held by `firstlight ingest` (``services.pipeline.run_release``) from
where it stopped: the decision is recorded exactly as the Prefect form
records it (``services.gate.resolve_held``), then approve promotes and reject
quarantines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from firstlight.domain.ledger import Decision
from firstlight.errors import InvalidInputError, NotFoundError
from firstlight.services.claims import keep_claim
from firstlight.services.context import Context
from firstlight.services.gate import (
    decide_commands,
    operator_label,
    rejection_report,
    resolve_held,
)
from firstlight.services.promotion import promote_release
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.ticket import Ticket
from firstlight.storage.gate_records import GateRecords, HeldRecord

Verdict = Literal["approve", "reject"]


@dataclass(frozen=True)
class HeldRelease:
    label: str  # mission/delivery_id
    delivery_pk: int
    attempt: int
    release_key: str | None
    held_since: datetime | None
    reason: str
    flow_run_id: str | None  # the suspended Prefect run waiting on it; None: in-process
    decide: list[str]  # the shell commands that decide it

    @property
    def waits_in(self) -> str:
        return f"Prefect flow run {self.flow_run_id}" if self.flow_run_id else "no run (in-process)"


@dataclass(frozen=True)
class Decided:
    label: str
    decision: str  # approved | rejected
    detail: str


def flow_run_of(claim_token: str | None) -> str | None:
    """The Prefect flow run holding a claim, if the token is one (runs claim with their id).

    In-process runs claim with a bare hex token (``uuid4().hex``), never a
    dashed UUID, so the two cannot be confused.
    """
    if not claim_token:
        return None
    try:
        return claim_token if str(UUID(claim_token)) == claim_token else None
    except ValueError:
        return None


def held_releases(ctx: Context) -> list[HeldRelease]:
    return [_held(r) for r in GateRecords(ctx.archive.engine).held()]


def find_held(ctx: Context, label: str) -> HeldRelease:
    """The held release named MISSION/DELIVERY_ID."""
    mission, _, delivery_id = label.partition("/")
    if not mission or not delivery_id:
        raise InvalidInputError(f"{label!r}: expected MISSION/DELIVERY_ID (see `firstlight held`)")
    for held in held_releases(ctx):
        if held.label == label:
            return held
    raise NotFoundError(f"{label} is not held by the gate (see `firstlight held`)")


def decide_in_process(
    ctx: Context, held: HeldRelease, verdict: Verdict, *, reason: str, operator: str
) -> Decided:
    """Record the decision as the form does, then promote (approve) or quarantine (reject).

    Only for a hold no run waits on: held in-process, or whose Prefect run has
    ended (a waiting run is answered through its form instead).
    """
    ticket = _ticket(ctx, held)
    token, _ = ctx.archive.ledger.claim(held.delivery_pk)
    with keep_claim(ctx, ticket, token or ""):
        record = resolve_held(
            ctx,
            ticket,
            approve=verdict == "approve",
            reason=reason,
            decided_by=operator_label(operator),
        )
        if verdict == "approve":
            promoted = promote_release(ctx, ticket)
            return Decided(held.label, record.decision, f"{promoted.release_key} promoted")
        where = quarantine_delivery(ctx, ticket, rejection_report(record))
    return Decided(held.label, record.decision, f"quarantined at {where}")


def _ticket(ctx: Context, held: HeldRelease) -> Ticket:
    entry = ctx.archive.ledger.entry(held.delivery_pk)
    _, location = ctx.archive.ledger.claim(held.delivery_pk)
    return Ticket(
        delivery_path=location,
        delivery_pk=entry.delivery_pk,
        attempt=entry.attempts,
        mission=entry.mission,
        delivery_id=entry.delivery_id,
        manifest_sha256=entry.manifest_sha256 or "",
        release_key=entry.release_key,
        decision=Decision.PROCEED,
        reason="held by the gate",
    )


def _held(record: HeldRecord) -> HeldRelease:
    label = f"{record.mission}/{record.delivery_id}"
    return HeldRelease(
        label=label,
        delivery_pk=record.delivery_pk,
        attempt=record.attempt,
        release_key=record.release_key,
        held_since=record.held_at,
        reason=record.reason or "",
        flow_run_id=flow_run_of(record.claim_token),
        decide=decide_commands(label),
    )
