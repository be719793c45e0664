"""The pure modules of the service, as tables of inputs and outputs: VOTable cells and
documents, output formats, TAP parameters, the UWS state machine and its XML, VOSI."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from astropy.io.votable import parse

from firstlight.query.service import uws
from firstlight.query.service.formats import CSV, JSON, TSV, VOTABLE, VOTABLE_TD, render
from firstlight.query.service.params import ParameterError, query_request
from firstlight.query.service.uws import Job, Phase, PhaseError
from firstlight.query.service.vosi import examples_xhtml
from firstlight.query.service.votable import (
    FieldSpec,
    ServiceDescriptor,
    cell,
    error_document,
    results_document,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "datatype", "td"),
    [
        (None, "int", ""),
        (None, "char", ""),
        (True, "boolean", "T"),
        (0, "boolean", "F"),
        (1.5, "double", "1.5"),
        (math.nan, "double", "NaN"),
        (math.inf, "float", "+Inf"),
        (-math.inf, "float", "-Inf"),
        (Decimal("2.50"), "double", "2.5"),
        (Decimal("7"), "long", "7"),
        ("a<b & c", "char", "a&lt;b &amp; c"),
        ("bell\x07", "char", "bell\ufffd"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "char", "2026-01-02T03:04:05"),
        (datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC), "char", "2026-01-02T03:04:05.250"),
        ((1.0, 2.0), "double", "1.0 2.0"),
    ],
)
def test_cells(value: Any, datatype: str, td: str) -> None:
    assert cell(value, datatype) == td


COLUMNS = [
    FieldSpec("id", "long", ucd="meta.id;meta.main"),
    FieldSpec("name", "char", "*", description="a & b"),
    FieldSpec("flux", "double", unit="mJy"),
    FieldSpec("ok", "boolean"),
    FieldSpec("seen", "char", "*", xtype="timestamp"),
]
ROWS = [
    (1, "Cen ö", 1.25, True, datetime(2026, 1, 1, tzinfo=UTC)),
    (2, None, math.nan, None, None),
]


def _votable(text: str) -> Any:
    return parse(io.BytesIO(text.encode()))


def test_results_document_reads_back_with_astropy() -> None:
    doc = "".join(results_document(COLUMNS, ROWS, overflow=True))

    table = _votable(doc).get_first_table()
    data = table.to_table()
    assert list(data["id"]) == [1, 2]
    assert list(data["name"]) == ["Cen ö", ""]  # astropy reads an empty char cell as ""
    assert data["flux"][0] == 1.25 and data["flux"].mask[1]  # NaN: a null to astropy
    assert data["flux"].unit == "mJy"
    assert bool(data["ok"][0]) and data["ok"].mask[1]
    assert data["seen"][0] == "2026-01-01T00:00:00"
    assert doc.index('value="OVERFLOW"') > doc.index("</TABLE>")
    assert doc.index('value="OK"') < doc.index("<TABLE")


def test_no_overflow_no_overflow_info() -> None:
    assert "OVERFLOW" not in "".join(results_document(COLUMNS, ROWS[:1], overflow=False))


def test_service_descriptor_refers_to_the_id_column() -> None:
    cols = [*COLUMNS, FieldSpec("obs_publisher_did", "char", "*")]
    rows = [(*ROWS[0], "ivo://x?y")]
    doc = "".join(
        results_document(
            cols, rows, descriptors=[ServiceDescriptor("http://h/dl", "obs_publisher_did")]
        )
    )

    root = ET.fromstring(doc)
    ns = {"v": "http://www.ivoa.net/xml/VOTable/v1.3"}
    field = root.find(".//v:FIELD[@name='obs_publisher_did']", ns)
    param = root.find(".//v:RESOURCE[@utype='adhoc:service']//v:PARAM[@name='ID']", ns)
    assert field is not None and param is not None
    assert param.get("ref") == field.get("ID")


def test_error_document_carries_the_message() -> None:
    doc = error_document("line 1, column 8: unexpected <FROM>")

    root = ET.fromstring(doc)
    info = root.find(".//{http://www.ivoa.net/xml/VOTable/v1.3}INFO")
    assert info is not None
    assert (info.get("name"), info.get("value"), info.text) == (
        "QUERY_STATUS", "ERROR", "line 1, column 8: unexpected <FROM>",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (CSV, "id,name,flux,ok,seen\n1,Cen ö,1.25,true,2026-01-01T00:00:00\n2,,,,\n"),
        (TSV, "id\tname\tflux\tok\tseen\n1\tCen ö\t1.25\ttrue\t2026-01-01T00:00:00\n2\t\t\t\t\n"),
    ],
)
def test_delimited_formats(fmt: Any, expected: str) -> None:
    assert "".join(render(fmt, COLUMNS, ROWS, overflow=False)) == expected


def test_json_format_has_metadata_and_nulls_for_nan() -> None:
    doc = json.loads("".join(render(JSON, COLUMNS, ROWS, overflow=True)))

    assert [m["name"] for m in doc["metadata"]] == ["id", "name", "flux", "ok", "seen"]
    assert doc["data"][1] == [2, None, None, None, None]
    assert doc["overflow"] is True


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"lang": "ADQL", "query": "SELECT 1"}, ("SELECT 1", VOTABLE, 100)),
        ({"lang": "adql-2.1", "query": " q ", "maxrec": "5"}, ("q", VOTABLE, 5)),
        ({"lang": "ADQL", "query": "q", "maxrec": "5000"}, ("q", VOTABLE, 1000)),
        ({"lang": "ADQL", "query": "q", "format": "text/csv"}, ("q", CSV, 100)),
        (
            {
                "lang": "ADQL",
                "query": "q",
                "responseformat": "application/x-votable+xml;serialization=TABLEDATA",
            },
            ("q", VOTABLE_TD, 100),
        ),
        ({"request": "doQuery", "lang": "ADQL", "query": "q", "maxrec": "0"}, ("q", VOTABLE, 0)),
    ],
)
def test_query_parameters(params: dict[str, str], expected: tuple[str, Any, int]) -> None:
    got = query_request(params, default_maxrec=100, maxrec_limit=1000)

    assert (got.query, got.format, got.maxrec) == expected


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"query": "q"}, "LANG is missing"),
        ({"lang": "SQL", "query": "q"}, "LANG='SQL'"),
        ({"lang": "ADQL"}, "QUERY is missing"),
        ({"lang": "ADQL", "query": "q", "request": "getCapabilities"}, "REQUEST="),
        ({"lang": "ADQL", "query": "q", "upload": "t,u"}, "UPLOAD"),
        ({"lang": "ADQL", "query": "q", "maxrec": "ten"}, "MAXREC='ten'"),
        ({"lang": "ADQL", "query": "q", "format": "hdf5"}, "FORMAT 'hdf5'"),
    ],
)
def test_bad_query_parameters(params: dict[str, str], says: str) -> None:
    with pytest.raises(ParameterError, match=says):
        query_request(params, default_maxrec=100, maxrec_limit=1000)


def _job(phase: Phase = Phase.PENDING) -> Job:
    return Job("j1", phase, {"query": "q"}, T0, T0 + timedelta(days=3), 600)


@pytest.mark.parametrize(
    ("phase", "move", "after"),
    [
        (Phase.PENDING, "queue", Phase.QUEUED),
        (Phase.QUEUED, "queue", Phase.QUEUED),
        (Phase.EXECUTING, "queue", Phase.EXECUTING),
        (Phase.COMPLETED, "queue", PhaseError),
        (Phase.ERROR, "queue", PhaseError),
        (Phase.QUEUED, "start", Phase.EXECUTING),
        (Phase.PENDING, "start", PhaseError),
        (Phase.EXECUTING, "finish", Phase.COMPLETED),
        (Phase.QUEUED, "finish", PhaseError),
        (Phase.EXECUTING, "fail", Phase.ERROR),
        (Phase.COMPLETED, "fail", PhaseError),
        (Phase.PENDING, "abort", Phase.ABORTED),
        (Phase.EXECUTING, "abort", Phase.ABORTED),
        (Phase.COMPLETED, "abort", Phase.COMPLETED),
        (Phase.PENDING, "parameters", Phase.PENDING),
        (Phase.QUEUED, "parameters", PhaseError),
    ],
)
def test_uws_moves(phase: Phase, move: str, after: Phase | type[PhaseError]) -> None:
    moves = {
        "queue": uws.queue,
        "start": lambda j: uws.start(j, T0),
        "finish": lambda j: uws.finish(j, T0, []),
        "fail": lambda j: uws.fail(j, T0, "boom"),
        "abort": lambda j: uws.abort(j, T0),
        "parameters": lambda j: uws.with_parameters(j, {"maxrec": "3"}),
    }
    if after is PhaseError:
        with pytest.raises(PhaseError):
            moves[move](_job(phase))
    else:
        assert moves[move](_job(phase)).phase is after


@pytest.mark.parametrize(("asked", "granted"), [(10, 10), (0, 600), (-5, 600), (10_000, 600)])
def test_execution_duration_is_capped(asked: int, granted: int) -> None:
    assert uws.with_execution_duration(_job(), asked, 600).execution_duration == granted


def test_job_survives_a_round_trip_through_json() -> None:
    job = uws.finish(
        uws.start(uws.queue(_job()), T0),
        T0,
        [uws.Result("result", "results/result", "text/csv", 3)],
    )

    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job


def test_job_document_follows_the_uws_schema_order() -> None:
    job = uws.fail(uws.start(uws.queue(_job()), T0), T0, "no such table")

    root = ET.fromstring(uws.job_xml(job, "http://h/tap/async/j1"))
    tags = [child.tag.split("}")[1] for child in root]
    assert tags == [
        "jobId", "ownerId", "phase", "quote", "creationTime", "startTime", "endTime",
        "executionDuration", "destruction", "parameters", "results", "errorSummary",
    ]  # fmt: skip
    assert root.get("version") == "1.1"


@pytest.mark.parametrize(
    ("phases", "after", "last", "expected"),
    [
        ([], None, None, ["a", "b", "c"]),
        (["COMPLETED"], None, None, ["b"]),
        ([], T0 + timedelta(minutes=1), None, ["b", "c"]),
        ([], None, 2, ["c", "b"]),
    ],
)
def test_job_list_filters(
    phases: list[str], after: datetime | None, last: int | None, expected: list[str]
) -> None:
    jobs = [
        Job("a", Phase.PENDING, {}, T0, T0, 1),
        Job("b", Phase.COMPLETED, {}, T0 + timedelta(minutes=2), T0, 1),
        Job("c", Phase.ERROR, {}, T0 + timedelta(minutes=3), T0, 1),
        Job("d", Phase.ARCHIVED, {}, T0 + timedelta(minutes=4), T0, 1),
    ]

    chosen = uws.select_jobs(jobs, phases=phases, after=after, last=last)

    assert [j.job_id for j in chosen] == expected


def test_examples_are_xhtml_with_named_queries() -> None:
    root = ET.fromstring(examples_xhtml())
    ns = {"h": "http://www.w3.org/1999/xhtml"}

    examples = root.findall(".//h:div[@typeof='example']", ns)
    assert examples
    for div in examples:
        assert div.find("h:*[@property='name']", ns) is not None
        query = div.find("h:*[@property='query']", ns)
        assert query is not None and (query.text or "").startswith("SELECT")
