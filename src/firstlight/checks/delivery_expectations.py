"""In the sandbox: the delivery-level checks, once per delivery, after the per-file ones.

The observation suite on the ObsCore rows of the observation products that passed their
checks (headers read the way ingest will read them, ``checks.obscore``), then the
attempt's Data Docs from every result the suites wrote. ``services.validation`` runs
``check_delivery_expectations`` in a child under limits (``checks.isolation``); the
worker never runs this code itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firstlight.checks.data_docs import build_data_docs, result_files
from firstlight.checks.expectations import check_observation_suite
from firstlight.checks.filters import FilterTable
from firstlight.checks.obscore import ObservationError, observation_from_fits
from firstlight.checks.suites import Suite
from firstlight.domain.findings import Finding, Severity
from firstlight.domain.manifest import FileFormat, Manifest
from firstlight.domain.release import ObsField

log = logging.getLogger(__name__)


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
