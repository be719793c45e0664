"""Expectation suites as files: loading, mission overrides, and binding to a table.

Belongs here: the typed model of the Great Expectations suite files in
``validations/`` and everything done to them before Great Expectations sees
them (this module never imports it, so loading suites stays cheap):

- ``suites/<kind>.json``: the default suite of a kind (``catalogue``,
  ``observation``), in Great Expectations' own suite shape
  (``{"name", "expectations": [{"type", "kwargs", "meta", "severity"}]}``);
- ``missions/<mission>/<kind>.json``: optional, same shape; each expectation
  replaces the default's expectation of the same type and column(s) (as
  written, placeholders included), or is added; ``"meta": {"disabled": true}``
  removes it. So a mission adds or tightens rules with a file, not code.

Catalogue tables are generic, so column arguments may name a column by its
role in the manifest's table definition instead of by name: ``"{key}"``,
``"{ra}"``, ``"{dec}"``, or ``"{ucd:WORD}"``, which stands for every column
whose UCD has an atom equal to WORD or starting with ``WORD.`` (one
expectation per column). An expectation whose placeholder names no column of
the table does not apply to it. Unknown fields are errors naming the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firstlight.domain.manifest import TableDefinition, format_validation_error
from firstlight.errors import InvalidInputError

SUITES_FOLDER = "suites"
MISSIONS_FOLDER = "missions"
DISABLED = "disabled"

# Arguments that name columns, by the expectations that take them.
COLUMN_ARGS = ("column", "column_A", "column_B")
COLUMN_LIST_ARGS = ("column_list",)
_ROLE = re.compile(r"^\{(key|ra|dec|ucd:[A-Za-z0-9_.-]+)\}$")
_MISSION = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class SuiteError(InvalidInputError):
    """A suite file cannot be used; the message names the file and the problem."""


class SuiteKind(StrEnum):
    CATALOGUE = "catalogue"  # every row of every catalogue table, chunk by chunk
    OBSERVATION = "observation"  # the ObsCore-shaped rows of a delivery's observations


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectationSpec(_Strict):
    """One expectation as written in a suite file."""

    type: Annotated[str, Field(pattern=r"^expect_[a-z0-9_]+$")]
    kwargs: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["critical", "warning", "info"] = "critical"
    # Great Expectations writes these when it saves a suite; accepted, not used.
    id: str | None = None
    rendered_content: Any = None

    @property
    def disabled(self) -> bool:
        return self.meta.get(DISABLED) is True

    def merge_key(self) -> tuple[str, str]:
        """What an override matches on: the type and the column arguments as written."""
        columns = {k: self.kwargs.get(k) for k in (*COLUMN_ARGS, *COLUMN_LIST_ARGS)}
        return self.type, json.dumps(columns, sort_keys=True)


class _SuiteFile(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    expectations: list[ExpectationSpec]
    meta: dict[str, Any] = Field(default_factory=dict)
    # Great Expectations writes these when it saves a suite; accepted, not used.
    id: str | None = None
    notes: Any = None
    suite_parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class Suite:
    """A merged suite of one kind for one mission, with the files it came from."""

    kind: SuiteKind
    name: str
    expectations: tuple[ExpectationSpec, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Suites:
    """Every suite of one mission."""

    mission: str
    catalogue: Suite
    observation: Suite


def load_suites(validations_dir: Path, mission: str) -> Suites:
    """The default suites, each with the mission's override file merged over it."""
    if not _MISSION.match(mission):
        raise SuiteError(f"mission {mission!r} must match {_MISSION.pattern}")
    return Suites(
        mission=mission,
        catalogue=load_suite(validations_dir, mission, SuiteKind.CATALOGUE),
        observation=load_suite(validations_dir, mission, SuiteKind.OBSERVATION),
    )


def load_suite(validations_dir: Path, mission: str, kind: SuiteKind) -> Suite:
    default = validations_dir / SUITES_FOLDER / f"{kind.value}.json"
    if not default.is_file():
        raise SuiteError(f"{default}: default {kind.value} suite not found")
    base = read_suite_file(default)
    merged = {e.merge_key(): e for e in base.expectations}
    sources = [str(default)]
    override = validations_dir / MISSIONS_FOLDER / mission / f"{kind.value}.json"
    if override.is_file():
        for spec in read_suite_file(override).expectations:
            merged[spec.merge_key()] = spec  # replaces in place, or appends
        sources.append(str(override))
    kept = tuple(e for e in merged.values() if not e.disabled)
    return Suite(
        kind=kind, name=f"{mission}.{kind.value}", expectations=kept, sources=tuple(sources)
    )


