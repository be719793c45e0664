"""Admission and verification: is this arrival new work, and is it complete?

Admission reads the manifest (even a broken one: its identity is recovered
where possible, so the arrival still gets its line in the ledger) and asks the
ledger. Verification checks the files against the manifest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from firstlight.checks.verify import read_manifest, read_manifest_bytes, verify_files
from firstlight.domain.findings import DeliveryRejected, Finding, Report
from firstlight.domain.ledger import Decision, Stage
from firstlight.domain.manifest import MANIFEST_NAME, ManifestError, manifest_sha256, raw_identity
from firstlight.services.context import Context
from firstlight.services.ticket import Ticket


@dataclass(frozen=True)
class Announced:
    """What the arrival event said the delivery was (when it came from an event)."""

    mission: str
    delivery_id: str
    manifest_sha256: str


def admit_delivery(
    ctx: Context,
    delivery_dir: Path,
    claim_token: str | None = None,
    landed_at: datetime | None = None,
    announced: Announced | None = None,
) -> Ticket:
    """Record the arrival in the ledger and decide whether it is new work.

    ``claim_token`` names the run doing the work (Prefect passes its flow run
    id, so a rerun of the same run resumes its claim); default: a fresh one.
    An event that arrives after its delivery was released or quarantined (so
    its folder has left the inbox) is recognised by ``announced`` and skipped.
    """
    delivery_dir = delivery_dir.resolve()
    if announced is not None and not delivery_dir.is_dir():
        echo = _echo_of_finished(ctx, delivery_dir, announced)
        if echo is not None:
            return echo
    problem: str | None = None
    try:
        manifest, sha = read_manifest(delivery_dir)
        mission, delivery_id, release_key = (
            manifest.mission,
            manifest.delivery_id,
            manifest.release_key,
        )
    except ManifestError as exc:
        problem = str(exc)
        raw, _ = read_manifest_bytes(delivery_dir / MANIFEST_NAME)
        sha = manifest_sha256(raw)
        mission, delivery_id = raw_identity(raw, delivery_dir.name)
        release_key = None
    admission = ctx.archive.ledger.admit(
        mission=mission,
        delivery_id=delivery_id,
        manifest_sha256=sha,
        release_key=release_key,
        location=str(delivery_dir),
        claim_token=claim_token or uuid.uuid4().hex,
        arrived_at=landed_at,
    )
    return Ticket(
        delivery_path=str(delivery_dir),
        delivery_pk=admission.delivery_pk,
        attempt=admission.attempt,
        mission=mission,
        delivery_id=delivery_id,
        manifest_sha256=sha,
        release_key=release_key,
        decision=admission.decision,
        reason=admission.reason,
        manifest_problem=problem,
    )


def _echo_of_finished(ctx: Context, delivery_dir: Path, announced: Announced) -> Ticket | None:
    entry = ctx.archive.ledger.find(
        announced.mission, announced.delivery_id, announced.manifest_sha256
    )
    if entry is None:
        return None  # never seen: admission proceeds and verification says what is wrong
    reason = f"already {entry.state.value}; its folder has left the inbox; nothing to do"
    ctx.archive.ledger.note_skipped(entry.delivery_pk, entry.attempts, reason)
    return Ticket(
        delivery_path=str(delivery_dir),
        delivery_pk=entry.delivery_pk,
        attempt=entry.attempts,
        mission=entry.mission,
        delivery_id=entry.delivery_id,
        manifest_sha256=announced.manifest_sha256,
        release_key=entry.release_key,
        decision=Decision.SKIP,
        reason=reason,
    )


def verify_delivery(ctx: Context, ticket: Ticket) -> Report:
    """Manifest valid, files complete, sizes and sha256 right; raises ``DeliveryRejected``."""
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.VERIFY):
        report = Report(step=Stage.VERIFY.value)
        if ticket.decision is Decision.REJECT:
            report.add(Finding(check="ledger.conflict", reason=ticket.reason))
        elif ticket.manifest_problem is not None:
            for line in ticket.manifest_problem.splitlines():
                report.add(Finding(check="verify.manifest", file=MANIFEST_NAME, reason=line))
        else:
            manifest, sha = read_manifest(ticket.path)
            if sha != ticket.manifest_sha256:
                report.add(
                    Finding(
                        check="verify.manifest_changed",
                        file=MANIFEST_NAME,
                        reason="manifest.json changed after the delivery was admitted",
                    )
                )
            else:
                report = verify_files(ticket.path, manifest)
        ctx.archive.ledger.record_findings(ticket.delivery_pk, ticket.attempt, report)
        if not report.ok:
            raise DeliveryRejected(report)
        return report
