"""Synthetic deliveries: realistic, seeded, byte-reproducible test data.

One call writes a delivery folder the way an instrument team would: FITS
images with a celestial WCS, a spectrum, a light curve, a source catalogue of
any size, then ``manifest.json`` last. Everything follows from the seed and
the arguments: no wall-clock time (``created`` stands in for "now"), and every
random quantity draws from its own named stream, so the catalogue's rows do
not depend on the chunk size it is written in.

The catalogue is streamed to disk chunk by chunk with its DATASUM summed on
the way, so ten million rows need no more memory than one chunk.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray
from pydantic import TypeAdapter

from firstlight.domain.manifest import DeliveryId, Identifier
from firstlight.domain.sky import healpix_index
from firstlight.formats.fits_checksum import OnesComplementSum, header_checksum
from firstlight.producer.manifest_builder import build_manifest, write_manifest

Progress = Callable[[int, int], None]
FloatArray = NDArray[np.float64]

DEFAULT_CREATED = datetime(2026, 1, 1, tzinfo=UTC)
_MJD_ZERO = datetime(1858, 11, 17, tzinfo=UTC)
_BLOCK = 2880
_IMAGE_SHAPE = (256, 256)
_PIXEL_SCALE_DEG = 1.0 / 3600.0
# (name, WAVEMIN, WAVEMAX) in metres.
_FILTERS = (("g", 400e-9, 550e-9), ("r", 550e-9, 700e-9), ("i", 700e-9, 850e-9))
# Rest wavelengths (Angstrom) of strong absorption lines: Ca K, Ca H, Hb, Mg b, Na D, Ha, Ca II.
_LINES = (3933.7, 3968.5, 4861.3, 5175.0, 5892.9, 6562.8, 8542.1)
_SOURCE_ID_ORDER = 12  # Gaia-style ids: HEALPix level-12 index * 2**35 + running number
_SPEED_OF_LIGHT_KMS = 299_792.458


@dataclass(frozen=True)
class _CatalogueColumn:
    name: str
    tform: str
    dtype: str
    unit: str | None
    ucd: str
    comment: str


_CATALOGUE = (
    _CatalogueColumn("source_id", "K", ">i8", None, "meta.id;meta.main", "Unique source id"),
    _CatalogueColumn("ra", "D", ">f8", "deg", "pos.eq.ra;meta.main", "Right ascension (ICRS)"),
    _CatalogueColumn("dec", "D", ">f8", "deg", "pos.eq.dec;meta.main", "Declination (ICRS)"),
    _CatalogueColumn(
        "ra_error", "E", ">f4", "mas", "stat.error;pos.eq.ra", "Uncertainty of ra * cos(dec)"
    ),
    _CatalogueColumn("dec_error", "E", ">f4", "mas", "stat.error;pos.eq.dec", "Uncertainty of dec"),
    _CatalogueColumn("parallax", "E", ">f4", "mas", "pos.parallax.trig", "Parallax"),
    _CatalogueColumn(
        "pmra", "E", ">f4", "mas/yr", "pos.pm;pos.eq.ra", "Proper motion in ra * cos(dec)"
    ),
    _CatalogueColumn("pmdec", "E", ">f4", "mas/yr", "pos.pm;pos.eq.dec", "Proper motion in dec"),
    _CatalogueColumn(
        "phot_g_mean_mag", "E", ">f4", "mag", "phot.mag;em.opt", "Mean G-band magnitude"
    ),
    _CatalogueColumn("bp_rp", "E", ">f4", "mag", "phot.color;em.opt.B;em.opt.R", "BP - RP colour"),
)
_CATALOGUE_DTYPE = np.dtype([(c.name, c.dtype) for c in _CATALOGUE])


@dataclass(frozen=True)
class _Plan:
    """What every product of one delivery shares."""

    mission: str
    seed: int
    created: datetime
    center_ra: float
    center_dec: float
    radius_deg: float

    def rng(self, *purpose: str | int) -> np.random.Generator:
        """An independent stream per purpose, so adding a draw changes nothing else."""
        keys = [zlib.crc32(str(p).encode()) for p in purpose]
        return np.random.default_rng(np.random.SeedSequence([self.seed, *keys]))

    @property
    def telescope(self) -> str:
        return self.mission.upper()

    @property
    def checksum_comment(self) -> str:
        return f"HDU checksum updated {_fits_time(self.created)}"


def synthesize_delivery(
    out_dir: Path,
    *,
    mission: str = "demo",
    delivery_id: str | None = None,
    release_name: str = "dr1",
    release_version: str = "1",
    seed: int = 42,
    catalogue_rows: int = 1000,
    images: int = 2,
    spectra: int = 1,
    timeseries: int = 1,
    center_ra: float = 150.0,
    center_dec: float = 2.0,
    field_radius_deg: float = 1.0,
    embargo_until: datetime | None = None,
    created: datetime | None = None,
    chunk_rows: int = 250_000,
    progress: Progress | None = None,
) -> Path:
    """Write ``out_dir/<delivery_id>/`` with its data files, then its manifest; return it.

    ``embargo_until`` becomes the release date of the spectra and light curves.
    """
    delivery_id = delivery_id or f"{mission}-{release_name}-{seed}"
    TypeAdapter(Identifier).validate_python(mission)
    TypeAdapter(DeliveryId).validate_python(delivery_id)
    if catalogue_rows < 0 or chunk_rows <= 0:
        raise ValueError("catalogue_rows must be >= 0 and chunk_rows > 0")
    plan = _Plan(
        mission=mission,
        seed=seed,
        created=created or DEFAULT_CREATED,
        center_ra=center_ra % 360.0,
        center_dec=center_dec,
        radius_deg=field_radius_deg,
    )
    folder = out_dir / delivery_id
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty")
    folder.mkdir(parents=True, exist_ok=True)

    for i in range(images):
        _write_image(folder, plan, i)
    embargoed = [_write_spectrum(folder, plan, i) for i in range(spectra)]
    embargoed += [_write_timeseries(folder, plan, i) for i in range(timeseries)]
    if catalogue_rows:
        _write_catalogue(folder / "catalogue" / "sources.fits", plan, catalogue_rows, chunk_rows,
                        progress)  # fmt: skip

    manifest = build_manifest(
        folder,
        mission=mission,
        delivery_id=delivery_id,
        release_name=release_name,
        release_version=release_version,
        producer=f"firstlight synth (seed {seed})",
        release_dates=dict.fromkeys(embargoed, embargo_until) if embargo_until else None,
        created=plan.created,
    )
    write_manifest(folder, manifest)
    return folder


# --- images ---------------------------------------------------------------------------


def _write_image(folder: Path, plan: _Plan, index: int) -> str:
    """One calibrated 2-D image with a TAN WCS near the field centre; returns its path."""
    rng = plan.rng("image", index)
    band, wavemin, wavemax = _FILTERS[index % len(_FILTERS)]
    ra, dec = _points_in_cap(rng, 1, plan.center_ra, plan.center_dec, plan.radius_deg / 2)
    exptime = float(rng.choice([60.0, 120.0, 300.0]))
    start = _observation_start(rng, plan.created)
    header = fits.Header()
    _set_cards(
        header,
        OBJECT=f"{plan.telescope}-FIELD-{index + 1:02d}",
        TELESCOP=plan.telescope,
        INSTRUME="IMAGER",
        FILTER=band,
        **_time_cards(start, start + timedelta(seconds=exptime)),
        EXPTIME=(exptime, "[s] exposure time"),
        WAVEMIN=(wavemin, "[m] bandpass lower limit"),
        WAVEMAX=(wavemax, "[m] bandpass upper limit"),
        CALIBLEV=(2, "calibrated"),
        BUNIT="count/s",
        ORIGIN="firstlight synth",
        DATE=_fits_time(plan.created),
        **_tan_wcs(float(ra[0]), float(dec[0]), _IMAGE_SHAPE),
    )
    hdu = fits.PrimaryHDU(data=_star_field(rng, _IMAGE_SHAPE), header=header)
    rel = f"images/{plan.mission}_field{index + 1:02d}_{band}.fits"
    _write_fits(folder / rel, [hdu], plan)
    return rel


def _star_field(rng: np.random.Generator, shape: tuple[int, int]) -> NDArray[np.float32]:
    """Sky background and read noise plus Gaussian stars with a power-law flux."""
    ny, nx = shape
    image = rng.normal(100.0, 5.0, shape)
    y, x = np.mgrid[0:ny, 0:nx]
    sigma = 1.6
    count = 40
    xs, ys = rng.uniform(4, nx - 4, count), rng.uniform(4, ny - 4, count)
    fluxes = 10 ** rng.uniform(2.5, 4.5, count)
    for x0, y0, flux in zip(xs, ys, fluxes, strict=True):
        r2 = (x - x0) ** 2 + (y - y0) ** 2
        image += flux / (2 * np.pi * sigma**2) * np.exp(-r2 / (2 * sigma**2))
    return image.astype(np.float32)


def _tan_wcs(ra: float, dec: float, shape: tuple[int, int]) -> dict[str, Any]:
    ny, nx = shape
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CUNIT1": "deg",
        "CUNIT2": "deg",
        "CRVAL1": ra,
        "CRVAL2": dec,
        "CRPIX1": (nx + 1) / 2,
        "CRPIX2": (ny + 1) / 2,
        # East to the left, as on the sky.
        "CD1_1": -_PIXEL_SCALE_DEG,
        "CD1_2": 0.0,
        "CD2_1": 0.0,
        "CD2_2": _PIXEL_SCALE_DEG,
        "RADESYS": "ICRS",
        "EQUINOX": 2000.0,
    }


# --- spectra and light curves ---------------------------------------------------------


def _write_spectrum(folder: Path, plan: _Plan, index: int) -> str:
    """A 1-D optical spectrum of a star in the field; returns its path."""
    rng = plan.rng("spectrum", index)
    ra, dec = _points_in_cap(rng, 1, plan.center_ra, plan.center_dec, plan.radius_deg)
    wave = np.linspace(3800.0, 9200.0, 2000)
    flux = _stellar_spectrum(rng, wave)
    error = (0.05 * np.sqrt(flux) + 0.2).astype(np.float32)
    observed = (flux + rng.normal(0.0, 1.0, wave.size) * error).astype(np.float32)
    exptime = float(rng.choice([900.0, 1800.0, 3600.0]))
    start = _observation_start(rng, plan.created)
    primary = _target_primary(
        plan,
        name=f"{plan.telescope}-SPEC-{index + 1:03d}",
        instrument="SPECTROGRAPH",
        position=(float(ra[0]), float(dec[0])),
        aperture_arcsec=1.5,
        start=start,
        end=start + timedelta(seconds=exptime),
        exptime=exptime,
        band=(3800e-10, 9200e-10),
    )
    table = _table_hdu(
        "SPECTRUM",
        [
            ("WAVELENGTH", "D", "Angstrom", "em.wl", "Vacuum wavelength", wave),
            ("FLUX", "E", _FLUX_DENSITY, "phot.flux.density;em.wl", "Flux density", observed),
            ("ERROR", "E", _FLUX_DENSITY, "stat.error;phot.flux.density", "1-sigma error", error),
        ],
    )
    rel = f"spectra/{plan.mission}_spec_{index + 1:03d}.fits"
    _write_fits(folder / rel, [primary, table], plan)
    return rel


_FLUX_DENSITY = "10**-17 erg.s**-1.cm**-2.Angstrom**-1"


def _stellar_spectrum(rng: np.random.Generator, wave: FloatArray) -> FloatArray:
    """A black body with redshifted absorption lines, about 50 units at 5500 Angstrom."""
    temperature = rng.uniform(4500.0, 9000.0)
    hc_over_k = 1.438777e8  # Angstrom K
    planck = wave**-5 / np.expm1(hc_over_k / (wave * temperature))
    reference = 5500.0**-5 / np.expm1(hc_over_k / (5500.0 * temperature))
    continuum = 50.0 * planck / reference
    shift = 1.0 + rng.uniform(-100.0, 100.0) / _SPEED_OF_LIGHT_KMS
    depth = rng.uniform(0.1, 0.5, len(_LINES))
    absorption = np.ones_like(wave)
    for rest, d in zip(_LINES, depth, strict=True):
        absorption -= d * np.exp(-0.5 * ((wave - rest * shift) / 3.0) ** 2)
    result: FloatArray = continuum * np.clip(absorption, 0.05, None)
    return result


def _write_timeseries(folder: Path, plan: _Plan, index: int) -> str:
    """A light curve of a variable star with transits; returns its path."""
    rng = plan.rng("timeseries", index)
    ra, dec = _points_in_cap(rng, 1, plan.center_ra, plan.center_dec, plan.radius_deg)
    start = _observation_start(rng, plan.created, days=(60, 120))
    cadence_d = 30.0 / 1440.0
    samples = 2000
    time = _mjd(start) + cadence_d * np.arange(samples) + rng.normal(0.0, 1e-5, samples)
    flux, flux_err = _light_curve(rng, time)
    exposure = 1700.0
    primary = _target_primary(
        plan,
        name=f"{plan.telescope}-VAR-{index + 1:03d}",
        instrument="PHOTOMETER",
        position=(float(ra[0]), float(dec[0])),
        aperture_arcsec=10.0,
        start=start,
        end=start + timedelta(days=float(time[-1] - time[0]) + exposure / 86400.0),
        exptime=exposure * samples,
        band=(600e-9, 1000e-9),
    )
    table = _table_hdu(
        "LIGHTCURVE",
        [
            ("TIME", "D", "d", "time.epoch", "Mid-exposure time (MJD, UTC)", time),
            ("FLUX", "E", "count/s", "phot.flux", "Aperture flux", flux),
            ("FLUX_ERR", "E", "count/s", "stat.error;phot.flux", "1-sigma error", flux_err),
        ],
    )
    _set_cards(table.header, TIMESYS="UTC", MJDREF=0.0, TIMEUNIT="d")
    rel = f"timeseries/{plan.mission}_lc_{index + 1:03d}.fits"
    _write_fits(folder / rel, [primary, table], plan)
    return rel


def _light_curve(
    rng: np.random.Generator, time: FloatArray
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    period = rng.uniform(0.5, 5.0)
    phase = rng.uniform(0.0, 2 * np.pi)
    level = rng.uniform(500.0, 5000.0)
    model = level * (1.0 + 0.03 * np.sin(2 * np.pi * time / period + phase))
    # Box-shaped transits of a companion on a longer orbit.
    orbit = rng.uniform(3.0, 9.0)
    in_transit = ((time - time[0]) % orbit) < 0.1
    model[in_transit] *= 0.99
    error = np.sqrt(model)
    flux = model + rng.normal(0.0, 1.0, time.size) * error
    return flux.astype(np.float32), error.astype(np.float32)


def _target_primary(
    plan: _Plan,
    *,
    name: str,
    instrument: str,
    position: tuple[float, float],
    aperture_arcsec: float,
    start: datetime,
    end: datetime,
    exptime: float,
    band: tuple[float, float],
) -> fits.PrimaryHDU:
    header = fits.Header()
    _set_cards(
        header,
        OBJECT=name,
        TELESCOP=plan.telescope,
        INSTRUME=instrument,
        **_time_cards(start, end),
        EXPTIME=(exptime, "[s] exposure time"),
        RA=(position[0], "[deg] target right ascension (ICRS)"),
        DEC=(position[1], "[deg] target declination (ICRS)"),
        RADESYS="ICRS",
        APERTURE=(aperture_arcsec / 3600.0, "[deg] aperture diameter"),
        WAVEMIN=(band[0], "[m] spectral range lower limit"),
        WAVEMAX=(band[1], "[m] spectral range upper limit"),
        CALIBLEV=(2, "calibrated"),
        ORIGIN="firstlight synth",
        DATE=_fits_time(plan.created),
    )
    return fits.PrimaryHDU(header=header)


def _table_hdu(
    extname: str, columns: list[tuple[str, str, str, str, str, NDArray[Any]]]
) -> fits.BinTableHDU:
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name=n, format=f, unit=unit, array=a) for n, f, unit, _, _, a in columns],
        name=extname,
    )
    _describe_columns(hdu.header, [(ucd, comment) for _, _, _, ucd, comment, _ in columns])
    return hdu


# --- catalogue ------------------------------------------------------------------------


def _write_catalogue(
    path: Path, plan: _Plan, rows: int, chunk_rows: int, progress: Progress | None = None
) -> None:
    """Stream a source catalogue of ``rows`` rows to a FITS binary table, chunk by chunk.

    The table header is written with placeholder checksums, the records follow
    as big-endian bytes with DATASUM summed on the way, then the header is
    rewritten in place (same length) with the final DATASUM and CHECKSUM.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    primary = _catalogue_primary(plan, rows)
    primary.add_checksum(when=plan.checksum_comment)
    header = _catalogue_header(rows)
    header.set("CHECKSUM", "0" * 16, plan.checksum_comment)
    header.set("DATASUM", "0", plan.checksum_comment)
    datasum = OnesComplementSum()
    with path.open("wb") as fh:
        fh.write(primary.header.tostring().encode("ascii"))
        table_start = fh.tell()
        fh.write(header.tostring().encode("ascii"))
        streams = _catalogue_streams(plan)
        for start in range(0, rows, chunk_rows):
            stop = min(start + chunk_rows, rows)
            records = _catalogue_records(plan, streams, start, stop).tobytes()
            datasum.add(records)
            fh.write(records)
            if progress is not None:
                progress(stop, rows)
        _pad_block(fh, rows * _CATALOGUE_DTYPE.itemsize)
        header["DATASUM"] = str(datasum.total())
        header["CHECKSUM"] = header_checksum(header, datasum.total())
        fh.seek(table_start)
        fh.write(header.tostring().encode("ascii"))


