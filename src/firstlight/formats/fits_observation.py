"""Observation metadata read from FITS headers, each value with the keyword it came from.

Belongs here: which header keywords mean what for an ObsCore row, in which order
they are tried, and how their values become ObsCore's units (degrees, MJD in
UTC, seconds, metres). Nothing here knows the manifest or the database; the
ObsCore step (``services.obscore``) completes what a header lacks. The order,
first match wins (docs/delivery-format.md has the same table):

- target_name: OBJECT, OBJNAME, TARGNAME
- facility_name: TELESCOP, OBSERVAT
- instrument_name: INSTRUME, DETECTOR
- calib_level: CALIBLEV
- position (images): the celestial WCS of the first image HDU (any projection
  wcslib knows, SIP and lookup-table distortions included), converted to ICRS;
  else, as for spectra and time series: RA/DEC, RA_OBJ/DEC_OBJ, RA_TARG/DEC_TARG
  (degrees), OBJCTRA/OBJCTDEC (sexagesimal), with APERTURE (degrees) as s_fov
- t_min: DATE-BEG, MJD-BEG, DATE-OBS with a time, DATE-OBS + TIME-OBS, MJD-OBS,
  DATE-OBS of a day only (then the whole day); in TIMESYS (default UTC)
- t_max: DATE-END, MJD-END, t_min + TELAPSE, t_min + the exposure; a day-only
  start ends with its day (plus the exposure)
- t_exptime: XPOSURE, EXPTIME, EXPOSURE; seconds unless the card's comment says
  minutes or hours (the Digitized Sky Survey's plates give minutes)
- em_min/em_max: WAVEMIN/WAVEMAX (metres), else the filter table's bounds for
  FILTER, FILTNAM1 or FILTER1

Keywords are looked up in the image HDU first, then the primary (images), or
the primary first, then the extensions in order (spectra, time series). A
keyword written blank ('') counts as absent.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import wcs_to_celestial_frame
from erfa import ErfaWarning

from firstlight.domain.release import ObsField
from firstlight.domain.sky import angular_separation_deg
from firstlight.formats.fits_dates import parse_fits_date

TARGET_KEYS = ("OBJECT", "OBJNAME", "TARGNAME")
FACILITY_KEYS = ("TELESCOP", "OBSERVAT")
INSTRUMENT_KEYS = ("INSTRUME", "DETECTOR")
EXPOSURE_KEYS = ("XPOSURE", "EXPTIME", "EXPOSURE")
FILTER_KEYS = ("FILTER", "FILTNAM1", "FILTER1")
POINTING_KEYS = (("RA", "DEC"), ("RA_OBJ", "DEC_OBJ"), ("RA_TARG", "DEC_TARG"))

# TIMESYS values astropy converts to UTC without Earth-rotation tables; UT, GMT
# and anything unknown are read as UTC.
_TIME_SCALES = {
    "UTC": "utc",
    "TT": "tt",
    "TDT": "tt",
    "ET": "tt",
    "TAI": "tai",
    "IAT": "tai",
    "TDB": "tdb",
    "TCG": "tcg",
    "TCB": "tcb",
}
_TIME_OF_DAY = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?$")
_MINUTES = re.compile(r"\bmin(ute)?s?\b", re.IGNORECASE)
_HOURS = re.compile(r"\b(hours?|hrs?)\b", re.IGNORECASE)
_SECONDS_PER_DAY = 86400.0


class BandLookup(Protocol):
    """The filter table (``checks.filters.FilterTable``): a band name to its bounds."""

    def lookup(
        self, instrument: str | None, name: str
    ) -> tuple[str, tuple[float, float]] | None: ...


@dataclass
class HeaderValues:
    """What the headers say: ObsCore values and, for each, where it came from."""

    values: dict[ObsField, Any] = field(default_factory=dict)
    sources: dict[ObsField, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # values present but unusable

    def set(self, name: ObsField, value: Any, source: str) -> None:
        self.values[name] = value
        self.sources[name] = source


@dataclass(frozen=True)
class _Headers:
    """The headers to search, in order, with the HDU index each one belongs to."""

    items: Sequence[tuple[int, fits.Header]]

    def get(self, key: str) -> tuple[Any, str] | None:
        """The first non-blank value of ``key`` and its source ("header:KEY", "header[1]:KEY")."""
        for index, header in self.items:
            try:
                value = header.get(key)
            except (ValueError, KeyError, IndexError):  # a card astropy cannot parse
                continue
            if value is None or isinstance(value, fits.card.Undefined):
                continue
            if isinstance(value, str) and not value.strip():
                continue
            return value, _source(index, key)
        return None

    def comment(self, key: str) -> str:
        for _, header in self.items:
            if key in header:
                return str(header.comments[key])
        return ""

    def text(self, keys: Iterable[str]) -> tuple[str, str] | None:
        for key in keys:
            found = self.get(key)
            if found is not None:
                return str(found[0]).strip(), found[1]
        return None

    def number(self, key: str) -> tuple[float, str] | None:
        found = self.get(key)
        if found is None:
            return None
        value, source = found
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return (float(value), source) if math.isfinite(value) else None


def read_observation(hdul: Any, image_index: int | None, filters: BandLookup) -> HeaderValues:
    """Everything the headers of an open FITS file say about its observation.

    ``image_index``: the image HDU (images), or None (spectra, time series).
    """
    indexed = list(enumerate(hdu.header for hdu in hdul))
    if image_index is not None:
        order = [indexed[image_index]] + [item for item in indexed if item[0] != image_index]
        headers = _Headers(order[:1] + [item for item in order[1:] if item[0] == 0])
    else:
        headers = _Headers(indexed)
    found = HeaderValues()
    for name, keys in (
        (ObsField.TARGET_NAME, TARGET_KEYS),
        (ObsField.FACILITY_NAME, FACILITY_KEYS),
        (ObsField.INSTRUMENT_NAME, INSTRUMENT_KEYS),
    ):
        text = headers.text(keys)
        if text is not None:
            found.set(name, *text)
    calib = headers.get("CALIBLEV")
    if calib is not None and isinstance(calib[0], int) and not isinstance(calib[0], bool):
        found.set(ObsField.CALIB_LEVEL, int(calib[0]), calib[1])
    if image_index is not None:
        _read_footprint(hdul, image_index, found)
    if ObsField.S_RA not in found.values:
        _read_pointing(headers, found)
    _read_times(headers, found)
    _read_wavelengths(headers, filters, found)
    return found


def cube_axes(header: Any) -> str | None:
    """How an image HDU is a cube, said from its header, or None (a plain image).

    A cube has a third axis of more than one plane beside two celestial ones: a
    spectral one (``CTYPE3`` such as FREQ, WAVE, VRAD) or any other (a degenerate
    third axis of length 1, as radio images often carry, keeps it an image).
    """
    naxis = header.get("NAXIS")
    if not isinstance(naxis, int) or naxis < 3:
        return None
    for axis in range(3, naxis + 1):
        length = header.get(f"NAXIS{axis}")
        if isinstance(length, int) and length > 1:
            ctype = str(header.get(f"CTYPE{axis}", "")).strip()
            said = f" ({ctype})" if ctype else ""
            return f"NAXIS={naxis}, NAXIS{axis}={length}{said}"
    return None


# --- position ------------------------------------------------------------------------


def _read_footprint(hdul: Any, index: int, found: HeaderValues) -> None:
    """Centre, field of view and corner polygon of an image, in ICRS degrees."""
    header = hdul[index].header
    try:
        with warnings.catch_warnings():
            # Card fix-ups and odd keywords are validation's findings, not ingest's.
            warnings.simplefilter("ignore", AstropyWarning)
            wcs = WCS(header, hdul)
            if not wcs.has_celestial:
                return
            if wcs.pixel_n_dim > 2 or wcs.naxis > 2:
                wcs = wcs.celestial
            nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
            # Pixel centres of the corners in calc_footprint's order, then the centre.
            xs = np.array([0.0, 0.0, nx - 1.0, nx - 1.0, (nx - 1) / 2])
            ys = np.array([0.0, ny - 1.0, ny - 1.0, 0.0, (ny - 1) / 2])
            ra, dec = _icrs_degrees(wcs, xs, ys)
    except (ValueError, KeyError, TypeError, MemoryError) as exc:
        found.notes.append(f"the image's WCS cannot be used: {' '.join(str(exc).split())}")
        return
    source = f"{_source(index, 'WCS')} ({wcs.wcs.ctype[0].strip()}, {wcs.wcs.ctype[1].strip()})"
    if not (math.isfinite(ra[4]) and math.isfinite(dec[4])):
        found.notes.append("the image's WCS maps its centre to no position on the sky")
        return
    found.set(ObsField.S_RA, float(ra[4]), source)
    found.set(ObsField.S_DEC, float(dec[4]), source)
    if not (np.isfinite(ra[:4]).all() and np.isfinite(dec[:4]).all()):
        found.notes.append("the image's WCS maps a corner to no position on the sky")
        return
    d1 = angular_separation_deg(ra[0], dec[0], ra[2], dec[2])
    d2 = angular_separation_deg(ra[1], dec[1], ra[3], dec[3])
    found.set(ObsField.S_FOV, float(max(d1, d2)), source)
    points = " ".join(f"{r:.8f} {d:.8f}" for r, d in zip(ra[:4], dec[:4], strict=True))
    found.set(ObsField.S_REGION, f"POLYGON ICRS {points}", source)


def _icrs_degrees(wcs: WCS, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ICRS (ra % 360, dec) of pixels; wcslib's values as they are when already ICRS."""
    world = wcs.pixel_to_world_values(xs, ys)  # every distortion applied
    lon = np.asarray(world[wcs.wcs.lng], dtype=np.float64)
    lat = np.asarray(world[wcs.wcs.lat], dtype=np.float64)
    equatorial = wcs.wcs.ctype[wcs.wcs.lng].startswith("RA--")
    if not (equatorial and wcs.wcs.radesys.strip() == "ICRS"):
        # Another frame (FK4, FK5, galactic, ...): astropy converts; a SkyCoord per
        # image costs tens of milliseconds, so ICRS headers skip it.
        frame = wcs_to_celestial_frame(wcs)
        icrs = SkyCoord(lon, lat, unit="deg", frame=frame).icrs
        lon = np.asarray(icrs.ra.deg, dtype=np.float64)
        lat = np.asarray(icrs.dec.deg, dtype=np.float64)
    return lon % 360.0, lat


