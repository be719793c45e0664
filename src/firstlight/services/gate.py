"""The gate step: may this staged release go public by itself?

Belongs here: ``assess_release`` (drift against the mission's current release
and the anomaly model's score; auto-pass, or held for an operator),
``resolve_held`` (the operator's approve or reject, or the wait running out)
and ``rejection_report`` (what quarantine keeps for a rejected release). Each
decision is recorded in the ledger (``gate_decisions``) with its scores, its
thresholds, who or what decided and the model version.

Cold start: a mission's first delivery has nothing to compare with and passes
(rules only, recorded as such); until the anomaly model has
``gate_min_history`` normal deliveries, drift rules alone decide.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from firstlight.config import Settings
from firstlight.domain.anomaly import AnomalyModel
from firstlight.domain.drift import (
    DriftFinding,
    DriftThresholds,
    MissionHistory,
    find_drift,
)
from firstlight.domain.features import VECTOR_NAMES, vector
from firstlight.domain.findings import Finding, Report, Severity
from firstlight.domain.ledger import Decision, Stage
from firstlight.domain.manifest import now_utc
from firstlight.errors import ConflictError
from firstlight.services.context import Context
from firstlight.services.features import complete_run_features
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.ticket import Ticket
from firstlight.storage.gate_records import GateDecisionRecord, GateRecords, ModelRecord

AUTO_PASS = "auto-pass"  # noqa: S105  (a decision, not a password)
HELD = "held"
APPROVED = "approved"
REJECTED = "rejected"
EXPIRED = "expired"  # held, and no operator answered in time: quarantined

_models_lock = threading.Lock()
_models: dict[tuple[str, int], AnomalyModel] = {}


@dataclass(frozen=True)
class GateAssessment:
    delivery_pk: int
    attempt: int
    label: str
    decision: str
    decided_by: str
    reason: str
    findings: list[DriftFinding]
    anomaly_score: float | None
    anomaly_threshold: float | None
    model_version: int | None
    reference_release: str | None

    @property
    def held(self) -> bool:
        return self.decision == HELD

    def markdown(self) -> str:
        """The reasons and scores, for the run's artifact and the pause form's description."""
        lines = [f"## Gate: {self.label} is {self.decision}", "", self.reason, ""]
        score = (
            f"{self.anomaly_score:.3f} (threshold {self.anomaly_threshold:.3f}, "
            f"model v{self.model_version})"
            if self.anomaly_score is not None and self.anomaly_threshold is not None
            else "no model yet (rules only)"
        )
        lines += [
            f"- compared with: {self.reference_release or 'nothing (first release)'}",
            f"- anomaly score: {score}",
            "",
        ]
        if self.findings:
            # The long "why it matters" texts are a list, not a table column: narrow
            # views (the Prefect UI's resume form, a phone) cut table columns off.
            lines += ["| drift | field | score | threshold |", "|---|---|---|---|"]
            lines += [
                f"| {f.kind} | {f.field} | {f.score:.3g} | {f.threshold:.3g} |"
                for f in self.findings
            ]
            lines += ["", "### Why it matters", ""]
            lines += [f"- **{f.kind} {f.field}**: {f.reason}" for f in self.findings]
        if self.held:
            lines += ["", "### Decide", "", *decide_commands(self.label, markdown=True)]
        return "\n".join(lines) + "\n"

    def form_description(self) -> str:
        """The resume form's text: short, as the form is narrow; the rest is in the artifact."""
        found = "".join(
            f"\n- {f.kind} {f.field}: {f.score:.3g} (threshold {f.threshold:.3g})"
            for f in self.findings
        )
        return (
            f"**{self.label} is held**: {self.reason}\n{found}\n\n"
            "Why each finding matters: the run's *gate* artifact. Choose **approve** "
            "(promote) or **reject** (quarantine with your reason), give a reason and your name."
        )