def _catalogue_header(rows: int) -> fits.Header:
    """The SOURCES table header for ``rows`` rows, from a zero-row template."""
    template = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=c.name, format=c.tform, unit=c.unit, array=np.zeros(0, c.dtype))
            for c in _CATALOGUE
        ],
        name="SOURCES",
    )
    header = template.header.copy()
    header["NAXIS2"] = rows
    header.comments["EXTNAME"] = "Synthetic source catalogue"
    _describe_columns(header, [(c.ucd, c.comment) for c in _CATALOGUE])
    return header


def _catalogue_primary(plan: _Plan, rows: int) -> fits.PrimaryHDU:
    header = fits.Header()
    _set_cards(
        header,
        TELESCOP=plan.telescope,
        ORIGIN="firstlight synth",
        DATE=_fits_time(plan.created),
        NSOURCES=(rows, "rows in the SOURCES table"),
    )
    primary = fits.PrimaryHDU(header=header)
    # Set after construction, which drops EXTEND from a data-less header.
    primary.header.set("EXTEND", True, "the SOURCES table follows", after="NAXIS")
    return primary


def _catalogue_streams(plan: _Plan) -> dict[str, np.random.Generator]:
    names = ("cap_u", "cap_phi", "mag", "err_ra", "err_dec", "parallax", "parallax_noise",
             "astrometry_null", "pmra", "pmdec", "colour", "colour_null")  # fmt: skip
    return {name: plan.rng("catalogue", name) for name in names}


