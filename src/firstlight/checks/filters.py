"""The filter table: band names to wavelength bounds, as data.

Belongs here: the typed model of ``validations/filters.toml`` (and a mission's
``missions/<mission>/filters.toml`` over it, entry by entry) and the lookup the
ObsCore step makes when a header names a FILTER but no wavelengths. Unknown
keys and inverted bounds are errors naming the file, as for the format rules.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator

from firstlight.checks.rules import MISSIONS_FOLDER, RulesError
from firstlight.domain.manifest import format_validation_error

FILTERS_FILE = "filters.toml"

BandName = Annotated[str, Field(min_length=1, max_length=136)]


class _FiltersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bands: dict[BandName, tuple[PositiveFloat, PositiveFloat]] = {}

    @field_validator("bands")
    @classmethod
    def _ordered(cls, bands: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in bands.items():
            if not low < high:
                raise ValueError(f"band {name!r}: min {low:g} is not below max {high:g}")
        return bands


@dataclass(frozen=True)
class FilterTable:
    """Wavelength bounds (metres) by band name, with the files they came from."""

    sources: tuple[Path, ...] = ()
    bands: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def lookup(self, instrument: str | None, name: str) -> tuple[str, tuple[float, float]] | None:
        """``(key, (min, max))`` for a header's FILTER: "<INSTRUME>/<FILTER>" first."""
        band = name.strip()
        keys = [f"{instrument.strip()}/{band}"] if instrument and instrument.strip() else []
        for key in [*keys, band]:
            if key in self.bands:
                return key, self.bands[key]
        return None


def load_filters(validations_dir: Path, mission: str) -> FilterTable:
    """``filters.toml`` and, if present, ``missions/<mission>/filters.toml`` over it."""
    bands: dict[str, tuple[float, float]] = {}
    sources = []
    for path in (
        validations_dir / FILTERS_FILE,
        validations_dir / MISSIONS_FOLDER / mission / FILTERS_FILE,
    ):
        if path.is_file():
            bands.update(_read(path))
            sources.append(path)
    return FilterTable(sources=tuple(sources), bands=bands)


def _read(path: Path) -> dict[str, tuple[float, float]]:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return _FiltersFile.model_validate(raw).bands
    except ValidationError as exc:
        raise RulesError(format_validation_error(exc, str(path))) from exc