def _read_pointing(headers: _Headers, found: HeaderValues) -> None:
    """RA/DEC-style keywords (degrees) or OBJCTRA/OBJCTDEC (sexagesimal), read as ICRS."""
    position: tuple[float, float, str] | None = None
    for ra_key, dec_key in POINTING_KEYS:
        ra, dec = headers.number(ra_key), headers.number(dec_key)
        if ra is not None and dec is not None:
            position = (ra[0] % 360.0, dec[0], f"{ra[1]}/{dec_key}")
            break
    if position is None:
        ra_text, dec_text = headers.get("OBJCTRA"), headers.get("OBJCTDEC")
        if ra_text is not None and dec_text is not None:
            try:
                coord = SkyCoord(str(ra_text[0]), str(dec_text[0]), unit=(u.hourangle, u.deg))
            except ValueError:
                found.notes.append("OBJCTRA/OBJCTDEC are not sexagesimal coordinates")
            else:
                position = (float(coord.ra.deg), float(coord.dec.deg), f"{ra_text[1]}/OBJCTDEC")
    if position is None:
        return
    ra_deg, dec_deg, source = position
    if not -90.0 <= dec_deg <= 90.0:
        found.notes.append(f"{source}: declination {dec_deg} is outside [-90, 90]")
        return
    found.set(ObsField.S_RA, ra_deg, source)
    found.set(ObsField.S_DEC, dec_deg, source)
    aperture = headers.number("APERTURE")
    if aperture is not None and aperture[0] > 0:
        found.set(ObsField.S_FOV, aperture[0], aperture[1])
        region = f"CIRCLE ICRS {ra_deg:.8f} {dec_deg:.8f} {aperture[0] / 2:.8f}"
        found.set(ObsField.S_REGION, region, f"{source}+APERTURE")
    else:
        found.set(ObsField.S_REGION, f"POSITION ICRS {ra_deg:.8f} {dec_deg:.8f}", source)


