"""Real telescopes' FITS files through `firstlight manifest` and `ingest`, released, and their
ObsCore rows checked field by field against values computed here from the headers.

The corpus (tests/real_fits.py) is what astropy and astroquery ship: photographic plates,
CCD and infrared cameras, a radio map; dd/mm/yy dates, exposures in minutes, SIP and
lookup-table distortions, ZPN/AZP/SIN projections, FK4 and galactic axes. Positions are
recomputed with astropy's own footprint (``calc_footprint``, distortions included) and
frame conversion; times from the header's cards with ``astropy.time``.
"""

from __future__ import annotations

import json
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import wcs_to_celestial_frame
from erfa import ErfaWarning
from sqlalchemy import select
from typer.testing import CliRunner

from firstlight.checks.delivery_expectations import observation_expectations
from firstlight.checks.filters import load_filters
from firstlight.checks.fits_checks import check_fits_file
from firstlight.checks.rules import load_rules
from firstlight.checks.suites import load_suites
from firstlight.cli import app
from firstlight.config import Settings
from firstlight.domain.findings import Severity
from firstlight.domain.manifest import Manifest, ProductType
from firstlight.services.context import Context
from firstlight.storage.schema import observations
from tests.real_fits import BAD_DATE, CORPUS, deliver
from tests.steps import release

VALIDATIONS = Path(__file__).resolve().parents[2] / "validations"
DAY = 86400.0
POSITION = ("s_ra", "s_dec", "s_fov", "s_region")

# What the producer adds in observations.json: the header wins where it says something
# (poss1_m1's time_start is ignored: its DATE-OBS gives the day).
DECLARED = {
    "poss1_m1.fits": {
        "instrument": "POSS-I 103aE plate",
        "wavelength_min": 6.2e-7,
        "wavelength_max": 6.8e-7,
        "time_start": "1999-01-01T00:00:00Z",
    },
    "azp_1904-66.fits": {
        "target": "PKS 1904-66 field",
        "facility": "Parkes 64-m",
        "time_start": "1994-01-01T00:00:00Z",
        "time_end": "1994-01-02T12:00:00Z",
        "calib_level": 3,
    },
}