def decide_commands(label: str, *, markdown: bool = False) -> list[str]:
    """How an operator decides a held release from a shell (also the Prefect UI's resume form)."""
    lines = [
        f"firstlight gate {verb} {label} --reason '...' --operator YOUR_NAME"
        for verb in ("approve", "reject")
    ]
    return [f"- `{line}`" for line in lines] if markdown else lines


def operator_label(name: str) -> str:
    """Who decided, as the ledger records it, whether from the form or the shell."""
    return f"operator:{name.strip()}"


def thresholds_of(settings: Settings) -> DriftThresholds:
    return DriftThresholds(
        psi=settings.gate_psi,
        row_ratio=settings.gate_row_ratio,
        null_fraction=settings.gate_null_fraction,
        footprint_outside=settings.gate_footprint_outside,
    )


def load_model(ctx: Context, record: ModelRecord) -> AnomalyModel:
    """The model of a stored version, rebuilt once per process (a forest is refitted)."""
    key = (ctx.settings.archive_url, record.version)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = AnomalyModel.from_json(record.params)
            _models[key] = model
        return model


def mission_history(records: GateRecords, mission: str) -> MissionHistory:
    """Footprint, instruments and product types of the mission's deliveries that went public."""
    cells: set[str] = set()
    instruments: set[str] = set()
    ptypes: set[str] = set()
    for past in records.history(mission):
        if past.decision == REJECTED:
            continue
        cells.update(past.features.sky_cells)
        instruments.update(past.features.instruments)
        ptypes.update(past.features.product_types)
    return MissionHistory(frozenset(cells), frozenset(instruments), frozenset(ptypes))


def assess_release(ctx: Context, ticket: Ticket) -> GateAssessment:
    """Decide auto-pass or held for this attempt, and record it (idempotent per attempt)."""
    records = GateRecords(ctx.archive.engine)
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.GATE):
        earlier = records.decision(ticket.delivery_pk, ticket.attempt)
        if earlier is not None:
            return _assessment(ticket, earlier, reference=None)
        thresholds = thresholds_of(ctx.settings)
        features = complete_run_features(ctx, ticket)
        reference = records.current_release_features(ticket.mission)
        model_record = records.current_model()
        if features is None:
            raise RuntimeError(f"{ticket.label}: no features recorded at ingest")
        if reference is None:
            found, max_psi, outside = [], 0.0, 0.0
        else:
            report = find_drift(
                features, reference[1], mission_history(records, ticket.mission), thresholds
            )
            found, max_psi, outside = report.findings, report.max_psi, report.footprint_outside
        gate_vector = vector(features, reference[1] if reference else None, max_psi, outside)
        records.save_features(
            ticket.delivery_pk, ticket.attempt, replace(features, gate_vector=gate_vector)
        )
        score = threshold = None
        version = None
        anomalous = False
        if model_record is not None:
            model = load_model(ctx, model_record)
            score, threshold, version = (
                model.score(gate_vector),
                model.threshold,
                model_record.version,
            )
            anomalous = score > threshold
        reasons = []
        if reference is None:
            reasons.append(f"first delivery of {ticket.mission}: nothing to compare with")
        if found:
            reasons.append(
                f"{len(found)} drift finding(s): "
                + "; ".join(f.kind + " " + f.field for f in found[:5])
            )
        if anomalous and model_record is not None:
            assert score is not None and threshold is not None
            model = load_model(ctx, model_record)
            top = ", ".join(f"{n} {z:+.1f} sigma" for n, z in model.top_features(gate_vector))
            reasons.append(f"anomaly score {score:.3f} > {threshold:.3f} (furthest: {top})")
        held = bool(found) or anomalous
        now = now_utc()
        record = GateDecisionRecord(
            delivery_pk=ticket.delivery_pk,
            attempt=ticket.attempt,
            decision=HELD if held else AUTO_PASS,
            decided_by=f"model v{version}" if version is not None else "rules",
            reason="; ".join(reasons) or "no drift, no anomaly",
            drift=[f.to_json() for f in found],
            anomaly_score=score,
            anomaly_threshold=threshold,
            thresholds=thresholds.to_json(),
            model_version=version,
            held_at=now if held else None,
            decided_at=now,
        )
        records.save_decision(record)
        return _assessment(ticket, record, reference=reference[0] if reference else None)


