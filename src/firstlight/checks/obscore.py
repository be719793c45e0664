"""ObsCore rows from FITS products: what an observation is, read from its header.

Each column comes from the header's own keywords and their usual alternatives
(``formats.fits_observation`` says which, in which order), else from the
product's ``observation`` fields in the manifest, else stays NULL (calib_level,
which ObsCore requires, defaults to 2). Every value's source is kept
(``DerivedObservation.sources``, recorded in the ledger at ingest); what stayed
NULL becomes a warning, or an error for a column the mission's profile requires.
Times become MJD (UTC), wavelengths stay in metres as ObsCore wants them.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from astropy.io import fits
from astropy.time import Time
from erfa import ErfaWarning

from firstlight.checks.filters import FilterTable
from firstlight.domain.findings import Finding, Severity
from firstlight.domain.manifest import ObservationFields, ProductType
from firstlight.domain.release import Observation, ObsField
from firstlight.errors import InvalidInputError
from firstlight.formats.fits_observation import HeaderValues, cube_axes, read_observation

FITS_MIME = "application/fits"
DEFAULT_CALIB_LEVEL = 2
CHECK = "observation.metadata"

# Manifest observation field completing each ObsCore column.
MANIFEST_FIELDS: Mapping[ObsField, str] = {
    ObsField.TARGET_NAME: "target",
    ObsField.FACILITY_NAME: "facility",
    ObsField.INSTRUMENT_NAME: "instrument",
    ObsField.CALIB_LEVEL: "calib_level",
    ObsField.T_MIN: "time_start",
    ObsField.T_MAX: "time_end",
    ObsField.EM_MIN: "wavelength_min",
    ObsField.EM_MAX: "wavelength_max",
}

# What a producer can do about a NULL column, said in its warning.
_WHERE = {
    ObsField.TARGET_NAME: "OBJECT",
    ObsField.FACILITY_NAME: "TELESCOP",
    ObsField.INSTRUMENT_NAME: "INSTRUME",
    ObsField.CALIB_LEVEL: "CALIBLEV",
    ObsField.S_RA: "a celestial WCS or RA/DEC",
    ObsField.S_DEC: "a celestial WCS or RA/DEC",
    ObsField.S_FOV: "a celestial WCS or APERTURE",
    ObsField.S_REGION: "a celestial WCS or RA/DEC",
    ObsField.T_MIN: "DATE-OBS or MJD-OBS",
    ObsField.T_MAX: "DATE-END, MJD-END or an exposure time",
    ObsField.T_EXPTIME: "EXPTIME or XPOSURE",
    ObsField.EM_MIN: "WAVEMIN or a FILTER the filter table knows",
    ObsField.EM_MAX: "WAVEMAX or a FILTER the filter table knows",
}


class ObservationError(InvalidInputError):
    """A product cannot be read at all; names the file."""


@dataclass(frozen=True)
class DerivedObservation:
    """An ObsCore row with where each column came from and what stayed NULL."""

    observation: Observation
    sources: Mapping[str, str]  # ObsCore column -> "header:TELESCOP", "manifest:facility", ...
    missing: tuple[ObsField, ...]  # NULL, or calib_level defaulted
    notes: tuple[str, ...] = ()  # header values present but unusable

    def findings(self, rel: str, required: Collection[ObsField]) -> list[Finding]:
        """A warning per NULL column, an error for one the mission requires, plus notes."""
        found = [Finding(CHECK, note, file=rel, severity=Severity.WARNING) for note in self.notes]
        for name in self.missing:
            manifest = MANIFEST_FIELDS.get(name)
            where = f"no {_WHERE[name]} in the header"
            if manifest is not None:
                where += f" and no observation.{manifest} in the manifest"
            outcome = f"{DEFAULT_CALIB_LEVEL} assumed" if name is ObsField.CALIB_LEVEL else "NULL"
            severity = Severity.ERROR if name in required else Severity.WARNING
            needed = " (required by the mission's profile)" if name in required else ""
            reason = f"ObsCore {name} is {outcome}{needed}: {where}"
            found.append(Finding(CHECK, reason, file=rel, column=str(name), severity=severity))
        return found


def observation_from_fits(
    path: Path,
    rel: str,
    product_type: ProductType,
    *,
    mission: str,
    release_key: str,
    access_url: str,
    release_date: datetime | None,
    declared: ObservationFields | None = None,
    filters: FilterTable | None = None,
) -> DerivedObservation:
    """The ObsCore row of one product: its headers, then ``declared`` (the manifest's)."""
    try:
        with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
            image = _image_hdu(hdul) if product_type is ProductType.IMAGE else None
            found = read_observation(hdul, image, filters or FilterTable())
            obs_id = _obs_id(hdul, image, rel)
            cube = None if image is None else cube_axes(hdul[image].header)
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ObservationError(f"{rel}: cannot be read: {' '.join(str(exc).split())}") from exc
    _complete(found, declared)
    missing = tuple(name for name in ObsField if found.values.get(name) is None)
    values = found.values
    observation = Observation(
        obs_collection=mission,
        obs_id=obs_id,
        obs_publisher_did=f"ivo://firstlight/{mission}?{release_key}/{rel}",
        # The data decide between an image and a cube; other types are the manifest's.
        dataproduct_type="cube" if cube else product_type.value,
        calib_level=int(values.get(ObsField.CALIB_LEVEL, DEFAULT_CALIB_LEVEL)),
        target_name=values.get(ObsField.TARGET_NAME),
        s_ra=values.get(ObsField.S_RA),
        s_dec=values.get(ObsField.S_DEC),
        s_fov=values.get(ObsField.S_FOV),
        s_region=values.get(ObsField.S_REGION),
        t_min=values.get(ObsField.T_MIN),
        t_max=values.get(ObsField.T_MAX),
        t_exptime=values.get(ObsField.T_EXPTIME),
        em_min=values.get(ObsField.EM_MIN),
        em_max=values.get(ObsField.EM_MAX),
        facility_name=values.get(ObsField.FACILITY_NAME),
        instrument_name=values.get(ObsField.INSTRUMENT_NAME),
        access_url=access_url,
        access_format=FITS_MIME,
        access_estsize=max(1, (path.stat().st_size + 1023) // 1024),  # ObsCore: kB
        obs_release_date=release_date,
    )
    sources = {str(name): found.sources[name] for name in ObsField if name in found.sources}
    if ObsField.CALIB_LEVEL in missing:
        sources[str(ObsField.CALIB_LEVEL)] = "default"
    sources["dataproduct_type"] = (
        f"header:{cube}" if cube else f"manifest:product_type ({product_type.value})"
    )
    return DerivedObservation(observation, sources, missing, tuple(found.notes))


def _complete(found: HeaderValues, declared: ObservationFields | None) -> None:
    """Fill what the headers did not say from the manifest's fields."""
    if declared is None:
        return
    for name, attribute in MANIFEST_FIELDS.items():
        value: Any = getattr(declared, attribute)
        if value is None or found.values.get(name) is not None:
            continue
        if isinstance(value, datetime):
            value = _mjd(value)
        found.set(name, value, f"manifest:{attribute}")


def _mjd(moment: datetime) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ErfaWarning)  # "dubious year" before 1960: still a date
        return float(Time(moment, scale="utc").mjd)


def _image_hdu(hdul: Any) -> int | None:
    """The first image HDU of 2+ axes (primary or extension)."""
    for index, hdu in enumerate(hdul):
        if hdu.is_image and isinstance(hdu.header.get("NAXIS"), int) and hdu.header["NAXIS"] >= 2:
            return index
    return None


def _obs_id(hdul: Any, image: int | None, rel: str) -> str:
    for index in (image, 0):
        if index is not None:
            value = hdul[index].header.get("OBS_ID")
            if isinstance(value, str | int) and str(value).strip():
                return str(value).strip()
    return PurePosixPath(rel).with_suffix("").as_posix()
