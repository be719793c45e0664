"""ObsCore rows from headers: each keyword and its alternatives, the manifest's fields
where the header says nothing, NULL with a warning (an error if the mission requires it)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from erfa import ErfaWarning

from firstlight.checks.filters import FilterTable, load_filters
from firstlight.checks.obscore import DerivedObservation, observation_from_fits
from firstlight.domain.findings import Severity
from firstlight.domain.manifest import ObservationFields, ProductType
from firstlight.domain.release import ObsField

VALIDATIONS = Path(__file__).resolve().parents[2] / "validations"
DAY = 86400.0


def mjd(text: str, scale: str = "utc") -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)
        return float(Time(text, scale=scale).utc.mjd)


def image(tmp_path: Path, *, wcs: bool = True, **cards: Any) -> Path:
    header = fits.Header()
    if wcs:
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [10.68, 41.27]
        w.wcs.crpix = [8.5, 8.5]
        w.wcs.cdelt = [-0.0002, 0.0002]
        header = w.to_header()
    for key, value in cards.items():
        header[key] = value
    path = tmp_path / "img.fits"
    fits.PrimaryHDU(np.zeros((16, 16), np.float32), header=header).writeto(path)
    return path


def spectrum(tmp_path: Path, **cards: Any) -> Path:
    primary = fits.PrimaryHDU()
    for key, value in cards.items():
        primary.header[key] = value
    table = fits.BinTableHDU.from_columns([fits.Column("FLUX", "D", array=np.ones(4))])
    path = tmp_path / "spec.fits"
    fits.HDUList([primary, table]).writeto(path)
    return path


def derive(
    path: Path,
    product_type: ProductType = ProductType.IMAGE,
    declared: ObservationFields | None = None,
    filters: FilterTable | None = None,
) -> DerivedObservation:
    return observation_from_fits(
        path,
        path.name,
        product_type,
        mission="m",
        release_key="m_r_v1",
        access_url="u",
        release_date=None,
        declared=declared,
        filters=filters or load_filters(VALIDATIONS, "m"),
    )


def test_alternative_keywords(tmp_path: Path) -> None:
    """TELESCOP-less, INSTRUME-less headers: OBSERVAT, DETECTOR, OBJNAME, XPOSURE."""
    path = image(
        tmp_path,
        OBSERVAT="La Silla",
        DETECTOR="CCD#3",
        OBJNAME="NGC 253",
        XPOSURE=30.0,
        **{"MJD-OBS": 60000.25},
    )
    derived = derive(path)
    obs = derived.observation
    assert (obs.facility_name, obs.instrument_name, obs.target_name) == (
        "La Silla",
        "CCD#3",
        "NGC 253",
    )
    assert obs.t_min == 60000.25
    assert obs.t_max == pytest.approx(60000.25 + 30 / DAY, abs=1e-12)
    assert derived.sources["facility_name"] == "header:OBSERVAT"
    assert derived.sources["t_max"] == "header:MJD-OBS+header:XPOSURE"


@pytest.mark.parametrize(
    ("cards", "t_min", "t_max"),
    [
        ({"DATE-OBS": "2020-01-01T00:00:00", "TIMESYS": "TT"}, mjd("2020-01-01", "tt"), None),
        ({"DATE-OBS": "19/05/94", "TIME-OBS": "12:00:00"}, mjd("1994-05-19T12:00:00"), None),
        ({"MJD-OBS": 50000.5, "MJD-END": 50000.75}, 50000.5, 50000.75),
        (
            {"DATE-BEG": "2020-01-01T00:00:00", "TELAPSE": 864.0},
            mjd("2020-01-01"),
            mjd("2020-01-01") + 0.01,
        ),
        # A day-only end ends with its day.
        (
            {"DATE-OBS": "2020-01-01", "DATE-END": "2020-01-03"},
            mjd("2020-01-01"),
            mjd("2020-01-04"),
        ),
        ({"DATE-OBS": "01/01/20"}, mjd("1920-01-01"), mjd("1920-01-02")),
        ({"DATE-OBS": "2020-01-01T00:00:00", "MJD-OBS": 1.0}, mjd("2020-01-01"), None),
    ],
)
def test_times(tmp_path: Path, cards: dict[str, Any], t_min: float, t_max: float | None) -> None:
    obs = derive(image(tmp_path, **cards)).observation
    assert obs.t_min == pytest.approx(t_min, abs=1e-9)
    if t_max is None:
        assert obs.t_max is None
    else:
        assert obs.t_max == pytest.approx(t_max, abs=1e-9)


def test_tt_is_converted_to_utc(tmp_path: Path) -> None:
    obs = derive(image(tmp_path, **{"DATE-OBS": "2020-01-01T00:01:09.184", "TIMESYS": "TT"}))
    assert obs.observation.t_min == pytest.approx(mjd("2020-01-01T00:00:00"), abs=1e-9)


def test_exposure_in_minutes_by_its_comment(tmp_path: Path) -> None:
    path = image(tmp_path, EXPOSURE=(50.0, "Exposure time minutes"), **{"DATE-OBS": "08/11/51"})
    derived = derive(path)
    obs = derived.observation
    assert obs.t_exptime == 3000.0
    assert obs.t_min == pytest.approx(mjd("1951-11-08"), abs=1e-9)
    assert obs.t_max == pytest.approx(mjd("1951-11-09") + 3000 / DAY, abs=1e-9)
    assert derived.sources["t_min"] == "header:DATE-OBS (a day, no time)"


def test_spectrum_position_alternatives(tmp_path: Path) -> None:
    obs = derive(
        spectrum(tmp_path, RA_OBJ=150.0, DEC_OBJ=2.5, APERTURE=0.001), ProductType.SPECTRUM
    ).observation
    assert (obs.s_ra, obs.s_dec, obs.s_fov) == (150.0, 2.5, 0.001)
    assert obs.s_region == "CIRCLE ICRS 150.00000000 2.50000000 0.00050000"
    sexagesimal = derive(
        spectrum(tmp_path / "o", OBJCTRA="10 00 00", OBJCTDEC="-30 30 00"), ProductType.SPECTRUM
    )
    assert sexagesimal.observation.s_ra == pytest.approx(150.0)
    assert sexagesimal.observation.s_dec == pytest.approx(-30.5)
    assert sexagesimal.observation.s_region == "POSITION ICRS 150.00000000 -30.50000000"


def test_filter_table_with_an_instrument_of_its_own(tmp_path: Path) -> None:
    table = FilterTable(bands={"K": (2.0e-6, 2.4e-6), "NIRI/K": (2.03e-6, 2.36e-6)})
    path = image(tmp_path, INSTRUME="NIRI", FILTER="K")
    obs = derive(path, filters=table).observation
    assert (obs.em_min, obs.em_max) == (2.03e-6, 2.36e-6)
    other = derive(image(tmp_path / "o", INSTRUME="WFCAM", FILTER="K"), filters=table)
    assert (other.observation.em_min, other.observation.em_max) == (2.0e-6, 2.4e-6)
    unknown = derive(image(tmp_path / "u", FILTER="Halpha-6563"), filters=table)
    assert unknown.observation.em_min is None
    assert any("Halpha-6563" in note for note in unknown.notes)


@pytest.fixture(autouse=True)
def _subfolders(tmp_path: Path) -> None:
    for name in ("o", "u"):
        (tmp_path / name).mkdir()


def test_manifest_completes_what_the_header_lacks_and_the_header_wins(tmp_path: Path) -> None:
    declared = ObservationFields(
        target="from manifest",
        facility="Manifest Telescope",
        instrument="Manifest Cam",
        time_start=datetime(2021, 1, 1, tzinfo=UTC),
        time_end=datetime(2021, 1, 1, 1, tzinfo=UTC),
        wavelength_min=5e-7,
        wavelength_max=6e-7,
        calib_level=1,
    )
    path = image(tmp_path, TELESCOP="Header Telescope", **{"DATE-OBS": "2020-06-01T00:00:00"})
    derived = derive(path, declared=declared)
    obs = derived.observation
    assert obs.facility_name == "Header Telescope"  # the header wins
    assert obs.instrument_name == "Manifest Cam"
    assert obs.t_min == pytest.approx(mjd("2020-06-01"), abs=1e-9)
    assert obs.t_max == pytest.approx(mjd("2021-01-01T01:00:00"), abs=1e-9)
    assert (obs.em_min, obs.em_max, obs.calib_level) == (5e-7, 6e-7, 1)
    assert derived.sources["facility_name"] == "header:TELESCOP"
    assert derived.sources["t_max"] == "manifest:time_end"
    assert derived.sources["calib_level"] == "manifest:calib_level"
    assert set(derived.missing) == {ObsField.T_EXPTIME}


def test_null_columns_warn_and_required_ones_are_errors(tmp_path: Path) -> None:
    derived = derive(image(tmp_path, wcs=False, **{"DATE-OBS": "19930417"}))
    obs = derived.observation
    assert obs.s_ra is None and obs.s_region is None and obs.t_min is None
    assert obs.calib_level == 2
    assert set(derived.missing) == set(ObsField)
    findings = derived.findings("img.fits", (ObsField.S_RA, ObsField.T_MIN))
    errors = {f.column for f in findings if f.severity is Severity.ERROR}
    assert errors == {"s_ra", "t_min"}
    by_column = {f.column: f for f in findings if f.column}
    assert set(by_column) == {str(name) for name in ObsField}
    assert "2 assumed" in by_column["calib_level"].reason
    assert "observation.instrument in the manifest" in by_column["instrument_name"].reason
    assert "required by the mission's profile" in by_column["t_min"].reason
    [note] = [f for f in findings if f.column is None]
    assert "'19930417' is not a FITS date" in note.reason
    assert note.severity is Severity.WARNING


def _cube(tmp_path: Path, planes: int, ctype3: str = "FREQ") -> Path:
    w = WCS(naxis=3)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN", ctype3]
    w.wcs.crval = [83.63, 22.01, 1.42e9]
    w.wcs.crpix = [5.5, 5.5, 1.0]
    w.wcs.cdelt = [-0.001, 0.001, 1e5]
    w.wcs.cunit = ["deg", "deg", "Hz"]
    path = tmp_path / f"cube_{planes}.fits"
    data = np.zeros((planes, 10, 10), np.float32)
    fits.PrimaryHDU(data, header=w.to_header()).writeto(path)
    return path


def test_dataproduct_type_comes_from_the_data(tmp_path: Path) -> None:
    """A 3-axis image with a spectral axis of many planes is a cube; a degenerate third
    axis, a plain 2-D image, a spectrum and a time series keep their product type."""
    cube = derive(_cube(tmp_path, 8))
    assert cube.observation.dataproduct_type == "cube"
    assert cube.sources["dataproduct_type"] == "header:NAXIS=3, NAXIS3=8 (FREQ)"
    # Its footprint is the celestial plane's: centred on the reference position.
    assert cube.observation.s_ra == pytest.approx(83.63, abs=1e-3)
    assert cube.observation.s_region is not None
    assert derive(_cube(tmp_path, 1)).observation.dataproduct_type == "image"
    plain = derive(image(tmp_path))
    assert plain.observation.dataproduct_type == "image"
    assert plain.sources["dataproduct_type"] == "manifest:product_type (image)"
    spec = derive(spectrum(tmp_path), ProductType.SPECTRUM)
    assert spec.observation.dataproduct_type == "spectrum"
    (tmp_path / "series").mkdir()
    series = derive(spectrum(tmp_path / "series"), ProductType.TIMESERIES)
    assert series.observation.dataproduct_type == "timeseries"
