"""Releases and what they hold: observations (ObsCore-shaped) and catalogues."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from firstlight.domain.manifest import TableDefinition

_RUNS = re.compile(r"(\d+)")


def release_order(name: str, version: str) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    """How releases of one mission sort, oldest first: by name, then version, naturally.

    Digit runs compare as numbers (``v28`` after ``v7``, ``dr10`` after ``dr9``,
    ``2026-11-25`` after ``2026-9-30``), the rest as lower-case text. The current
    release only ever moves forward in this order (``ReleaseStore.promote_in``).
    """

    def natural(text: str) -> tuple[tuple[int, int | str], ...]:
        return tuple(
            (0, int(part)) if part.isdigit() else (1, part.lower())
            for part in _RUNS.split(text)
            if part
        )

    return natural(name), natural(version)


class ReleaseState(StrEnum):
    STAGING = "staging"  # ingested or indexed, invisible to queries
    PROMOTED = "promoted"  # public; current or an earlier one


@dataclass(frozen=True)
class Release:
    release_key: str
    mission: str
    name: str
    version: str
    state: ReleaseState
    created_at: datetime
    promoted_at: datetime | None
    current: bool


class ObsField(StrEnum):
    """The ObsCore columns read per product: from its header, else its manifest entry.

    A mission's profile may require any of them (``[observation] required``).
    """

    TARGET_NAME = "target_name"
    FACILITY_NAME = "facility_name"
    INSTRUMENT_NAME = "instrument_name"
    CALIB_LEVEL = "calib_level"
    S_RA = "s_ra"
    S_DEC = "s_dec"
    S_FOV = "s_fov"
    S_REGION = "s_region"
    T_MIN = "t_min"
    T_MAX = "t_max"
    T_EXPTIME = "t_exptime"
    EM_MIN = "em_min"
    EM_MAX = "em_max"


@dataclass(frozen=True)
class Observation:
    """One ObsCore 1.1 row (the columns firstlight fills)."""

    obs_collection: str
    obs_id: str
    obs_publisher_did: str
    dataproduct_type: str
    calib_level: int
    target_name: str | None
    s_ra: float | None
    s_dec: float | None
    s_fov: float | None
    s_region: str | None
    t_min: float | None
    t_max: float | None
    t_exptime: float | None
    em_min: float | None
    em_max: float | None
    facility_name: str | None
    instrument_name: str | None
    access_url: str
    access_format: str
    access_estsize: int
    obs_release_date: datetime | None


@dataclass(frozen=True)
class CatalogueTable:
    release_key: str
    table_name: str
    physical_schema: str | None
    physical_name: str
    definition: TableDefinition
    row_count: int | None
    release_date: datetime | None
