"""The delivery manifest: what a producer promises it delivered.

A delivery is a folder of data files plus ``manifest.json``, written last. This
module is the one definition of the manifest; the JSON Schema in
``docs/manifest.schema.json`` is generated from it (``firstlight schema``) and a
test keeps the two equal. Parsing is strict: unknown fields, unsafe or
duplicate paths and naive datetimes are errors that name the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from firstlight.errors import InvalidInputError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = "1.0"

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
DeliveryId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

# A path segment: no hidden files, no spaces or shell/URL metacharacters.
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$")


class ManifestError(InvalidInputError):
    """The manifest cannot be accepted; the message names the field."""


class ProductType(StrEnum):
    IMAGE = "image"
    SPECTRUM = "spectrum"
    TIMESERIES = "timeseries"
    CATALOGUE = "catalogue"
    AUXILIARY = "auxiliary"

    @property
    def is_observation(self) -> bool:
        """Products that become one ObsCore row each."""
        return self in {ProductType.IMAGE, ProductType.SPECTRUM, ProductType.TIMESERIES}


class FileFormat(StrEnum):
    FITS = "fits"
    VOTABLE = "votable"
    CSV = "csv"
    PARQUET = "parquet"
    OTHER = "other"


class DataType(StrEnum):
    """Column types, by storage width; TAP's names are derived where needed."""

    BOOLEAN = "boolean"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Column(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$")]
    datatype: DataType
    unit: str | None = None
    ucd: str | None = None
    description: str | None = None


class TableDefinition(_Strict):
    """A catalogue product's table: its columns and the roles some of them play."""

    name: Identifier
    description: str | None = None
    columns: Annotated[list[Column], Field(min_length=1)]
    primary_key: str | None = Field(default=None, description="Column of unique, non-null ids.")
    ra: str | None = Field(default=None, description="Column of ICRS right ascension (deg).")
    dec: str | None = Field(default=None, description="Column of ICRS declination (deg).")

    @model_validator(mode="after")
    def _roles_name_columns(self) -> TableDefinition:
        names = [c.name.lower() for c in self.columns]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate column names {dup}")
        for role in ("primary_key", "ra", "dec"):
            value = getattr(self, role)
            if value is not None and value.lower() not in names:
                raise ValueError(f"{role} names column {value!r}, which is not defined")
        if (self.ra is None) != (self.dec is None):
            raise ValueError("ra and dec go together: give both or neither")
        return self

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name.lower() == name.lower():
                return col
        raise KeyError(name)


class ReleaseRef(_Strict):
    name: Identifier = Field(description="Release name, e.g. 'dr4' or 'y2026m11'.")
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]