def _catalogue_records(
    plan: _Plan, streams: dict[str, np.random.Generator], start: int, stop: int
) -> NDArray[np.void]:
    """Rows ``start`` to ``stop`` as big-endian records; streams advance by ``stop - start``."""
    n = stop - start
    ra, dec = _cap_points(streams["cap_u"].random(n), streams["cap_phi"].random(n), plan)
    mag = _magnitudes(streams["mag"].random(n))
    error_scale = 0.02 * 10 ** (0.2 * (mag - 15.0))
    ra_error = error_scale * (1.0 + 0.1 * np.abs(streams["err_ra"].standard_normal(n)))
    dec_error = error_scale * (1.0 + 0.1 * np.abs(streams["err_dec"].standard_normal(n)))
    parallax = streams["parallax"].exponential(0.4, n)
    parallax += streams["parallax_noise"].standard_normal(n) * ra_error * 1.3
    # Faint sources often get only a position (a two-parameter solution).
    two_parameter = streams["astrometry_null"].random(n) < np.where(mag > 20.0, 0.4, 0.05)
    pmra = streams["pmra"].normal(-3.0, 6.0, n)
    pmdec = streams["pmdec"].normal(-4.0, 5.0, n)
    for values in (parallax, pmra, pmdec):
        values[two_parameter] = np.nan
    bp_rp = np.clip(streams["colour"].normal(1.1, 0.45, n), -0.5, 5.0)
    bp_rp[streams["colour_null"].random(n) < np.where(mag > 20.5, 0.2, 0.03)] = np.nan

    records = np.empty(n, dtype=_CATALOGUE_DTYPE)
    running = np.arange(start, stop, dtype=np.int64)
    records["source_id"] = healpix_index(ra, dec, _SOURCE_ID_ORDER) * 2**35 + running
    columns = {"ra": ra, "dec": dec, "ra_error": ra_error, "dec_error": dec_error,
               "parallax": parallax, "pmra": pmra, "pmdec": pmdec,
               "phot_g_mean_mag": mag, "bp_rp": bp_rp}  # fmt: skip
    for name, values in columns.items():
        records[name] = values
    return records


