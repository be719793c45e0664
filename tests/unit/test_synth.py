"""Synthetic deliveries: reproducible bytes, valid FITS, and a catalogue streamed in chunks."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from firstlight.domain.manifest import MANIFEST_NAME, ProductType, parse_manifest
from firstlight.producer.synth import synthesize_delivery

OBSERVATION_KEYWORDS = ("OBJECT", "TELESCOP", "INSTRUME", "DATE-OBS", "DATE-END", "EXPTIME",
                        "WAVEMIN", "WAVEMAX", "CALIBLEV")  # fmt: skip


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def small(out: Path, **kwargs: object) -> Path:
    options: dict[str, object] = {"catalogue_rows": 200, "images": 1}
    options.update(kwargs)
    return synthesize_delivery(out, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_delivery(
        tmp_path_factory.mktemp("synth"), catalogue_rows=1000, chunk_rows=300, images=2
    )


def test_layout_and_manifest_written_last(delivery: Path) -> None:
    assert delivery.name == "demo-dr1-42"
    manifest = parse_manifest((delivery / MANIFEST_NAME).read_bytes())
    kinds = {f.path: f.product_type for f in manifest.files}
    assert kinds == {
        "catalogue/sources.fits": ProductType.CATALOGUE,
        "images/demo_field01_g.fits": ProductType.IMAGE,
        "images/demo_field02_r.fits": ProductType.IMAGE,
        "spectra/demo_spec_001.fits": ProductType.SPECTRUM,
        "timeseries/demo_lc_001.fits": ProductType.TIMESERIES,
    }
    assert manifest.created == datetime(2026, 1, 1, tzinfo=UTC)
    newest_data = max(p.stat().st_mtime_ns for p in delivery.rglob("*.fits"))
    assert (delivery / MANIFEST_NAME).stat().st_mtime_ns >= newest_data


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = small(tmp_path / "a")
    second = small(tmp_path / "b")
    assert digests(first) == digests(second)
    other = small(tmp_path / "c", seed=7, delivery_id="demo-dr1-42")
    assert digests(other) != digests(first)


def test_catalogue_rows_do_not_depend_on_the_chunk_size(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    chunked = synthesize_delivery(
        tmp_path / "a", catalogue_rows=1000, chunk_rows=300, images=0, spectra=0,
        timeseries=0, progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    whole = synthesize_delivery(
        tmp_path / "b", catalogue_rows=1000, chunk_rows=5000, images=0, spectra=0, timeseries=0
    )
    assert calls == [(300, 1000), (600, 1000), (900, 1000), (1000, 1000)]
    rel = "catalogue/sources.fits"
    assert (chunked / rel).read_bytes() == (whole / rel).read_bytes()


def test_every_hdu_verifies_with_checksums(delivery: Path) -> None:
    for path in sorted(delivery.rglob("*.fits")):
        with fits.open(path, checksum=True) as hdul:
            hdul.verify("exception")
            for hdu in hdul:
                assert hdu.verify_checksum() == 1, (path.name, hdu.name)
                assert hdu.verify_datasum() == 1, (path.name, hdu.name)


def test_images_have_a_celestial_wcs_and_the_ingest_keywords(delivery: Path) -> None:
    for path in sorted((delivery / "images").glob("*.fits")):
        header = fits.getheader(path)
        wcs = WCS(header)  # warnings are errors here: the header must need no fixing
        assert wcs.has_celestial
        assert header["RADESYS"] == "ICRS"
        assert header["EQUINOX"] == 2000.0
        centre = wcs.pixel_to_world(127.5, 127.5)
        assert abs(centre.ra.deg - 150.0) < 1.0
        assert abs(centre.dec.deg - 2.0) < 1.0
        for key in (*OBSERVATION_KEYWORDS, "FILTER", "BUNIT", "ORIGIN"):
            assert key in header, key
        assert isinstance(header["WAVEMIN"], float)
        assert header["WAVEMIN"] < header["WAVEMAX"] < 1e-5
        assert isinstance(header["CALIBLEV"], int)
        assert not header["DATE-OBS"].endswith("Z")
        start = datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=UTC)
        end = datetime.fromisoformat(header["DATE-END"]).replace(tzinfo=UTC)
        assert (end - start).total_seconds() == pytest.approx(header["EXPTIME"])
        with fits.open(path) as hdul:
            assert hdul[0].data.shape == (256, 256)
            assert hdul[0].data.dtype == np.dtype(">f4")


def test_spectrum_and_light_curve_tables(delivery: Path) -> None:
    spectrum = next((delivery / "spectra").glob("*.fits"))
    with fits.open(spectrum) as hdul:
        primary = hdul[0].header
        for key in (*OBSERVATION_KEYWORDS, "RA", "DEC", "APERTURE"):
            assert key in primary, key
        table = hdul["SPECTRUM"]
        assert table.columns.names == ["WAVELENGTH", "FLUX", "ERROR"]
        assert table.columns["WAVELENGTH"].unit == "Angstrom"
        wave = table.data["WAVELENGTH"]
        assert np.all(np.diff(wave) > 0)
        assert primary["WAVEMIN"] == pytest.approx(wave[0] * 1e-10)
    curve = next((delivery / "timeseries").glob("*.fits"))
    with fits.open(curve) as hdul:
        assert "APERTURE" in hdul[0].header
        table = hdul["LIGHTCURVE"]
        assert table.columns.names == ["TIME", "FLUX", "FLUX_ERR"]
        assert table.columns["TIME"].unit == "d"
        time = table.data["TIME"]
        assert 60_000 < time[0] < time[-1]


def test_catalogue_columns_and_values(delivery: Path) -> None:
    with fits.open(delivery / "catalogue" / "sources.fits") as hdul:
        table = hdul["SOURCES"]
        header = table.header
        assert header["TUCD1"] == "meta.id;meta.main"
        assert header["TUCD2"] == "pos.eq.ra;meta.main"
        assert header["TUCD3"] == "pos.eq.dec;meta.main"
        assert header["TUNIT2"] == "deg"
        assert all(f"TCOMM{i}" in header for i in range(1, header["TFIELDS"] + 1))
        data = table.data
        assert len(data) == 1000
        assert len(np.unique(data["source_id"])) == 1000
        assert data["source_id"].dtype == np.dtype(">i8")
        assert np.isnan(data["parallax"]).any()
        assert np.isnan(data["bp_rp"]).any()
        assert not np.isnan(data["phot_g_mean_mag"]).any()
        separation = angular_separation(data["ra"], data["dec"], 150.0, 2.0)
        assert separation.max() <= 1.0 + 1e-9


def test_catalogue_near_ra_zero_wraps_into_range(tmp_path: Path) -> None:
    folder = small(tmp_path, center_ra=0.2, center_dec=-30.0, images=0, spectra=0, timeseries=0)
    with fits.open(folder / "catalogue" / "sources.fits") as hdul:
        ra = hdul[1].data["ra"]
        dec = hdul[1].data["dec"]
    assert ra.min() >= 0.0
    assert ra.max() < 360.0
    assert (ra > 359.0).any()
    assert (ra < 1.0).any()
    assert angular_separation(ra, dec, 0.2, -30.0).max() <= 1.0 + 1e-9


def test_embargo_applies_to_spectra_and_light_curves(tmp_path: Path) -> None:
    until = datetime(2027, 6, 1, tzinfo=UTC)
    folder = small(tmp_path, embargo_until=until)
    manifest = parse_manifest((folder / MANIFEST_NAME).read_bytes())
    dates = {f.product_type: f.release_date for f in manifest.files}
    assert dates[ProductType.SPECTRUM] == until
    assert dates[ProductType.TIMESERIES] == until
    assert dates[ProductType.IMAGE] is None
    assert dates[ProductType.CATALOGUE] is None


def test_created_and_identity_are_passed_through(tmp_path: Path) -> None:
    created = datetime(2030, 5, 4, 3, 2, 1, tzinfo=UTC)
    folder = small(
        tmp_path, mission="xmm", release_name="y2030", release_version="2", seed=3,
        created=created, catalogue_rows=0, spectra=0, timeseries=0,
    )  # fmt: skip
    assert folder.name == "xmm-y2030-3"
    manifest = parse_manifest((folder / MANIFEST_NAME).read_bytes())
    assert manifest.created == created
    assert manifest.release_key == "xmm_y2030_v2"
    assert [f.path for f in manifest.files] == ["images/xmm_field01_g.fits"]
    header = fits.getheader(folder / manifest.files[0].path)
    assert header["TELESCOP"] == "XMM"
    assert header["DATE"] == "2030-05-04T03:02:01.000"


def test_refuses_a_non_empty_folder_and_unsafe_ids(tmp_path: Path) -> None:
    small(tmp_path)
    with pytest.raises(FileExistsError):
        small(tmp_path)
    with pytest.raises(ValueError, match="pattern"):
        small(tmp_path, delivery_id="../escape")


def angular_separation(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> np.ndarray:
    ra, dec, ra0_r, dec0_r = np.radians(ra), np.radians(dec), np.radians(ra0), np.radians(dec0)
    cos_sep = np.sin(dec) * np.sin(dec0_r) + np.cos(dec) * np.cos(dec0_r) * np.cos(ra - ra0_r)
    return np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0)))
