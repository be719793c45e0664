"""The validate step: format and data checks over a verified delivery."""

from __future__ import annotations

from firstlight.checks.isolation import Limits
from firstlight.checks.rules import load_rules
from firstlight.checks.validate import validate_delivery
from firstlight.checks.verify import read_manifest
from firstlight.domain.findings import DeliveryRejected, Report
from firstlight.domain.ledger import Stage
from firstlight.services.context import Context
from firstlight.services.ticket import Ticket


def validate(ctx: Context, ticket: Ticket) -> Report:
    """Run every check on every file; raises ``DeliveryRejected`` on any error."""
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.VALIDATE):
        manifest, _ = read_manifest(ticket.path)
        rules = load_rules(ctx.settings.validations_dir, manifest.mission)
        limits = Limits(
            memory_bytes=ctx.settings.validate_memory_mib * 2**20,
            seconds=ctx.settings.validate_seconds,
        )
        report = validate_delivery(
            ticket.path, manifest, rules, chunk_rows=ctx.settings.ingest_chunk_rows, limits=limits
        )
        ctx.archive.ledger.record_findings(ticket.delivery_pk, ticket.attempt, report)
        if not report.ok:
            raise DeliveryRejected(report)
        return report