def _magnitudes(u: FloatArray, bright: float = 12.0, faint: float = 21.0) -> FloatArray:
    """Inverse CDF of counts rising as 10**(0.35 m), as star counts do toward the faint end."""
    lo, hi = 10 ** (0.35 * bright), 10 ** (0.35 * faint)
    result: FloatArray = np.log10(lo + u * (hi - lo)) / 0.35
    return result


# --- the sky and time -----------------------------------------------------------------


def _points_in_cap(
    rng: np.random.Generator, n: int, ra0: float, dec0: float, radius_deg: float
) -> tuple[FloatArray, FloatArray]:
    """``n`` positions uniform on the sphere within ``radius_deg`` of (ra0, dec0)."""
    u = rng.random(n)
    phi = rng.random(n)
    return _offset(u, phi, ra0, dec0, radius_deg)


def _cap_points(u: FloatArray, phi: FloatArray, plan: _Plan) -> tuple[FloatArray, FloatArray]:
    return _offset(u, phi, plan.center_ra, plan.center_dec, plan.radius_deg)


def _offset(
    u: FloatArray, phi: FloatArray, ra0: float, dec0: float, radius_deg: float
) -> tuple[FloatArray, FloatArray]:
    # Uniform on the cap: cos(separation) is uniform in [cos(radius), 1].
    cos_r = np.cos(np.radians(radius_deg))
    sep = np.arccos(1.0 - u * (1.0 - cos_r))
    angle = 2 * np.pi * phi
    d0 = np.radians(dec0)
    sin_dec = np.sin(d0) * np.cos(sep) + np.cos(d0) * np.sin(sep) * np.cos(angle)
    dec = np.arcsin(np.clip(sin_dec, -1.0, 1.0))
    dra = np.arctan2(np.sin(angle) * np.sin(sep) * np.cos(d0), np.cos(sep) - np.sin(d0) * sin_dec)
    ra = np.mod(ra0 + np.degrees(dra), 360.0)
    return ra, np.degrees(dec)


