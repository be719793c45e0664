"""The validate step: format checks and expectation suites over a verified delivery.

In order: every file through its checks in a child process under limits
(format, streaming catalogue checks, the catalogue expectation suite; see
``checks.validate``); then, in the worker, the observation suite on the
ObsCore rows of the observation products that passed their checks (the
headers are read the way ingest will read them); then the Data Docs of the
attempt, built from the validation results the suites wrote, and linked
from the ledger. Great Expectations is imported only where a suite has rows
to check: a delivery with neither catalogues nor observation products never
loads it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from firstlight.checks.data_docs import build_data_docs, result_files
from firstlight.checks.expectations import check_observation_suite
from firstlight.checks.isolation import Limits
from firstlight.checks.rules import load_rules
from firstlight.checks.suites import Suite, load_suites
from firstlight.checks.validate import validate_delivery
from firstlight.checks.verify import read_manifest
from firstlight.domain.findings import DeliveryRejected, Finding, Report, Severity
from firstlight.domain.ledger import Stage
from firstlight.domain.manifest import FileFormat, Manifest
from firstlight.services.context import Context
from firstlight.services.obscore import ObservationError, observation_from_fits
from firstlight.services.ticket import Ticket

log = logging.getLogger(__name__)

RESULTS_FOLDER = "results"


def validate(ctx: Context, ticket: Ticket) -> Report:
    """Run every check and suite; raises ``DeliveryRejected`` on any error."""
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.VALIDATE):
        manifest, _ = read_manifest(ticket.path)
        rules = load_rules(ctx.settings.validations_dir, manifest.mission)
        suites = load_suites(ctx.settings.validations_dir, manifest.mission)
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
        )
        report.extend(
            observation_expectations(ticket.path, manifest, report, suites.observation, results)
        )
        index = publish_data_docs(
            results, site, run_name=f"attempt-{ticket.attempt}", report=report
        )
        link = None if index is None else str(index.resolve())
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


def observation_expectations(
    delivery_dir: Path, manifest: Manifest, report: Report, suite: Suite, results_dir: Path
) -> list[Finding]:
    """The observation suite on the ObsCore rows of the products whose checks passed."""
    failed = {f.file for f in report.errors}
    rows: list[dict[str, Any]] = []
    findings = []
    for entry in manifest.files:
        if not entry.product_type.is_observation or entry.format is not FileFormat.FITS:
            continue
        if entry.path in failed:
            continue  # structurally broken: its findings say why; no row to judge
        try:
            obs = observation_from_fits(
                delivery_dir / entry.path,
                entry.path,
                entry.product_type,
                mission=manifest.mission,
                release_key=manifest.release_key,
                access_url=entry.path,
                release_date=entry.release_date,
            )
        except (ObservationError, OSError, ValueError, KeyError) as exc:
            findings.append(Finding("observation.metadata", str(exc), file=entry.path))
            continue
        row = {k: v for k, v in vars(obs).items() if k != "obs_release_date"}
        rows.append({**row, "file": entry.path})
    return findings + check_observation_suite(rows, suite, results_dir)


def publish_data_docs(results: Path, site: Path, *, run_name: str, report: Report) -> Path | None:
    """Build the attempt's Data Docs; a rendering failure is a warning, never a verdict."""
    if not result_files(results):
        return None
    try:
        return build_data_docs(results, site, run_name=run_name)
    except Exception as exc:  # Great Expectations' renderers raise anything; docs are extra
        log.warning("Data Docs of %s could not be built: %s", site, exc)
        report.add(
            Finding(
                "validate.data_docs",
                f"Data Docs could not be built: {exc}",
                severity=Severity.WARNING,
            )
        )
        return None
