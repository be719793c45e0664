"""Expectation suites through the whole validate step: findings in the ledger and the
quarantine report, Data Docs linked from the ledger, mission overrides as files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits

from firstlight.config import Settings
from firstlight.domain.findings import DeliveryRejected
from firstlight.domain.ledger import DeliveryState
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.services.validation import data_docs_dir, validate
from firstlight.services.verification import admit_delivery, verify_delivery
from tests.deliveries import generated, remanifest
from tests.integration.test_broken_deliveries import rewrite_fits
from tests.steps import release_or_quarantine
from tests.unit.test_fits_checks import VALIDATIONS

SOURCES = "catalogue/sources.fits"
MAG = "phot_g_mean_mag"
BETWEEN = "expectation:expect_column_values_to_be_between"


def _edit_sources(path: Path, change: Any) -> None:
    rewrite_fits(path / SOURCES, lambda h: change(h[1].data))
    remanifest(path)


def _source_ids(path: Path, rows: list[int]) -> list[int]:
    with fits.open(path / SOURCES) as hdul:
        return [int(hdul[1].data["source_id"][r]) for r in rows]


def test_bad_magnitudes_across_chunks_are_named_reported_and_documented(
    ctx: Context, settings: Settings
) -> None:
    path = generated(settings.inbox_dir, rows=1500, images=1, spectra=0, timeseries=0)
    bad = [10, 690, 1200]  # chunks of 700 rows (conftest): two in the first, one in the second

    def change(data: Any) -> None:
        data[MAG][bad] = [99.0, -40.0, 50.0]

    _edit_sources(path, change)
    ids = _source_ids(path, bad)

    ticket = release_or_quarantine(ctx, path)

    entry = ctx.archive.ledger.entry(ticket.delivery_pk)
    assert entry.state is DeliveryState.QUARANTINED
    [finding] = [f for f in ctx.archive.ledger.findings(ticket.delivery_pk) if f.check == BETWEEN]
    assert (finding.file, finding.column, finding.failing_count) == (SOURCES, MAG, 3)
    assert finding.sample_rows == tuple(bad)
    assert finding.observed is not None
    assert f"source_id {ids[0]}, {ids[1]}, {ids[2]}" in finding.observed
    # The run's reason and the quarantine's report carry it.
    assert entry.reason is not None
    assert BETWEEN in entry.reason
    assert entry.quarantine_path is not None
    report = json.loads((Path(entry.quarantine_path) / "report.json").read_text())
    [reported] = [f for f in report["report"]["findings"] if f["check"] == BETWEEN]
    assert reported["failing_count"] == 3
    assert reported["sample_rows"] == bad
    # Data Docs of this attempt, linked from the ledger, show the failing column.
    assert entry.data_docs == str(data_docs_dir(ctx, ticket).resolve() / "index.html")
    assert Path(entry.data_docs).is_file()
    pages = list((Path(entry.data_docs).parent / "validations").rglob("*.html"))
    catalogue_page = [p for p in pages if "sources" in p.name]
    assert catalogue_page
    assert MAG in catalogue_page[0].read_text()


def test_every_kind_of_finding_of_a_catalogue_comes_in_one_rejection(
    ctx: Context, settings: Settings
) -> None:
    """dec = 95 and duplicate ids (streaming checks) do not hide -99 magnitudes (the suite)."""
    path = generated(settings.inbox_dir, rows=1500, images=1, spectra=0, timeseries=0)

    def change(data: Any) -> None:
        data["dec"][20] = 95.0
        data["source_id"][900] = data["source_id"][30]
        data[MAG][[40, 1300]] = -99.0

    _edit_sources(path, change)

    ticket = release_or_quarantine(ctx, path)

    entry = ctx.archive.ledger.entry(ticket.delivery_pk)
    assert entry.state is DeliveryState.QUARANTINED
    found = {f.check: f for f in ctx.archive.ledger.findings(ticket.delivery_pk)}
    assert found["table.dec_range"].sample_rows == (20,)
    assert set(found["table.key_unique"].sample_rows) == {30, 900}
    assert (found[BETWEEN].column, found[BETWEEN].sample_rows) == (MAG, (40, 1300))
    # The catalogue suite's results are in the attempt's Data Docs beside the observations'.
    assert entry.data_docs is not None
    pages = [p.name for p in (Path(entry.data_docs).parent / "validations").rglob("*.html")]
    assert any("sources" in name for name in pages), pages


@pytest.fixture
def strict_ctx(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Context]:
    """Validations where mission demo tightens the magnitude range, as a file only."""
    folder = tmp_path / "validations"
    shutil.copytree(VALIDATIONS, folder)
    override = folder / "missions" / "demo" / "catalogue.json"
    override.parent.mkdir(parents=True, exist_ok=True)  # demo has a profile already
    override.write_text(
        json.dumps(
            {
                "name": "demo catalogue",
                "expectations": [
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {
                            "column": "{ucd:phot.mag}",
                            "min_value": 12.0,
                            "max_value": 20.0,
                        },
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("FIRSTLIGHT_VALIDATIONS_DIR", str(folder))
    close_contexts()
    yield context_for(Settings())
    close_contexts()


def _validate(ctx: Context, path: Path) -> DeliveryRejected | None:
    ticket = admit_delivery(ctx, path)
    verify_delivery(ctx, ticket)
    try:
        validate(ctx, ticket)
    except DeliveryRejected as rejected:
        return rejected
    return None


def test_mission_override_file_tightens_a_range(
    ctx: Context, strict_ctx: Context, settings: Settings
) -> None:
    # Synthetic G magnitudes run to 21: fine by default, too faint for the override.
    default = generated(settings.inbox_dir / "a", rows=1500, images=0, spectra=0, timeseries=0)
    assert _validate(ctx, default) is None
    strict = generated(
        settings.inbox_dir / "b", version="2", rows=1500, images=0, spectra=0, timeseries=0
    )
    rejected = _validate(strict_ctx, strict)
    assert rejected is not None
    [finding] = rejected.report.errors
    assert (finding.check, finding.column) == (BETWEEN, MAG)
    assert finding.failing_count is not None
    assert 0 < finding.failing_count < 1500
    assert BETWEEN in str(rejected)  # the run's failure message names it


def test_observation_suite_catches_a_negative_exposure_time(
    ctx: Context, settings: Settings
) -> None:
    path = generated(settings.inbox_dir, rows=50, images=1, spectra=0, timeseries=0)
    [image] = sorted((path / "images").glob("*.fits"))
    rel = image.relative_to(path).as_posix()

    def change(hdus: fits.HDUList) -> None:
        hdus[0].header["EXPTIME"] = -600.0  # no format rule covers it; the suite does

    rewrite_fits(image, change)
    remanifest(path)
    rejected = _validate(ctx, path)
    assert rejected is not None
    checks = {(f.check, f.file) for f in rejected.report.errors}
    assert ("expectation:expect_column_values_to_be_between", rel) in checks  # t_exptime >= 0


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_api")
def test_flow_run_fails_with_the_expectation_and_links_its_data_docs(
    ctx: Context, settings: Settings
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    from flows.release_delivery import release_delivery

    path = generated(settings.inbox_dir, rows=900, images=1, spectra=0, timeseries=0)

    def change(data: Any) -> None:
        data[MAG][[3, 800]] = [60.0, 70.0]

    _edit_sources(path, change)

    state = release_delivery(str(path), return_state=True)

    assert state.is_failed()
    assert BETWEEN in str(state.message) and MAG in str(state.message)
    [entry] = ctx.archive.ledger.entries()
    assert entry.state is DeliveryState.QUARANTINED and entry.data_docs
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(  # this run's: the Prefect API is the session's
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["data-docs-demo"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert artifacts, "the validate task links the Data Docs from the run"
    # Linked over http, as the query service serves them (never file://).
    url = f"{settings.query_url}/operations/data-docs/{entry.delivery_pk}/index.html"
    assert any(f"]({url})" in str(a.data) for a in artifacts)
    assert not any("file://" in str(a.data) for a in artifacts)