def _fits_time(moment: datetime) -> str:
    """ISO-8601 UTC to the millisecond, without a zone suffix, as FITS dates are."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _mjd(moment: datetime) -> float:
    return (moment - _MJD_ZERO).total_seconds() / 86400.0


def _observation_start(
    rng: np.random.Generator, created: datetime, days: tuple[float, float] = (5.0, 120.0)
) -> datetime:
    """A start in the months before ``created``, whole milliseconds."""
    seconds = round(float(rng.uniform(*days)) * 86400.0, 3)
    return created - timedelta(seconds=seconds)


def _time_cards(start: datetime, end: datetime) -> dict[str, Any]:
    # MJD-OBS/MJD-END beside the dates: wcslib then has nothing to "fix" (and warn about).
    return {
        "DATE-OBS": (_fits_time(start), "start of observation (UTC)"),
        "DATE-END": (_fits_time(end), "end of observation (UTC)"),
        "MJD-OBS": (_mjd(start), "[d] start of observation (UTC)"),
        "MJD-END": (_mjd(end), "[d] end of observation (UTC)"),
        "TIMESYS": "UTC",
    }


# --- FITS writing and checksums -------------------------------------------------------


def _set_cards(header: fits.Header, **cards: Any) -> None:
    """Set cards in order; a value may be a (value, comment) pair."""
    for keyword, card in cards.items():
        header[keyword] = card


def _describe_columns(header: fits.Header, described: list[tuple[str, str]]) -> None:
    """Add TUCDn and TCOMMn after each column's last standard card."""
    for i, (ucd, comment) in enumerate(described, start=1):
        anchor = f"TUNIT{i}" if f"TUNIT{i}" in header else f"TFORM{i}"
        header.set(f"TUCD{i}", ucd, after=anchor)
        header.set(f"TCOMM{i}", comment, after=f"TUCD{i}")


def _write_fits(path: Path, hdus: list[Any], plan: _Plan) -> None:
    """Write HDUs with CHECKSUM/DATASUM whose comment is fixed, for reproducible bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hdul = fits.HDUList(hdus)
    # Settle EXTEND before summing: writeto would add it after, breaking CHECKSUM.
    hdul.update_extend()
    for hdu in hdul:
        hdu.add_checksum(when=plan.checksum_comment)
    # checksum=False keeps the cards just computed instead of stamping the wall clock.
    hdul.writeto(path, checksum=False)


def _pad_block(fh: BinaryIO, written: int) -> None:
    fh.write(b"\0" * (-written % _BLOCK))