def read_suite_file(path: Path) -> _SuiteFile:
    """Parse one suite file; raise ``SuiteError`` naming the file and the offending field."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot be read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from exc
    try:
        suite = _SuiteFile.model_validate(raw)
    except ValidationError as exc:
        raise SuiteError(format_validation_error(exc, str(path))) from exc
    for index, spec in enumerate(suite.expectations):
        for value in _column_values(spec.kwargs):
            if value.startswith("{") and not _ROLE.match(value):
                raise SuiteError(
                    f"{path}: expectations[{index}]: unknown placeholder {value!r} "
                    "(use {key}, {ra}, {dec} or {ucd:WORD})"
                )
    return suite


# --- binding placeholders to a table ------------------------------------------------


@dataclass(frozen=True)
class BoundExpectation:
    """An expectation with real column names, ready for Great Expectations."""

    type: str
    kwargs: Mapping[str, Any]
    meta: Mapping[str, Any]
    severity: str

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(_column_values(self.kwargs))


def bind_to_table(
    suite: Suite, table: TableDefinition, present: list[str]
) -> list[BoundExpectation]:
    """The suite's expectations for one table; ``present``: column names as the file spells them.

    Placeholders become the columns that play the role; a column the file
    lacks (the ``table.columns`` check reports it) takes its expectation out.
    """
    spelled = {name.lower(): name for name in present}
    bound = []
    for spec in suite.expectations:
        for kwargs in _expand(spec.kwargs, table):
            names = list(_column_values(kwargs))
            if all(n.lower() in spelled for n in names):
                bound.append(
                    BoundExpectation(
                        spec.type,
                        _respell(kwargs, spelled),
                        {**spec.meta, "firstlight_sources": list(suite.sources)},
                        spec.severity,
                    )
                )
    return bound


def bind_plain(suite: Suite) -> list[BoundExpectation]:
    """Expectations of a suite over fixed columns (the observation rows)."""
    return [
        BoundExpectation(spec.type, dict(spec.kwargs), dict(spec.meta), spec.severity)
        for spec in suite.expectations
    ]


def _expand(kwargs: Mapping[str, Any], table: TableDefinition) -> Iterator[dict[str, Any]]:
    """Every way of replacing the placeholders in ``kwargs`` with columns of ``table``."""
    options: list[tuple[str, list[str]]] = []
    for arg in COLUMN_ARGS:
        value = kwargs.get(arg)
        if isinstance(value, str):
            options.append((arg, _resolve(value, table)))
    results: list[dict[str, Any]] = [dict(kwargs)]
    for arg, columns in options:
        results = [{**r, arg: c} for r in results for c in columns]
    for arg in COLUMN_LIST_ARGS:
        value = kwargs.get(arg)
        if isinstance(value, list):
            resolved = [_resolve(str(v), table) for v in value]
            if any(len(r) != 1 for r in resolved):
                return  # a list names single columns; a role no column plays: not applicable
            results = [{**r, arg: [r_[0] for r_ in resolved]} for r in results]
    yield from results


def _resolve(value: str, table: TableDefinition) -> list[str]:
    match = _ROLE.match(value)
    if match is None:
        return [value]
    role = match.group(1)
    if role == "key":
        return [table.primary_key] if table.primary_key else []
    if role in ("ra", "dec"):
        column = getattr(table, role)
        return [column] if column else []
    word = role.removeprefix("ucd:").lower()
    return [c.name for c in table.columns if c.ucd and _ucd_has(c.ucd, word)]


def _ucd_has(ucd: str, word: str) -> bool:
    atoms = (a.strip().lower() for a in ucd.split(";"))
    return any(a == word or a.startswith(word + ".") for a in atoms)


def _respell(kwargs: dict[str, Any], spelled: Mapping[str, str]) -> dict[str, Any]:
    out = dict(kwargs)
    for arg in COLUMN_ARGS:
        if isinstance(out.get(arg), str):
            out[arg] = spelled[out[arg].lower()]
    for arg in COLUMN_LIST_ARGS:
        if isinstance(out.get(arg), list):
            out[arg] = [spelled[str(v).lower()] for v in out[arg]]
    return out


def _column_values(kwargs: Mapping[str, Any]) -> Iterator[str]:
    for arg in COLUMN_ARGS:
        value = kwargs.get(arg)
        if isinstance(value, str):
            yield value
    for arg in COLUMN_LIST_ARGS:
        value = kwargs.get(arg)
        if isinstance(value, list):
            yield from (str(v) for v in value)
