"""The validate step: format checks and expectation suites over a verified delivery.

In order, each in a child process under limits (``checks.isolation``):
every file through its checks (format, streaming catalogue checks, the
catalogue expectation suite; see ``checks.validate``); then, once per
delivery, the observation suite on the ObsCore rows of the observation
products that passed their checks (headers read the way ingest will read
them) and the attempt's Data Docs, built from the validation results the
suites wrote. The worker itself never parses a delivered file nor imports
Great Expectations; it links the Data Docs from the ledger.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from firstlight.checks.delivery_expectations import (
    DeliveryExpectations,
    check_delivery_expectations,
)
from firstlight.checks.filters import load_filters
from firstlight.checks.isolation import Limits, run_isolated
from firstlight.checks.rules import load_rules
from firstlight.checks.suites import load_suites
from firstlight.checks.validate import validate_delivery
from firstlight.checks.verify import read_manifest
from firstlight.domain.findings import DeliveryRejected, Report
from firstlight.domain.ledger import Stage
from firstlight.domain.manifest import MANIFEST_NAME
from firstlight.domain.progress import Progress
from firstlight.services.context import Context
from firstlight.services.ticket import Ticket

log = logging.getLogger(__name__)

RESULTS_FOLDER = "results"


def validate(ctx: Context, ticket: Ticket, progress: Progress | None = None) -> Report:
    """Run every check and suite; raises ``DeliveryRejected`` on any error.

    ``progress`` hears of each pass over a catalogue's rows (streaming checks, then
    its expectation suite), chunk by chunk, from the sandbox children.
    """
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.VALIDATE):
        manifest, _ = read_manifest(ticket.path)
        rules = load_rules(ctx.settings.validations_dir, manifest.mission)
        suites = load_suites(ctx.settings.validations_dir, manifest.mission)
        filters = load_filters(ctx.settings.validations_dir, manifest.mission)
        limits = Limits(
            memory_bytes=ctx.settings.validate_memory_mib * 2**20,
            seconds=ctx.settings.validate_seconds,
        )
        site = data_docs_dir(ctx, ticket)
        shutil.rmtree(site, ignore_errors=True)  # a retried task starts its attempt's docs afresh
        results = site / RESULTS_FOLDER
        report = validate_delivery(
            ticket.path,
            manifest,
            rules,
            chunk_rows=ctx.settings.ingest_chunk_rows,
            limits=limits,
            suites=suites,
            results_dir=results,
            processes=ctx.settings.validate_processes,
            progress=progress,
        )
        job = DeliveryExpectations(
            delivery_dir=ticket.path,
            manifest=manifest,
            failed=frozenset(f.file for f in report.errors if f.file),
            suite=suites.observation,
            filters=filters,
            required=rules.observation.required,
            results_dir=results,
            site_dir=site,
            run_name=f"attempt-{ticket.attempt}",
        )
        report.extend(run_isolated(check_delivery_expectations, job, limits, file=MANIFEST_NAME))
        index = site / "index.html"
        link = str(index.resolve()) if index.is_file() else None
        ctx.archive.ledger.set_data_docs(ticket.delivery_pk, link)
        ctx.archive.ledger.record_findings(ticket.delivery_pk, ticket.attempt, report)
        if not report.ok:
            raise DeliveryRejected(report)
        return report


def data_docs_dir(ctx: Context, ticket: Ticket) -> Path:
    """``<reports>/<mission>/<delivery_id>/attempt-<n>``: one Data Docs site per attempt."""
    return (
        ctx.settings.reports_dir / ticket.mission / ticket.delivery_id / f"attempt-{ticket.attempt}"
    )
