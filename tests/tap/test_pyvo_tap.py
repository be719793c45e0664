"""TAP 1.1 through pyvo: sync and async queries, MAXREC and OVERFLOW, errors that say
where, output formats, VOSI tables, and DataLink from an ObsCore row."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import httpx
import pytest
import pyvo

from tests.tap.conftest import CATALOGUE_ROWS, EMBARGO_DAYS, MovableClock, Service


@pytest.fixture(scope="module")
def tap(service: Service) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(service.tap)


def test_sync_cone_query_returns_rows_with_the_catalogues_metadata(
    tap: pyvo.dal.TAPService,
) -> None:
    result = tap.search(
        "SELECT source_id, ra, dec FROM demo.sources "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150.0, 2.0, 0.2))"
    )

    table = result.to_table()
    assert 0 < len(table) < CATALOGUE_ROWS
    ucds = {f.name: f.ucd for f in result.fielddescs}
    assert ucds == {
        "source_id": "meta.id;meta.main",
        "ra": "pos.eq.ra;meta.main",
        "dec": "pos.eq.dec;meta.main",
    }
    assert table["ra"].unit == "deg"


def test_count_sees_every_row(tap: pyvo.dal.TAPService) -> None:
    rows = tap.search("SELECT COUNT(*) AS n FROM demo.sources").to_table()

    assert int(rows["n"][0]) == CATALOGUE_ROWS


def test_maxrec_cuts_the_result_and_reports_overflow(service: Service) -> None:
    response = httpx.post(
        f"{service.tap}/sync",
        data={
            "REQUEST": "doQuery",
            "LANG": "ADQL",
            "QUERY": "SELECT * FROM demo.sources",
            "MAXREC": "7",
            "RESPONSEFORMAT": "votable/td",
        },
    )

    text = response.text
    assert text.count("<TR>") == 7
    assert text.index('<INFO name="QUERY_STATUS" value="OVERFLOW"/>') > text.index("</TABLE>")


def test_syntax_errors_say_where(tap: pyvo.dal.TAPService) -> None:
    with pytest.raises(pyvo.dal.DALQueryError, match=r"line 2, column \d+"):
        tap.search("SELECT ra\nFROM demo.sources WHERE WHERE")


def test_unknown_tables_are_errors(tap: pyvo.dal.TAPService) -> None:
    with pytest.raises(pyvo.dal.DALQueryError, match="nosuch"):
        tap.search("SELECT * FROM demo.nosuch")


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"LANG": "ADQL"}, "QUERY is missing"),
        ({"LANG": "PQL", "QUERY": "SELECT 1"}, "LANG='PQL' is not supported"),
        ({"LANG": "ADQL", "QUERY": "SELECT 1", "UPLOAD": "t,http://x/t.xml"}, "UPLOAD"),
        ({"LANG": "ADQL", "QUERY": "SELECT 1", "FORMAT": "fits"}, "FORMAT 'fits'"),
        ({"LANG": "ADQL", "QUERY": "SELECT 1", "MAXREC": "-1"}, "MAXREC=-1"),
    ],
)
def test_bad_parameters_are_dali_errors(
    service: Service, params: dict[str, str], says: str
) -> None:
    response = httpx.post(f"{service.tap}/sync", data=params)

    assert response.status_code == 400
    assert '<INFO name="QUERY_STATUS" value="ERROR">' in response.text
    assert says in response.text


@pytest.mark.parametrize("fmt", ["csv", "text/csv", "tsv", "json", "application/json"])
def test_other_formats_carry_the_same_rows(service: Service, fmt: str) -> None:
    query = "SELECT TOP 5 source_id, ra FROM demo.sources ORDER BY source_id"
    response = httpx.get(
        f"{service.tap}/sync", params={"LANG": "ADQL", "QUERY": query, "FORMAT": fmt}
    )

    assert response.status_code == 200
    if "json" in fmt:
        doc = json.loads(response.text)
        assert [c["name"] for c in doc["metadata"]] == ["source_id", "ra"]
        assert len(doc["data"]) == 5
    else:
        lines = response.text.strip().splitlines()
        assert lines[0].replace("\t", ",") == "source_id,ra"
        assert len(lines) == 6


def test_async_job_runs_completes_and_is_deleted(tap: pyvo.dal.TAPService) -> None:
    job = tap.submit_job("SELECT TOP 20 source_id FROM demo.sources ORDER BY source_id")
    assert job.phase == "PENDING"

    job.run().wait(timeout=60)

    assert job.phase == "COMPLETED"
    assert len(job.fetch_result().to_table()) == 20
    job.delete()
    with pytest.raises(pyvo.dal.DALServiceError):
        job.phase  # noqa: B018 - asking the server is the point


def test_run_async_returns_the_rows(tap: pyvo.dal.TAPService) -> None:
    result = tap.run_async("SELECT TOP 3 obs_id FROM ivoa.obscore", maxrec=2)

    assert len(result) == 2


def test_failing_async_job_ends_in_error_with_the_message(tap: pyvo.dal.TAPService) -> None:
    job = tap.submit_job("SELECT nosuchcolumn FROM demo.sources").run().wait(timeout=60)

    assert job.phase == "ERROR"
    with pytest.raises(pyvo.dal.DALQueryError, match="nosuchcolumn"):
        job.raise_if_error()
    job.delete()


def test_tables_list_units_and_ucds(tap: pyvo.dal.TAPService) -> None:
    tables = tap.tables
    names = set(tables.keys())

    assert {"ivoa.obscore", "demo.sources", "tap_schema.tables"} <= names
    columns = {c.name: c for c in tables["demo.sources"].columns}
    assert columns["ra"].unit == "deg"
    assert columns["ra"].ucd == "pos.eq.ra;meta.main"


def test_datalink_from_an_obscore_row_downloads_the_file(
    service: Service, tap: pyvo.dal.TAPService
) -> None:
    result = tap.search(
        "SELECT obs_id, obs_publisher_did, access_url FROM ivoa.obscore "
        "WHERE dataproduct_type = 'image'"
    )
    by_path = {f["path"]: f for f in service.products("image")}

    checked = 0
    for links in result.iter_datalinks():
        this = next(r for r in links if r.semantics == "#this")
        product = by_path[this.access_url.split("/demo/dr1/1/", 1)[1]]
        body = httpx.get(this.access_url).content
        assert hashlib.sha256(body).hexdigest() == product["sha256"]
        checked += 1
    assert checked == len(by_path) > 0
    for url in result.to_table()["access_url"]:
        assert httpx.get(str(url)).status_code == 200


def test_embargoed_observations_appear_after_their_date(
    tap: pyvo.dal.TAPService, clock: MovableClock
) -> None:
    query = "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE dataproduct_type <> 'image'"
    before = int(tap.search(query).to_table()["n"][0])
    clock.shift(timedelta(days=EMBARGO_DAYS + 1))
    after = int(tap.search(query).to_table()["n"][0])

    assert (before, after) == (0, 2)  # a spectrum and a light curve


def test_renamed_access_url_still_points_at_the_service(tap: pyvo.dal.TAPService) -> None:
    urls = tap.search("SELECT access_url AS url FROM ivoa.obscore").to_table()["url"]

    assert len(urls) > 0
    assert all(str(u).startswith(tap.baseurl.removesuffix("/tap") + "/files/") for u in urls)


def test_a_query_past_its_time_limit_is_an_error(service: Service) -> None:
    from firstlight.query.service.execution import execute
    from firstlight.query.service.params import query_request
    from firstlight.query.service.state import open_state

    state = open_state(service.settings)
    slow = "SELECT COUNT(*) FROM demo.sources AS a, demo.sources AS b, demo.sources AS c"
    request = query_request({"lang": "ADQL", "query": slow}, default_maxrec=10, maxrec_limit=10)
    try:
        answer = execute(state, request, service.url, timeout_seconds=0.2)
    finally:
        state.close()

    assert answer.status == 400
    assert answer.error is not None and "time limit of 0.2 s" in answer.error
