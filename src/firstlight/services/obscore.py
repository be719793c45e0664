"""ObsCore rows from FITS products: what an observation is, read from its header.

Images take their position, footprint and field of view from the celestial
WCS; spectra and time series from the RA/DEC/APERTURE keywords. Times become
MJD (UTC), wavelengths stay in metres as ObsCore wants them.
"""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning

from firstlight.domain.manifest import ProductType
from firstlight.domain.release import Observation
from firstlight.domain.sky import angular_separation_deg

FITS_MIME = "application/fits"
DEFAULT_CALIB_LEVEL = 2


class ObservationError(ValueError):
    """A product's header lacks what an ObsCore row needs; names file and keyword."""


def observation_from_fits(
    path: Path,
    rel: str,
    product_type: ProductType,
    *,
    mission: str,
    release_key: str,
    access_url: str,
    release_date: datetime | None,
) -> Observation:
    fov: float | None
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        header = hdul[0].header
        if product_type is ProductType.IMAGE:
            image = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2), None)
            if image is None:
                raise ObservationError(f"{rel}: no 2-D image HDU")
            header = image.header if "OBJECT" in image.header else hdul[0].header
            ra, dec, fov, region = _image_footprint(image.header, rel)
        else:
            ra = _number(header, "RA", rel)
            dec = _number(header, "DEC", rel)
            aperture = float(header.get("APERTURE", 0.0)) or None
            fov = aperture
            region = (
                f"CIRCLE ICRS {ra:.8f} {dec:.8f} {aperture / 2:.8f}"
                if aperture
                else f"POSITION ICRS {ra:.8f} {dec:.8f}"
            )
        t_min = _mjd(header, "DATE-OBS", rel)
        t_max = _mjd(header, "DATE-END", rel) if "DATE-END" in header else None
        exptime = float(header["EXPTIME"]) if "EXPTIME" in header else None
        if t_max is None and exptime is not None:
            t_max = t_min + exptime / 86400.0
        return Observation(
            obs_collection=mission,
            obs_id=str(header.get("OBS_ID") or PurePosixPath(rel).with_suffix("").as_posix()),
            obs_publisher_did=f"ivo://firstlight/{mission}?{release_key}/{rel}",
            dataproduct_type=product_type.value,
            calib_level=int(header.get("CALIBLEV", DEFAULT_CALIB_LEVEL)),
            target_name=_text(header, "OBJECT"),
            s_ra=ra,
            s_dec=dec,
            s_fov=fov,
            s_region=region,
            t_min=t_min,
            t_max=t_max,
            t_exptime=exptime,
            em_min=_optional_number(header, "WAVEMIN"),
            em_max=_optional_number(header, "WAVEMAX"),
            facility_name=_text(header, "TELESCOP"),
            instrument_name=_text(header, "INSTRUME"),
            access_url=access_url,
            access_format=FITS_MIME,
            access_estsize=max(1, (path.stat().st_size + 1023) // 1024),  # ObsCore: kB
            obs_release_date=release_date,
        )


def _image_footprint(header: fits.Header, rel: str) -> tuple[float, float, float, str]:
    with warnings.catch_warnings():
        # Header fix-ups (e.g. DATE-OBS forms) are validation's business, not ingest's.
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header).celestial
    if not wcs.has_celestial:
        raise ObservationError(f"{rel}: image has no celestial WCS")
    ny, nx = int(header["NAXIS2"]), int(header["NAXIS1"])
    centre = wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    corners = np.asarray(wcs.calc_footprint(axes=(nx, ny)), dtype=np.float64)
    ra, dec = float(centre[0]) % 360.0, float(centre[1])
    # Field of view: the footprint's diameter (largest corner-to-corner distance).
    d1 = angular_separation_deg(corners[0, 0], corners[0, 1], corners[2, 0], corners[2, 1])
    d2 = angular_separation_deg(corners[1, 0], corners[1, 1], corners[3, 0], corners[3, 1])
    fov = float(max(d1, d2))
    points = " ".join(f"{r % 360.0:.8f} {d:.8f}" for r, d in corners)
    return ra, dec, fov, f"POLYGON ICRS {points}"


def _number(header: fits.Header, key: str, rel: str) -> float:
    value = _optional_number(header, key)
    if value is None:
        raise ObservationError(f"{rel}: header keyword {key} is missing or not a number")
    return value


def _optional_number(header: fits.Header, key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(header: fits.Header, key: str) -> str | None:
    value = header.get(key)
    return str(value).strip() or None if value is not None else None


def _mjd(header: fits.Header, key: str, rel: str) -> float:
    value = header.get(key)
    if not isinstance(value, str):
        raise ObservationError(f"{rel}: header keyword {key} is missing")
    try:
        return float(Time(value, format="isot", scale="utc").mjd)
    except ValueError as exc:
        raise ObservationError(f"{rel}: {key}={value!r} is not an ISO-8601 time") from exc
