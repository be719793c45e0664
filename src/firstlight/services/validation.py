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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firstlight.checks.data_docs import build_data_docs, result_files
from firstlight.checks.expectations import check_observation_suite
from firstlight.checks.filters import FilterTable, load_filters
from firstlight.checks.isolation import Limits, run_isolated
from firstlight.checks.rules import load_rules
from firstlight.checks.suites import Suite, load_suites
from firstlight.checks.validate import validate_delivery
from firstlight.checks.verify import read_manifest
from firstlight.domain.findings import DeliveryRejected, Finding, Report, Severity
from firstlight.domain.ledger import Stage
from firstlight.domain.manifest import MANIFEST_NAME, FileFormat, Manifest
from firstlight.domain.release import ObsField
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


@dataclass(frozen=True)
class DeliveryExpectations:
    """What the delivery-level child needs: the observation suite's input, where docs go."""

    delivery_dir: Path
    manifest: Manifest
    failed: frozenset[str]  # files whose checks found errors: no row to judge
    suite: Suite
    results_dir: Path
    site_dir: Path
    run_name: str
    filters: FilterTable
    required: tuple[ObsField, ...] = ()  # ObsCore columns the mission's profile requires


def check_delivery_expectations(job: DeliveryExpectations) -> list[Finding]:
    """In the child: the observation suite, then the Data Docs of every result so far."""
    findings = observation_expectations(
        job.delivery_dir,
        job.manifest,
        job.failed,
        job.suite,
        job.results_dir,
        filters=job.filters,
        required=job.required,
    )
    return findings + publish_data_docs(job.results_dir, job.site_dir, run_name=job.run_name)


def observation_expectations(
    delivery_dir: Path,
    manifest: Manifest,
    failed: frozenset[str],
    suite: Suite,
    results_dir: Path,
    *,
    filters: FilterTable | None = None,
    required: tuple[ObsField, ...] = (),
) -> list[Finding]:
    """The observation suite on the ObsCore rows of the products whose checks passed.

    Each NULL column is a warning, or an error when the mission requires it.
    """
    rows: list[dict[str, Any]] = []
    findings = []
    for entry in manifest.files:
        if not entry.product_type.is_observation or entry.format is not FileFormat.FITS:
            continue
        if entry.path in failed:
            continue  # structurally broken: its findings say why; no row to judge
        try:
            derived = observation_from_fits(
                delivery_dir / entry.path,
                entry.path,
                entry.product_type,
                mission=manifest.mission,
                release_key=manifest.release_key,
                access_url=entry.path,
                release_date=entry.release_date,
                declared=entry.observation,
                filters=filters,
            )
        except (ObservationError, OSError, ValueError, KeyError) as exc:
            findings.append(Finding("observation.metadata", str(exc), file=entry.path))
            continue
        findings.extend(derived.findings(entry.path, required))
        row = {k: v for k, v in vars(derived.observation).items() if k != "obs_release_date"}
        rows.append({**row, "file": entry.path})
    return findings + check_observation_suite(rows, suite, results_dir)


def publish_data_docs(results: Path, site: Path, *, run_name: str) -> list[Finding]:
    """Build the attempt's Data Docs; a rendering failure is a warning, never a verdict."""
    if not result_files(results):
        return []
    try:
        build_data_docs(results, site, run_name=run_name)
    except Exception as exc:  # Great Expectations' renderers raise anything; docs are extra
        log.warning("Data Docs of %s could not be built: %s", site, exc)
        reason = f"Data Docs could not be built: {exc}"
        return [Finding("validate.data_docs", reason, severity=Severity.WARNING)]
    return []
