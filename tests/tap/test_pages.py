"""The pages as scripts see them (JSON at the same URLs) and what they may say about
embargoed data: counts before the date, names and coverage only after it."""

from __future__ import annotations

import io
from datetime import timedelta

import astropy.units as u
import httpx
import numpy as np
import pytest
import pyvo
from astropy.coordinates import Latitude, Longitude
from astropy.io import fits
from mocpy import MOC

from tests.tap.conftest import DARK, EMBARGO_DAYS, MovableClock, Service

DEMO = "demo_dr1_v1"
DARK_KEY = "dark_dr1_v1"


def _json(service: Service, path: str) -> dict[str, object]:
    r = httpx.get(f"{service.url}{path}", params={"format": "json"}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    found = r.json()
    assert isinstance(found, dict)
    return found


def test_home_lists_missions_with_current_release_and_endpoints(service: Service) -> None:
    html = httpx.get(f"{service.url}/", timeout=60)
    data = _json(service, "/")
    by_accept = httpx.get(
        f"{service.url}/", headers={"Accept": "application/json"}, timeout=60
    ).json()

    assert html.headers["content-type"].startswith("text/html")
    assert f'href="/releases/{DEMO}"' in html.text
    assert f'pyvo.dal.TAPService("{service.url}/tap")' in html.text.replace("&#34;", '"')
    missions = {m["mission"]: m for m in data["missions"]}  # type: ignore[union-attr]
    assert set(missions) == {"demo", DARK}
    assert missions["demo"]["current"]["release_key"] == DEMO
    assert missions["demo"]["current"]["rows"] == 1500
    assert missions["demo"]["last"]["time_to_data_seconds"] > 0
    assert {e["name"] for e in data["endpoints"]} >= {  # type: ignore[union-attr]
        "TAP 1.1 (ADQL, sync and async)", "Simple Cone Search", "DataLink",
    }  # fmt: skip
    assert by_accept["missions"] == data["missions"]


def test_release_page_lists_tables_columns_and_public_files_only(service: Service) -> None:
    data = _json(service, f"/releases/{DEMO}")
    release = data["release"]
    assert isinstance(release, dict)

    (table,) = release["tables"]
    assert table["adql_names"] == ["demo.sources", f"{DEMO}.sources"]
    assert table["row_count"] == 1500
    ra = next(c for c in table["columns"] if c["name"] == "ra")
    assert (ra["datatype"], ra["unit"], ra["ucd"]) == ("double", "deg", "pos.eq.ra;meta.main")
    public = sorted(
        f["path"] for f in service.manifest["files"] if f["product_type"] in ("image", "catalogue")
    )  # type: ignore[index, union-attr]
    dark = [f["path"] for f in service.products("spectrum") + service.products("timeseries")]
    assert sorted(f["path"] for f in release["files"]) == public
    page = httpx.get(f"{service.url}/releases/{DEMO}", timeout=60).text
    for path in dark:
        assert path not in page and path not in str(data)
    (group,) = release["embargo"]
    assert (group["files"], group["observations"]) == (len(dark), len(dark))
    assert release["data_docs"] is None  # it would name the embargoed files
    for f in release["files"]:
        got = httpx.get(f"{service.url}/{f['url']}", timeout=60)
        assert got.status_code == 200 and len(got.content) == f["size"]


def test_moc_is_served_as_fits_and_json_and_holds_the_catalogue(service: Service) -> None:
    data = _json(service, f"/releases/{DEMO}")
    coverage = data["coverage"]
    assert isinstance(coverage, dict)
    fits_bytes = httpx.get(f"{service.url}{coverage['moc_fits']}", timeout=60)
    as_json = httpx.get(f"{service.url}{coverage['moc_json']}", timeout=60).json()

    assert fits_bytes.headers["content-type"] == "application/fits"
    hdus = fits.HDUList.fromstring(fits_bytes.content)
    header = hdus[1].header
    assert (header["PIXTYPE"], header["ORDERING"], header["COORDSYS"]) == ("HEALPIX", "NUNIQ", "C")
    assert header["MOCORDER"] == 8
    moc = MOC.from_json(as_json)
    cells = hdus[1].data.field(0)
    assert len(cells) == sum(len(v) for v in as_json.values()) > 0
    assert 0 < coverage["sky_fraction"] == pytest.approx(moc.sky_fraction)
    # The synthetic delivery's field is centred on (150, 2.2) (services.synth).
    assert moc.contains_lonlat(np.array([150.0]) * u.deg, np.array([2.2]) * u.deg)[0]


def test_embargoed_release_is_counted_then_named_after_its_date(
    service: Service, clock: MovableClock
) -> None:
    before = _json(service, f"/releases/{DARK_KEY}")
    moc_before = httpx.get(f"{service.url}/releases/{DARK_KEY}/moc.json", timeout=60).json()
    png_before = httpx.get(f"{service.url}/releases/{DARK_KEY}/coverage.png", timeout=60)
    html_before = httpx.get(f"{service.url}/releases/{DARK_KEY}", timeout=60).text
    clock.shift(timedelta(days=EMBARGO_DAYS + 1))
    after = _json(service, f"/releases/{DARK_KEY}")
    moc_after = httpx.get(f"{service.url}/releases/{DARK_KEY}/moc.json", timeout=60).json()
    png_after = httpx.get(f"{service.url}/releases/{DARK_KEY}/coverage.png", timeout=60)

    rb, ra = before["release"], after["release"]
    assert isinstance(rb, dict) and isinstance(ra, dict)
    assert (rb["tables"], rb["files"]) == ([], [])
    assert [(g["tables"], g["files"], g["observations"]) for g in rb["embargo"]] == [(1, 2, 1)]
    assert "dark_field01_g.fits" not in html_before and "sources" not in str(rb["tables"])
    assert sum(len(v) for v in moc_before.values()) == 0
    assert [t["name"] for t in ra["tables"]] == ["sources"]
    assert "images/dark_field01_g.fits" in [f["path"] for f in ra["files"]]
    assert ra["embargo"] == []
    assert MOC.from_json(moc_after).sky_fraction > 0
    assert png_before.status_code == png_after.status_code == 200
    assert png_before.content != png_after.content


def test_mission_page_and_not_found(service: Service) -> None:
    data = _json(service, "/missions/demo")
    missing = httpx.get(f"{service.url}/releases/nope_dr1_v1", timeout=60)
    missing_json = httpx.get(f"{service.url}/missions/nope?format=json", timeout=60)

    (rel,) = data["releases"]  # type: ignore[misc]
    assert rel["release_key"] == DEMO and rel["current"] is True
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert missing_json.status_code == 404 and "error" in missing_json.json()


def test_operations_page_shows_time_to_data_per_delivery(service: Service) -> None:
    data = _json(service, "/operations")
    ops = data["operations"]
    assert isinstance(ops, dict)
    plot = httpx.get(f"{service.url}{data['plot']}", timeout=120)

    assert ops["by_state"] == {"released": 2}
    assert all(d["time_to_data_seconds"] > 0 for d in ops["deliveries"])
    assert {"verify", "validate", "ingest", "index", "promote"} <= set(
        ops["deliveries"][0]["stage_seconds"]
    )
    (week,) = ops["weeks"]
    assert week["released"] == 2 and week["p50_seconds"] <= week["p90_seconds"]
    assert plot.status_code == 200 and plot.content[:8] == b"\x89PNG\r\n\x1a\n"


def coverage_matches_the_delivered_positions(service: Service) -> None:
    """The served MOC is exactly the catalogue's positions (as delivered, read here with
    astropy) plus a cone of s_fov/2 around each public observation (ObsCore via TAP)."""
    release = _json(service, f"/releases/{DEMO}")["release"]
    assert isinstance(release, dict)
    (catalogue,) = [f for f in release["files"] if f["product_type"] == "catalogue"]
    data = httpx.get(f"{service.url}/{catalogue['url']}", timeout=60).content
    rows = fits.open(io.BytesIO(data))[1].data
    tap = pyvo.dal.TAPService(service.tap)
    obs = tap.search(
        "SELECT s_ra, s_dec, s_fov FROM ivoa.obscore WHERE obs_collection = 'demo'"
    ).to_table()
    expected = MOC.from_lonlat(
        Longitude(np.asarray(rows["ra"], dtype=float), u.deg),
        Latitude(np.asarray(rows["dec"], dtype=float), u.deg),
        max_norder=8,
    ).union(
        MOC.from_cones(
            Longitude(np.asarray(obs["s_ra"], dtype=float), u.deg),
            Latitude(np.asarray(obs["s_dec"], dtype=float), u.deg),
            radius=np.asarray(obs["s_fov"], dtype=float) / 2 * u.deg,
            max_depth=8,
            union_strategy="small_cones",
        )
    )
    served = MOC.from_json(httpx.get(f"{service.url}/releases/{DEMO}/moc.json", timeout=60).json())

    assert served == expected


def test_coverage_matches_the_delivered_positions(service: Service) -> None:
    coverage_matches_the_delivered_positions(service)