def mjd(text: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # UTC before 1960
        return float(Time(text, scale="utc").mjd)


def band(name: str) -> tuple[float, float]:
    bands = tomllib.loads((VALIDATIONS / "filters.toml").read_text())["bands"]
    low, high = bands[name]
    return float(low), float(high)


def expected_columns(delivery: Path) -> dict[str, dict[str, Any]]:
    """Non-position columns, read off each header by hand (see tests/real_fits.py)."""
    poss = mjd("1951-11-08")  # DATE-OBS = '08/11/51': a day, no time
    ukst = mjd("1976-03-11")  # DATE-OBS = '11/03/76'
    cfht = 53582.4133168  # MJD-OBS (its DATE-OBS names the day only)
    return {
        "poss1_m1.fits": {
            "facility_name": "Palomar 48-inch Schmidt",
            "instrument_name": "POSS-I 103aE plate",
            "target_name": "MESSIER 001",
            "t_min": poss,
            "t_max": poss + 1 + 50 * 60 / DAY,  # the whole day, plus EXPOSURE = 50 (minutes)
            "t_exptime": 3000.0,
            "em_min": 6.2e-7,
            "em_max": 6.8e-7,
            "calib_level": 2,
        },
        "ukst_dss.fits": {
            "facility_name": "UK 48-inch Schmidt",
            "instrument_name": None,
            "target_name": "dss126604",
            "t_min": ukst,
            "t_max": ukst + 1 + 70 * 60 / DAY,
            "t_exptime": 4200.0,
            "em_min": None,
            "em_max": None,
            "calib_level": 2,
        },
        "cfht_megacam.fits": {
            "facility_name": "CFHT 3.6m",
            "instrument_name": "MegaPrime",
            "target_name": "SA 110",
            "t_min": cfht,
            "t_max": cfht + 2.046 / DAY,
            "t_exptime": 2.046,
            "em_min": band("g.MP9401")[0],
            "em_max": band("g.MP9401")[1],
            "calib_level": 2,
        },
        "ukirt_wfcam.fits": {
            "facility_name": "UKIRT",
            "instrument_name": "WFCAM",
            "target_name": "TaurusAuriga:12_28:1_1",
            "t_min": mjd("2007-10-11T13:12:05.560"),
            "t_max": mjd("2007-10-11T13:12:16.712"),
            "t_exptime": _header_number(delivery / "ukirt_wfcam.fits", "EXPTIME"),
            "em_min": band("K")[0],
            "em_max": band("K")[1],
            "calib_level": 2,
        },
        "apogee_sip.fits": {
            "facility_name": None,
            "instrument_name": "Apogee Alta",
            "target_name": None,
            "t_min": mjd("2011-09-01T02:09:05"),
            "t_max": mjd("2011-09-01T02:09:05") + 120 / DAY,
            "t_exptime": 120.0,
            "em_min": band("B")[0],
            "em_max": band("B")[1],
            "calib_level": 2,
        },
        "effelsberg_gal.fits": {
            "facility_name": "EFFLSBRG",
            "instrument_name": None,  # INSTRUME = '' (blank: unknown)
            "target_name": "G10.500000+0.000000",
            "t_min": None,  # DATE-OBS = ''
            "t_max": None,
            "t_exptime": None,
            "em_min": None,
            "em_max": None,
            "calib_level": 2,
        },
        "ngc1316_fk4.fits": {
            "facility_name": "Optical",
            "instrument_name": None,
            "target_name": "NGC 1316",
            "t_min": None,
            "t_max": None,
            "t_exptime": None,
            "em_min": None,
            "em_max": None,
            "calib_level": 2,
        },
        "azp_1904-66.fits": {
            "facility_name": "Parkes 64-m",
            "instrument_name": None,
            "target_name": "PKS 1904-66 field",
            "t_min": mjd("1994-01-01T00:00:00"),
            "t_max": mjd("1994-01-02T12:00:00"),
            "t_exptime": None,
            "em_min": None,
            "em_max": None,
            "calib_level": 3,
        },
        "hst_lookup.fits": {
            "facility_name": None,
            "instrument_name": None,
            "target_name": None,
            "t_min": None,
            "t_max": None,
            "t_exptime": None,
            "em_min": None,
            "em_max": None,
            "calib_level": 2,
        },
    }


def _header_number(path: Path, key: str) -> float | None:
    """A number card of the image HDU or, failing that, the primary."""
    with fits.open(path) as hdul:
        image = _image_index(hdul)
        for header in (hdul[image].header, hdul[0].header):
            if key in header:
                return float(header[key])
    return None


def _image_index(hdul: fits.HDUList) -> int:
    return next(i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS", 0) >= 2)


def expected_position(path: Path) -> dict[str, Any]:
    """Centre, corners (ICRS) and diameter by astropy's footprint, all distortions applied."""
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        header = hdul[_image_index(hdul)].header
        wcs = WCS(header, hdul)
        if wcs.naxis > 2:  # effelsberg_gal: a third, degenerate LAMBDA axis
            wcs = wcs.celestial
        frame = wcs_to_celestial_frame(wcs)
        nx, ny = header["NAXIS1"], header["NAXIS2"]
        corners = wcs.calc_footprint(axes=(nx, ny), undistort=True)
        centre = wcs.all_pix2world([[(nx - 1) / 2, (ny - 1) / 2]], 0)[0]
    sky = SkyCoord(corners[:, 0], corners[:, 1], unit="deg", frame=frame).icrs
    mid = SkyCoord(centre[0], centre[1], unit="deg", frame=frame).icrs
    fov = max(sky[0].separation(sky[2]).deg, sky[1].separation(sky[3]).deg)
    return {
        "s_ra": float(mid.ra.deg),
        "s_dec": float(mid.dec.deg),
        "s_fov": float(fov),
        "corners": np.column_stack([sky.ra.deg, sky.dec.deg]),
    }


def _polygon(region: str) -> np.ndarray:
    words = region.split()
    assert words[:2] == ["POLYGON", "ICRS"], region
    return np.array([float(w) for w in words[2:]]).reshape(-1, 2)


def _ra_close(a: float, b: float, tol: float) -> bool:
    return abs((a - b + 180.0) % 360.0 - 180.0) <= tol


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def make_delivery(tmp_path: Path) -> Path:
    """The corpus in a folder, with the manifest `firstlight manifest` writes for it."""
    delivery = deliver(CORPUS, tmp_path / "real-2026-12")
    declared = tmp_path / "observations.json"
    declared.write_text(json.dumps(DECLARED))
    code, output = _run(
        "manifest",
        str(delivery),
        *("--mission", "realsky", "--delivery-id", "real-1", "--release", "r1"),
        *("--producer", "astropy and astroquery test data", "--observations", str(declared)),
    )
    assert code == 0, output
    manifest = json.loads((delivery / "manifest.json").read_text())
    assert {f["path"]: f["product_type"] for f in manifest["files"]} == dict.fromkeys(
        (item.name for item in CORPUS), "image"
    )
    assert {f["path"] for f in manifest["files"] if "observation" in f} == set(DECLARED)
    return delivery


def test_real_files_are_released_with_obscore_from_their_headers(
    ctx: Context, tmp_path: Path
) -> None:
    """The release steps as the flow runs them, without Prefect (fast)."""
    delivery = make_delivery(tmp_path)
    release(ctx, delivery)
    check_released(ctx, delivery)


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_api")
def test_real_files_through_the_ingest_command(
    ctx: Context, settings: Settings, tmp_path: Path
) -> None:
    """What an operator runs: `firstlight ingest` (the release flow under Prefect)."""
    del settings  # exported for the command by the fixture
    delivery = make_delivery(tmp_path)
    code, output = _run("ingest", str(delivery))
    assert code == 0, output
    assert "released" in output and "realsky_r1_v1" in output
    check_released(ctx, delivery)


def check_released(ctx: Context, delivery: Path) -> None:
    """Every ObsCore row equals what the headers (and the manifest) say, with its sources."""
    [current] = [r for r in ctx.archive.releases.list_releases("realsky") if r.current]
    assert current.release_key == "realsky_r1_v1"
    with ctx.archive.engine.connect() as conn:
        rows = {
            row.obs_id: row._asdict()
            for row in conn.execute(
                select(observations).where(observations.c.release_key == "realsky_r1_v1")
            )
        }
    assert set(rows) == {item.name.removesuffix(".fits") for item in CORPUS}
    for name, columns in expected_columns(delivery).items():
        row = rows[name.removesuffix(".fits")]
        for column, want in columns.items():
            got = row[column]
            if want is None or isinstance(want, str | int):
                assert got == want, (name, column, got, want)
            else:
                assert got == pytest.approx(want, rel=1e-12, abs=1e-9), (name, column, got)
        where = expected_position(delivery / name)
        assert _ra_close(row["s_ra"], where["s_ra"], 1e-7), (name, row["s_ra"], where["s_ra"])
        assert row["s_dec"] == pytest.approx(where["s_dec"], abs=1e-7), name
        assert row["s_fov"] == pytest.approx(where["s_fov"], rel=1e-9), name
        corners = _polygon(row["s_region"])
        assert corners.shape == (4, 2), name
        for got, want in zip(corners, where["corners"], strict=True):
            assert _ra_close(got[0], want[0], 2e-8) and abs(got[1] - want[1]) <= 2e-8, name
        assert row["dataproduct_type"] == "image" and row["obs_collection"] == "realsky"

    [entry] = ctx.archive.ledger.entries("realsky")
    sources = ctx.archive.ledger.observation_sources(entry.delivery_pk)
    assert set(sources) == {item.name for item in CORPUS}
    for name, columns in expected_columns(delivery).items():
        row = rows[name.removesuffix(".fits")]
        for column in (*columns, *POSITION):
            if column == "calib_level" and name != "azp_1904-66.fits":
                assert sources[name][column] == "default"
            elif row[column] is None:
                assert column not in sources[name], (name, column)
            else:
                assert column in sources[name], (name, column)
    assert sources["poss1_m1.fits"]["instrument_name"] == "manifest:instrument"
    assert sources["poss1_m1.fits"]["t_min"] == "header:DATE-OBS (a day, no time)"
    assert sources["poss1_m1.fits"]["t_exptime"] == "header:EXPOSURE (minutes)"
    assert sources["cfht_megacam.fits"]["t_min"] == "header:MJD-OBS"
    assert sources["cfht_megacam.fits"]["em_min"] == "filter table 'g.MP9401' (header:FILTER)"
    assert sources["azp_1904-66.fits"]["calib_level"] == "manifest:calib_level"
    assert sources["ukirt_wfcam.fits"]["s_ra"] == "header[1]:WCS (RA---ZPN, DEC--ZPN)"
    assert sources["effelsberg_gal.fits"]["s_ra"] == "header:WCS (GLON-SIN, GLAT-SIN)"

    found = ctx.archive.ledger.findings(entry.delivery_pk)
    assert not [f for f in found if f.severity is Severity.ERROR]
    null_warnings = {
        (f.file, f.column) for f in found if f.check == "observation.metadata" and f.column
    }
    for name, columns in expected_columns(delivery).items():
        for column, want in columns.items():
            defaulted = column == "calib_level" and name != "azp_1904-66.fits"
            assert ((name, column) in null_warnings) == (want is None or defaulted), (name, column)
    # Checksums: verified where written (ngc1316_fk4), a warning where not.
    missing_sums = {f.file for f in found if f.check == "fits.checksum"}
    assert missing_sums == {item.name for item in CORPUS} - {"ngc1316_fk4.fits"}
    assert not [f for f in found if f.check == "fits.checksum" and "match" in f.reason]


def test_a_real_defect_is_still_refused(tmp_path: Path) -> None:
    """VLA FIRST's DATE-OBS = '19930417' is in no form the standard allows."""
    delivery = deliver([BAD_DATE], tmp_path / "first")
    rules = load_rules(VALIDATIONS, "realsky")
    found = check_fits_file(delivery / BAD_DATE.name, BAD_DATE.name, ProductType.IMAGE, rules)
    [error] = [f for f in found if f.severity is Severity.ERROR]
    assert (error.check, error.hdu) == ("fits.keyword", 0)
    assert "DATE-OBS is not a FITS date" in error.reason and "19930417" in str(error.observed)


def test_the_strict_profile_still_catches_what_real_files_lack(tmp_path: Path) -> None:
    """Under mission demo's profile the same files are refused, each reason named."""
    delivery = deliver(CORPUS, tmp_path / "strict")
    rules = load_rules(VALIDATIONS, "demo")
    errors = {
        (item.name, f.check, f.reason)
        for item in CORPUS
        for f in check_fits_file(delivery / item.name, item.name, ProductType.IMAGE, rules)
        if f.severity is Severity.ERROR
    }
    assert ("poss1_m1.fits", "fits.checksum", "CHECKSUM is missing") in errors
    assert ("poss1_m1.fits", "fits.keyword", "required keyword INSTRUME is missing") in errors
    assert ("apogee_sip.fits", "fits.keyword", "required keyword TELESCOP is missing") in errors
    assert ("ngc1316_fk4.fits", "fits.keyword", "required keyword DATE-OBS is missing") in errors
    assert not [e for e in errors if e[0] == "ngc1316_fk4.fits" and "CHECKSUM" in e[2]]

    manifest = Manifest.model_validate_json(
        (make_delivery(tmp_path / "m") / "manifest.json").read_bytes()
    )
    findings = observation_expectations(
        tmp_path / "m" / "real-2026-12",
        manifest,
        frozenset(),
        load_suites(VALIDATIONS, "demo").observation,
        tmp_path / "results",
        filters=load_filters(VALIDATIONS, "demo"),
        required=rules.observation.required,
    )
    required = {(f.file, f.column) for f in findings if f.severity is Severity.ERROR and f.column}
    assert ("hst_lookup.fits", "t_min") in required
    assert ("effelsberg_gal.fits", "instrument_name") in required
    assert ("azp_1904-66.fits", "facility_name") not in required  # the manifest gave it
    assert ("cfht_megacam.fits", "em_min") not in required  # the filter table gave it
