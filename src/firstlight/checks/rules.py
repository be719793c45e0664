"""Format rules as data: what a FITS product of each type must carry.

Belongs here: the typed model of the rule files and their loading. The rules
themselves live in ``validations/``: ``rules/default.toml`` for every mission
(the FITS standard: checksums verified when present, observation keywords
checked when present), and a mission's profile ``missions/<mission>/rules.toml``
whose product-type tables replace the default's tables of the same product
type as a whole (no deep merge, so a mission's file reads as the full rule for
what it overrides), and whose ``[observation]`` table names the ObsCore
columns that mission requires. Unknown keys are errors naming the file and the
key, so a typo never silently disables a check.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from firstlight.domain.manifest import ProductType, format_validation_error
from firstlight.domain.release import ObsField
from firstlight.errors import InvalidInputError

RULES_FOLDER = "rules"
DEFAULT_RULES = "default.toml"
MISSIONS_FOLDER = "missions"
MISSION_RULES = "rules.toml"
PRIMARY = "primary"

_MISSION = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

# Standard FITS keyword names: up to 8 of upper-case letters, digits, '-' and '_'.
Keyword = Annotated[str, Field(pattern=r"^[A-Z0-9_-]{1,8}$")]
HduName = Annotated[str, Field(min_length=1, max_length=68)]
AllowedValue = StrictBool | StrictInt | StrictFloat | StrictStr


class RulesError(InvalidInputError):
    """A rule file cannot be used; the message names the file and the key."""


class KeywordType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"

    @property
    def is_ordered(self) -> bool:
        """Types whose values compare (for ranges and ``order`` rules)."""
        return self in {KeywordType.INTEGER, KeywordType.NUMBER, KeywordType.DATE}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeywordRule(_Rule):
    """One header keyword: its type and, optionally, its allowed values or range."""

    type: KeywordType
    required: bool = True
    allowed: tuple[AllowedValue, ...] | None = None
    minimum: float | None = Field(default=None, alias="min")
    maximum: float | None = Field(default=None, alias="max")

    @model_validator(mode="after")
    def _consistent(self) -> KeywordRule:
        numeric = self.type in {KeywordType.INTEGER, KeywordType.NUMBER}
        if (self.minimum is not None or self.maximum is not None) and not numeric:
            raise ValueError(f"min/max apply to integer and number keywords, not {self.type}")
        for value in self.allowed or ():
            if not _value_has_type(value, self.type):
                raise ValueError(f"allowed value {value!r} is not of type {self.type}")
        return self


class OrderRule(_Rule):
    """Two keywords of one HDU that must be in order (``WAVEMIN < WAVEMAX``)."""

    lower: Keyword
    upper: Keyword
    hdu: HduName = PRIMARY
    strict: bool = True


class TableRule(_Rule):
    """The table extension of a spectrum or time series and the columns it needs."""

    extname: HduName
    columns: Annotated[tuple[StrictStr, ...], Field(min_length=1)]


class ProductRules(_Rule):
    """Everything checked on a FITS file of one product type."""

    checksums: bool = Field(
        default=False, description="CHECKSUM and DATASUM required in every HDU."
    )
    celestial_wcs: bool = Field(
        default=False, description="The first image HDU of 2+ axes has a sane celestial WCS."
    )
    keywords: Mapping[HduName, Mapping[Keyword, KeywordRule]] = Field(
        default_factory=dict, description="By HDU ('primary' or an EXTNAME), then keyword."
    )
    order: tuple[OrderRule, ...] = ()
    table: TableRule | None = None

    @model_validator(mode="after")
    def _order_names_keywords(self) -> ProductRules:
        for rule in self.order:
            declared = self.keywords.get(rule.hdu, {})
            types = set()
            for name in (rule.lower, rule.upper):
                if name not in declared:
                    raise ValueError(f"order names {name!r}, not a keyword of HDU {rule.hdu!r}")
                types.add(declared[name].type)
            if len(types) != 1 or not types.pop().is_ordered:
                raise ValueError(
                    f"order {rule.lower} < {rule.upper} needs two keywords of one ordered "
                    "type (integer, number or date)"
                )
        return self


class ObservationRules(_Rule):
    """What a mission demands of the ObsCore rows of its images, spectra and time series."""

    required: tuple[ObsField, ...] = Field(
        default=(),
        description="ObsCore columns that must not stay NULL (or, for calib_level, defaulted).",
    )


class _RulesFile(_Rule):
    observation: ObservationRules | None = None
    image: ProductRules | None = None
    spectrum: ProductRules | None = None
    timeseries: ProductRules | None = None
    catalogue: ProductRules | None = None
    auxiliary: ProductRules | None = None

    def by_product(self) -> dict[ProductType, ProductRules]:
        found = {pt: getattr(self, pt.value) for pt in ProductType}
        return {pt: rules for pt, rules in found.items() if rules is not None}


@dataclass(frozen=True)
class FormatRules:
    """The format rules of one mission, with the files they came from."""

    mission: str
    sources: tuple[Path, ...]
    products: Mapping[ProductType, ProductRules] = field(default_factory=dict)
    observation: ObservationRules = field(default_factory=ObservationRules)

    def for_product(self, product_type: ProductType) -> ProductRules:
        """Rules of a product type; a type no file mentions gets no format rules."""
        return self.products.get(product_type, ProductRules())


def load_rules(validations_dir: Path, mission: str) -> FormatRules:
    """Read ``rules/default.toml`` and, if present, ``missions/<mission>/rules.toml`` over it."""
    if not _MISSION.match(mission):
        raise RulesError(f"mission {mission!r} must match {_MISSION.pattern}")
    default = validations_dir / RULES_FOLDER / DEFAULT_RULES
    if not default.is_file():
        raise RulesError(f"{default}: default format rules not found")
    parsed = _read(default)
    products = parsed.by_product()
    observation = parsed.observation or ObservationRules()
    sources = [default]
    profile = validations_dir / MISSIONS_FOLDER / mission / MISSION_RULES
    if profile.is_file():
        override = _read(profile)
        products.update(override.by_product())
        observation = override.observation or observation
        sources.append(profile)
    return FormatRules(
        mission=mission, sources=tuple(sources), products=products, observation=observation
    )


def _read(path: Path) -> _RulesFile:
    """Parse one rule file; raise ``RulesError`` naming the file and the offending key."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return _RulesFile.model_validate(raw)
    except ValidationError as exc:
        raise RulesError(format_validation_error(exc, str(path))) from exc


def _value_has_type(value: AllowedValue, kind: KeywordType) -> bool:
    if isinstance(value, bool):
        return kind is KeywordType.BOOLEAN
    if isinstance(value, int):
        return kind in {KeywordType.INTEGER, KeywordType.NUMBER}
    if isinstance(value, float):
        return kind is KeywordType.NUMBER
    return kind in {KeywordType.STRING, KeywordType.DATE}