def _assessment(
    ticket: Ticket, record: GateDecisionRecord, reference: str | None
) -> GateAssessment:
    return GateAssessment(
        delivery_pk=record.delivery_pk,
        attempt=record.attempt,
        label=ticket.label,
        decision=record.decision,
        decided_by=record.decided_by,
        reason=record.reason or "",
        findings=[DriftFinding.from_json(f) for f in record.drift],
        anomaly_score=record.anomaly_score,
        anomaly_threshold=record.anomaly_threshold,
        model_version=record.model_version,
        reference_release=reference,
    )


def resolve_held(
    ctx: Context, ticket: Ticket, *, approve: bool | None, reason: str, decided_by: str
) -> GateDecisionRecord:
    """Record the end of a hold: approved, rejected (``approve`` False) or expired (None)."""
    records = GateRecords(ctx.archive.engine)
    held = records.decision(ticket.delivery_pk, ticket.attempt)
    if held is None or held.decision != HELD:
        state = "no gate decision" if held is None else held.decision
        raise ConflictError(f"{ticket.label} attempt {ticket.attempt} is not held ({state})")
    decision = EXPIRED if approve is None else (APPROVED if approve else REJECTED)
    record = replace(
        held,
        decision=decision,
        decided_by=decided_by,
        reason=f"{held.reason}; {decision} by {decided_by}: {reason}",
        decided_at=now_utc(),
    )
    if not records.settle_held(record):  # someone else answered in the meantime
        now = records.decision(ticket.delivery_pk, ticket.attempt)
        state = now.decision if now is not None else "no gate decision"
        raise ConflictError(f"{ticket.label} attempt {ticket.attempt} is not held ({state})")
    return record


def rejection_report(record: GateDecisionRecord) -> Report:
    """What quarantine keeps: the decision as an error, each drift finding as a warning."""
    report = Report(step=Stage.GATE.value)
    report.add(Finding(check=f"gate.{record.decision}", reason=record.reason or record.decision))
    for f in record.drift:
        finding = DriftFinding.from_json(f)
        report.add(
            Finding(
                check=f"gate.drift.{finding.kind}",
                reason=finding.reason,
                observed=f"{finding.score:.4g} (threshold {finding.threshold:.4g})",
                severity=Severity.WARNING,
            )
        )
    return report


@dataclass(frozen=True)
class ExpiredHold:
    ticket: Ticket
    flow_run_id: str | None  # the suspended run that waited (its claim token)


def expire_unanswered_holds(ctx: Context) -> list[ExpiredHold]:
    """Quarantine, as expired, every held delivery whose wait for an operator ran out.

    A held run is suspended (no process waits), so its timeout is settled here,
    by the reconciler, once the hold's claim has lapsed.
    """
    records = GateRecords(ctx.archive.engine)
    ledger = ctx.archive.ledger
    expired: list[ExpiredHold] = []
    for entry in ledger.lapsed():
        held = records.decision(entry.delivery_pk, entry.attempts)
        if held is None or held.decision != HELD:
            continue
        token, location = ledger.claim(entry.delivery_pk)
        ticket = Ticket(
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
        record = resolve_held(
            ctx,
            ticket,
            approve=None,
            reason=f"no operator decision within {ctx.settings.gate_pause_seconds} s",
            decided_by="timeout",
        )
        quarantine_delivery(ctx, ticket, rejection_report(record))
        expired.append(ExpiredHold(ticket, token))
    return expired


def hold_claim(ctx: Context, ticket: Ticket, claim_token: str) -> None:
    """Keep this run's claim on the delivery while it waits for an operator."""
    GateRecords(ctx.archive.engine).hold_claim(
        ticket.delivery_pk, claim_token, ctx.settings.gate_pause_seconds
    )


__all__ = [
    "VECTOR_NAMES",
    "GateAssessment",
    "assess_release",
    "decide_commands",
    "operator_label",
    "resolve_held",
]