# --- time ----------------------------------------------------------------------------


def _read_times(headers: _Headers, found: HeaderValues) -> None:
    scale = _time_scale(headers)
    exposure = _exposure(headers)
    if exposure is not None:
        found.set(ObsField.T_EXPTIME, *exposure)
    start = _start(headers, scale, found)
    if start is None:
        return
    t_min, source, whole_day = start
    found.set(ObsField.T_MIN, t_min, source)
    end = _end(headers, scale, found)
    if end is not None:
        found.set(ObsField.T_MAX, *end)
        return
    elapsed = headers.number("TELAPSE")
    if elapsed is not None and not whole_day:
        found.set(ObsField.T_MAX, t_min + elapsed[0] / _SECONDS_PER_DAY, f"{source}+TELAPSE")
    elif whole_day:
        extra = exposure[0] / _SECONDS_PER_DAY if exposure is not None else 0.0
        plus = f"+{exposure[1]}" if exposure is not None else ""
        found.set(ObsField.T_MAX, t_min + 1.0 + extra, f"{source} (the whole day){plus}")
    elif exposure is not None:
        found.set(ObsField.T_MAX, t_min + exposure[0] / _SECONDS_PER_DAY, f"{source}+{exposure[1]}")


def _start(headers: _Headers, scale: str, found: HeaderValues) -> tuple[float, str, bool] | None:
    """(MJD UTC, source, day only) of the observation's start, precise sources first."""
    begin = _date(headers, "DATE-BEG", scale, found)
    obs = _date(headers, "DATE-OBS", scale, found)
    candidates = [
        None if begin is None else (begin[0], begin[1], not begin[2]),
        _mjd_start(headers, "MJD-BEG", scale),
        None if obs is None or not obs[2] else (obs[0], obs[1], False),
        None if obs is None else _with_time_of_day(headers, obs[0], obs[1]),
        _mjd_start(headers, "MJD-OBS", scale),
        None if obs is None else (obs[0], f"{obs[1]} (a day, no time)", True),
    ]
    return next((c for c in candidates if c is not None), None)


