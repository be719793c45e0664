"""astroquery's TapPlus (the client of ESA's archives) against the service, sync and async."""

from __future__ import annotations

import pytest
from astroquery.utils.tap.core import TapPlus

from tests.tap.conftest import Service

QUERY = "SELECT TOP 25 source_id, ra, dec FROM demo.sources ORDER BY source_id"


@pytest.fixture(scope="module")
def tap(service: Service) -> TapPlus:
    return TapPlus(url=service.tap, verbose=False)


def test_sync_job_returns_the_rows(tap: TapPlus) -> None:
    job = tap.launch_job(QUERY)

    table = job.get_results()
    assert len(table) == 25
    assert list(table.colnames) == ["source_id", "ra", "dec"]


def test_async_job_returns_the_same_rows(tap: TapPlus) -> None:
    sync = tap.launch_job(QUERY).get_results()

    job = tap.launch_job_async(QUERY)

    assert job.get_phase() == "COMPLETED"
    table = job.get_results()
    assert list(table["source_id"]) == list(sync["source_id"])


def test_load_tables_lists_the_public_tables(tap: TapPlus) -> None:
    # Names only: TapPlus reads columns only with ESA's own extension attributes.
    names = {t.get_qualified_name() for t in tap.load_tables(only_names=True, verbose=False)}

    assert {"demo.sources", "ivoa.obscore"} <= names