class ObservationFields(_Strict):
    """What the producer says of an observation product, for what its header does not say.

    The header wins: each field is used only when the header's own keywords (and
    their usual alternatives) give nothing (docs/delivery-format.md).
    """

    target: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Target name (ObsCore target_name)."
    )
    facility: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="Telescope or observatory (ObsCore facility_name)."
    )
    instrument: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="Instrument (ObsCore instrument_name)."
    )
    time_start: AwareDatetime | None = Field(
        default=None, description="Start of the observation, UTC (ObsCore t_min)."
    )
    time_end: AwareDatetime | None = Field(
        default=None, description="End of the observation, UTC (ObsCore t_max)."
    )
    wavelength_min: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Shortest wavelength observed, metres (ObsCore em_min)."
    )
    wavelength_max: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Longest wavelength observed, metres (ObsCore em_max)."
    )
    calib_level: Annotated[int, Field(ge=0, le=4)] | None = Field(
        default=None, description="ObsCore calibration level, 0 (raw) to 4 (analysis product)."
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ObservationFields:
        if self.time_start and self.time_end and self.time_end < self.time_start:
            raise ValueError("time_end is before time_start")
        low, high = self.wavelength_min, self.wavelength_max
        if low is not None and high is not None and high < low:
            raise ValueError("wavelength_max is below wavelength_min")
        return self

    def merged_over(self, base: ObservationFields | None) -> ObservationFields:
        """These fields, with ``base``'s where these say nothing."""
        if base is None:
            return self
        given = self.model_dump(exclude_none=True)
        return ObservationFields.model_validate({**base.model_dump(exclude_none=True), **given})


class ManifestFile(_Strict):
    path: str = Field(description="Relative POSIX path inside the delivery.")
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256
    product_type: ProductType
    format: FileFormat
    release_date: AwareDatetime | None = Field(
        default=None, description="Embargo: invisible publicly until this instant."
    )
    table: TableDefinition | None = None
    observation: ObservationFields | None = Field(
        default=None,
        description="Image, spectrum, time series: observation metadata its header lacks.",
    )

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        check_relative_path(value)
        return value

    @model_validator(mode="after")
    def _table_iff_catalogue(self) -> ManifestFile:
        if self.product_type is ProductType.CATALOGUE and self.table is None:
            raise ValueError("a catalogue product needs its table definition")
        if self.product_type is not ProductType.CATALOGUE and self.table is not None:
            raise ValueError(f"a {self.product_type} product has no table definition")
        if self.observation is not None and not self.product_type.is_observation:
            raise ValueError(f"a {self.product_type} product has no observation fields")
        return self


class Manifest(_Strict):
    manifest_version: str = Field(default=MANIFEST_VERSION, pattern=r"^1\.\d+$")
    mission: Identifier
    delivery_id: DeliveryId
    release: ReleaseRef
    producer: Annotated[str, Field(min_length=1, max_length=200)]
    created: AwareDatetime
    files: Annotated[list[ManifestFile], Field(min_length=1)]

    @field_validator("files")
    @classmethod
    def _unique(cls, files: list[ManifestFile]) -> list[ManifestFile]:
        seen: dict[str, str] = {}
        tables: set[str] = set()
        for f in files:
            # Case-folded: two paths equal on a case-insensitive store are one file.
            key = f.path.casefold()
            if key in seen:
                raise ValueError(f"duplicate path {f.path!r} (also {seen[key]!r})")
            seen[key] = f.path
            if f.table is not None:
                if f.table.name in tables:
                    raise ValueError(f"duplicate table name {f.table.name!r}")
                tables.add(f.table.name)
        return files

    @property
    def release_key(self) -> str:
        """Stable identifier of the release this delivery makes."""
        return release_key(self.mission, self.release.name, self.release.version)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"


def release_key(mission: str, name: str, version: str) -> str:
    safe_version = re.sub(r"[^A-Za-z0-9]", "_", version)
    return f"{mission}_{name}_v{safe_version}".lower()


def check_relative_path(value: str) -> None:
    """Reject absolute, parent-escaping, hidden and odd paths."""
    if not value:
        raise ValueError("path is empty")
    if "\\" in value or value.startswith("/") or re.match(r"^[A-Za-z]:", value):
        raise ValueError(f"path {value!r} must be relative, with '/' separators")
    parts = PurePosixPath(value).parts
    if ".." in value.split("/"):
        raise ValueError(f"path {value!r} leaves the delivery ('..')")
    if value.split("/") != list(parts) or any(p in {"", "."} for p in value.split("/")):
        raise ValueError(f"path {value!r} has empty or '.' segments")
    for part in parts:
        if not _SEGMENT.match(part):
            raise ValueError(f"path {value!r}: segment {part!r} must match {_SEGMENT.pattern}")
    if value == MANIFEST_NAME:
        raise ValueError(f"{MANIFEST_NAME} cannot list itself")


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out or "(root)"


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] == "timezone_aware":
            msg = "datetime must carry a timezone (e.g. 'Z' or '+00:00')"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{source}: {_location(tuple(e['loc']))}: {msg}")
    return "\n".join(lines)


def parse_manifest(data: bytes, source: str = MANIFEST_NAME) -> Manifest:
    """Parse manifest bytes; raise ``ManifestError`` naming each bad field."""
    try:
        raw: Any = _load_json(data)
    except RecursionError as exc:
        raise ManifestError(f"{source}: not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer too long
        raise ManifestError(f"{source}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{source}: (root): must be a JSON object")
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, source)) from exc


UNKNOWN_MISSION = "_unknown"


def raw_identity(data: bytes, fallback: str) -> tuple[str, str]:
    """``(mission, delivery_id)`` from manifest bytes, parsed or not.

    The one rule every arrival source and admission share, so an announcement
    names the ledger line its run will write: the manifest's own fields when
    they are non-empty strings (a valid manifest always has them), else
    ``_unknown`` and ``fallback`` (the delivery folder's name).
    """
    try:
        raw: Any = _load_json(data)
    except (RecursionError, ValueError):
        raw = None
    if isinstance(raw, dict):
        mission, delivery_id = raw.get("mission"), raw.get("delivery_id")
        if isinstance(mission, str) and isinstance(delivery_id, str) and mission and delivery_id:
            return mission[:32], delivery_id[:160]
    return UNKNOWN_MISSION, fallback[:160]


def _load_json(data: bytes) -> Any:
    """``json.loads`` for untrusted bytes; the callers turn every failure into a reason.

    Hostile nesting (a 200 kB ``[[[...]]]``) raises RecursionError from the C
    decoder's own depth guard, and a 5,000-digit number ValueError: both are
    caught where this is called, so a poison manifest is refused, never fatal.
    """
    return json.loads(data)


def manifest_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_json_schema() -> dict[str, Any]:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://firstlight.example/schemas/manifest-1.0.json"
    return schema


def now_utc() -> datetime:
    return datetime.now(UTC)