def _mjd_start(headers: _Headers, key: str, scale: str) -> tuple[float, str, bool] | None:
    mjd = _mjd(headers, key, scale)
    return None if mjd is None else (mjd[0], mjd[1], False)


def _with_time_of_day(headers: _Headers, day: float, source: str) -> tuple[float, str, bool] | None:
    """A day-only DATE-OBS with the older TIME-OBS card ('hh:mm:ss[.s]') beside it."""
    time_of_day = headers.get("TIME-OBS")
    if time_of_day is None or not _TIME_OF_DAY.match(str(time_of_day[0]).strip()):
        return None
    h, m, s = str(time_of_day[0]).strip().split(":")
    offset = (int(h) * 3600 + int(m) * 60 + float(s)) / _SECONDS_PER_DAY
    return day + offset, f"{source}+TIME-OBS", False


def _end(headers: _Headers, scale: str, found: HeaderValues) -> tuple[float, str] | None:
    end = _date(headers, "DATE-END", scale, found)
    if end is not None:
        # A day-only end date means the end of that day.
        return (end[0], end[1]) if end[2] else (end[0] + 1.0, f"{end[1]} (the whole day)")
    return _mjd(headers, "MJD-END", scale)


def _date(
    headers: _Headers, key: str, scale: str, found: HeaderValues
) -> tuple[float, str, bool] | None:
    """(MJD UTC, source, has a time of day) of a FITS date keyword."""
    raw = headers.get(key)
    if raw is None:
        return None
    parsed = parse_fits_date(str(raw[0])) if isinstance(raw[0], str) else None
    if parsed is None:
        found.notes.append(f"{raw[1]}={raw[0]!r} is not a FITS date")
        return None
    naive = parsed.value.replace(tzinfo=None)
    return _utc_mjd(naive, "datetime", scale), raw[1], parsed.has_time


def _mjd(headers: _Headers, key: str, scale: str) -> tuple[float, str] | None:
    value = headers.number(key)
    if value is None:
        return None
    return _utc_mjd(value[0], "mjd", scale), value[1]


def _utc_mjd(value: object, form: str, scale: str) -> float:
    with warnings.catch_warnings():
        # ERFA calls UTC before 1960 "dubious" (no leap seconds then): a plate from 1951
        # is still a date, read as UTC without them.
        warnings.simplefilter("ignore", ErfaWarning)
        return float(Time(value, format=form, scale=scale).utc.mjd)


def _time_scale(headers: _Headers) -> str:
    found = headers.get("TIMESYS")
    return _TIME_SCALES.get(str(found[0]).strip().upper(), "utc") if found else "utc"


def _exposure(headers: _Headers) -> tuple[float, str] | None:
    """Seconds of exposure, from the first exposure keyword that holds a number.

    A negative one is passed on as written: the observation suite's range check names it.
    """
    for key in EXPOSURE_KEYS:
        value = headers.number(key)
        if value is None:
            continue
        comment = headers.comment(key)
        if key != "XPOSURE" and _MINUTES.search(comment):
            return value[0] * 60.0, f"{value[1]} (minutes)"
        if key != "XPOSURE" and _HOURS.search(comment):
            return value[0] * 3600.0, f"{value[1]} (hours)"
        return value
    return None


# --- wavelength ----------------------------------------------------------------------


def _read_wavelengths(headers: _Headers, filters: BandLookup, found: HeaderValues) -> None:
    low, high = headers.number("WAVEMIN"), headers.number("WAVEMAX")
    if low is not None and low[0] > 0:
        found.set(ObsField.EM_MIN, *low)
    if high is not None and high[0] > 0:
        found.set(ObsField.EM_MAX, *high)
    if ObsField.EM_MIN in found.values and ObsField.EM_MAX in found.values:
        return
    band = headers.text(FILTER_KEYS)
    if band is None:
        return
    instrument = found.values.get(ObsField.INSTRUMENT_NAME)
    match = filters.lookup(instrument if isinstance(instrument, str) else None, band[0])
    if match is None:
        found.notes.append(f"{band[1]}={band[0]!r} is not in the filter table")
        return
    key, (band_min, band_max) = match
    source = f"filter table {key!r} ({band[1]})"
    found.values.setdefault(ObsField.EM_MIN, band_min)
    found.sources.setdefault(ObsField.EM_MIN, source)
    found.values.setdefault(ObsField.EM_MAX, band_max)
    found.sources.setdefault(ObsField.EM_MAX, source)


def _source(index: int, key: str) -> str:
    return f"header:{key}" if index == 0 else f"header[{index}]:{key}"
