"""SIA 2.0 through pyvo's SIA2Service, against ObsCore read through TAP; and ObsCore itself:
every public release (not only the current one), a release date on every row, one
publisher DID per product and release."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import pyvo
from astropy.table import Table
from astropy.time import Time

from firstlight.config import Settings
from firstlight.domain.sky import angular_separation_deg
from firstlight.query.service.app import ServiceThread, create_app, server
from firstlight.services.context import close_contexts, context_for
from tests.deliveries import generated
from tests.steps import release

Row = dict[str, Any]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service over two releases of mission demo: v1, then v2 (current)."""
    data_dir = tmp_path_factory.mktemp("sia") / "var"
    settings = Settings(data_dir=data_dir, query_port=0)
    ctx = context_for(settings)
    for version in ("1", "2"):
        release(ctx, generated(data_dir / "deliveries", version=version, rows=50))
    close_contexts()
    thread = ServiceThread(server(settings, host="127.0.0.1", port=0, app=create_app(settings)))
    thread.start()
    try:
        yield thread.url
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def obscore(base_url: str) -> list[Row]:
    table = pyvo.dal.TAPService(f"{base_url}/tap").search("SELECT * FROM ivoa.obscore").to_table()
    return [_row(table, i) for i in range(len(table))]


@pytest.fixture(scope="module")
def images(obscore: list[Row]) -> list[Row]:
    return [r for r in obscore if r["dataproduct_type"] in ("image", "cube")]


@pytest.fixture(scope="module")
def sia(base_url: str) -> pyvo.dal.SIA2Service:
    return pyvo.dal.SIA2Service(f"{base_url}/sia")


def _row(table: Table, i: int) -> Row:
    out: Row = {}
    for name in table.colnames:
        value = table[name][i]
        out[name] = None if getattr(value, "mask", False) is True else value
    return out


def dids(table: Table) -> set[str]:
    return {str(d) for d in table["obs_publisher_did"]}


def test_obscore_lists_every_public_release(obscore: list[Row]) -> None:
    releases = {str(r["obs_publisher_did"]).split("?", 1)[1].split("/", 1)[0] for r in obscore}

    assert len(releases) == 2  # v1 is no longer current, and still listed


def test_obscore_rows_have_a_release_date_and_unique_dids(obscore: list[Row]) -> None:
    assert all(r["obs_release_date"] not in (None, "") for r in obscore)
    assert len({r["obs_publisher_did"] for r in obscore}) == len(obscore)


def test_sia_capabilities_declare_the_query_endpoint(sia: pyvo.dal.SIA2Service) -> None:
    assert sia.query_ep.endswith("/sia/query")


def test_sia_without_constraints_lists_every_image(
    sia: pyvo.dal.SIA2Service, images: list[Row]
) -> None:
    got = sia.search(maxrec=1000).to_table()

    assert len(images) >= 2
    assert dids(got) == {r["obs_publisher_did"] for r in images}


def _near(ra: float, dec: float, radius: float) -> Callable[[Row], bool]:
    def match(r: Row) -> bool:
        sep = float(angular_separation_deg(r["s_ra"], r["s_dec"], ra, dec))
        return sep <= radius + (r["s_fov"] or 0) / 2

    return match


def _same(first: Row) -> Callable[[str], Callable[[Row], bool]]:
    def column(name: str) -> Callable[[Row], bool]:
        return lambda r: r[name] == first[name]

    return column


def _overlaps(low: str, high: str, lo: float, hi: float) -> Callable[[Row], bool]:
    def match(r: Row) -> bool:
        return r[low] is not None and r[low] <= hi and r[high] >= lo

    return match


@pytest.mark.parametrize(
    "case",
    [
        "pos_circle", "pos_range", "band", "time", "exptime", "fov", "calib", "collection",
        "instrument", "facility", "target", "format", "dptype", "id", "two_positions",
    ],
)  # fmt: skip
def test_each_sia_parameter_selects_what_obscore_says(
    case: str, sia: pyvo.dal.SIA2Service, images: list[Row]
) -> None:
    first = images[0]
    ra, dec = float(first["s_ra"]), float(first["s_dec"])
    t_mid = (float(first["t_min"]) + float(first["t_max"])) / 2
    when = Time(t_mid, format="mjd")
    same = _same(first)
    cases: dict[str, tuple[dict[str, Any], Callable[[Row], bool]]] = {
        "pos_circle": ({"pos": (ra, dec, 0.01)}, _near(ra, dec, 0.01)),
        "pos_range": (
            {"pos": (ra - 0.5, ra + 0.5, dec - 0.5, dec + 0.5)},
            lambda r: abs(r["s_ra"] - ra) <= 0.5 and abs(r["s_dec"] - dec) <= 0.5,
        ),
        "band": ({"band": (0, math.inf)}, _overlaps("em_min", "em_max", 0, math.inf)),
        "time": ({"time": (when, when)}, _overlaps("t_min", "t_max", t_mid, t_mid)),
        "exptime": ({"exptime": (0, 1e9)}, _overlaps("t_exptime", "t_exptime", 0, 1e9)),
        "fov": ({"field_of_view": (0, 1)}, _overlaps("s_fov", "s_fov", 0, 1)),
        "calib": ({"calib_level": int(first["calib_level"])}, same("calib_level")),
        "collection": ({"collection": "demo"}, lambda r: r["obs_collection"] == "demo"),
        "instrument": ({"instrument": str(first["instrument_name"])}, same("instrument_name")),
        "facility": ({"facility": str(first["facility_name"])}, same("facility_name")),
        "target": ({"target_name": str(first["target_name"])}, same("target_name")),
        "format": ({"res_format": "application/fits"}, same("access_format")),
        "dptype": ({"data_type": "image"}, same("dataproduct_type")),
        "id": ({"publisher_did": str(first["obs_publisher_did"])}, same("obs_publisher_did")),
        "two_positions": ({"pos": [(ra, dec, 0.01), (0.0, -89.0, 0.01)]}, _near(ra, dec, 0.01)),
    }
    kwargs, keep = cases[case]

    got = sia.search(maxrec=1000, **kwargs).to_table()

    expected = {r["obs_publisher_did"] for r in images if keep(r)}
    assert expected, f"the case {case} selects nothing here: a weak test"
    assert dids(got) == expected


def test_maxrec_cuts_and_reports_overflow(base_url: str, images: list[Row]) -> None:
    response = httpx.get(f"{base_url}/sia/query", params={"MAXREC": "1"})

    assert response.status_code == 200
    assert 'value="OVERFLOW"' in response.text
    assert len(images) > 1


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"POS": "CIRCLE 400 0 1"}, "RA must be in [0, 360]"),
        ({"POS": "BOX 1 2 3"}, "expected CIRCLE ra dec radius"),
        ({"BAND": "2 1"}, "lower bound is above"),
        ({"CALIB": "two"}, "not an integer"),
        ({"POL": "Z"}, "POL='Z'"),
    ],
)
def test_bad_parameters_are_dali_errors(base_url: str, params: dict[str, str], says: str) -> None:
    response = httpx.get(f"{base_url}/sia/query", params=params)

    assert response.status_code == 400
    assert 'value="ERROR"' in response.text
    assert says in response.text
