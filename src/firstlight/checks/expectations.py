"""Great Expectations suites run on delivered data, and their results as findings.

Belongs here: running a bound suite (``checks.suites``) with Great
Expectations 1.x on rows, and turning its results into ``Finding``s and into
one validation result per file and suite for Data Docs (``checks.data_docs``).

Catalogues are streamed: each chunk of ``formats.tables`` becomes a pandas
frame validated on its own, so every row is seen and memory stays bounded,
and the per-chunk results are summed into one result per expectation
(unexpected counts added, the first failing rows kept with their key and row
number). That is exact only for row-level (map) expectations, so a catalogue
suite may hold nothing else: whole-table questions (emptiness, key
uniqueness) are the streaming checks of ``catalogue_checks``. Observation
rows are few and validated as one frame, so their suite may use any
expectation.

Great Expectations is imported lazily (it takes seconds), only when a suite
has something to check. Check names: ``expectation:<type>``, and
``expectation.suite`` for a suite that cannot be used.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from firstlight.checks.catalogue_checks import READ_ERRORS, SAMPLE_ROWS
from firstlight.checks.row_expectations import (
    Evaluator,
    FrameColumn,
    column_of,
    evaluator_for,
    mostly_of,
)
from firstlight.checks.suites import (
    BoundExpectation,
    Suite,
    bind_plain,
    bind_to_table,
)
from firstlight.domain.findings import Finding, Severity
from firstlight.domain.manifest import FileFormat, TableDefinition
from firstlight.domain.progress import RowProgress
from firstlight.errors import InvalidInputError
from firstlight.formats.columns import Chunk
from firstlight.formats.fits_table import FitsTableReader
from firstlight.formats.parquet_table import ParquetTableReader
from firstlight.formats.tables import TableReader, open_table

ROW_COLUMN = "_firstlight_row"  # the 0-based row number, added to every frame
DATASOURCE = "firstlight"
ASSET = "rows"
RESULTS_SUFFIX = ".validation.json"
# Per-chunk expectations must be about single rows: these are not, though they map.
_NOT_PER_ROW = frozenset(
    {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
)


class SuiteUnusableError(InvalidInputError):
    """An expectation of a suite cannot run (unknown type, bad arguments, not per row)."""


# --- Great Expectations, lazily ------------------------------------------------------


def import_great_expectations() -> None:
    """Import Great Expectations quietly (its import warns about optional backends)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations
        import great_expectations.data_context.types.base  # noqa: F401


@functools.cache
def _batch_definition() -> Any:
    """An ephemeral context's pandas asset taking one frame per batch (made once a process)."""
    import_great_expectations()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.enable_analytics(enable=False)  # no network here, and none wanted
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_pandas(DATASOURCE).add_dataframe_asset(ASSET)
        return asset.add_batch_definition_whole_dataframe("frame")


def build_suite(name: str, expectations: Sequence[BoundExpectation], *, per_row: bool) -> Any:
    """A ``gx.ExpectationSuite``; ``SuiteUnusableError`` names the expectation that cannot run."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=name)
    for spec in expectations:
        suite.add_expectation(build_expectation(spec, per_row=per_row))
    return suite


def build_expectation(spec: BoundExpectation, *, per_row: bool) -> Any:
    """Great Expectations' own expectation of a spec: it checks the type and arguments."""
    _batch_definition()  # imports Great Expectations quietly; a suite needs an active context
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )
    from great_expectations.expectations.metadata_types import FailureSeverity

    label = f"{spec.type}({_args(spec.kwargs)})"
    try:
        config = ExpectationConfiguration(
            type=spec.type,
            kwargs=dict(spec.kwargs),
            meta=dict(spec.meta),
            severity=FailureSeverity(spec.severity),
        )
        expectation = config.to_domain_obj()
    except Exception as exc:  # Great Expectations raises many kinds; all mean "unusable"
        raise SuiteUnusableError(f"{label}: {_text(exc)}") from exc
    map_kinds = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    if per_row and (not isinstance(expectation, map_kinds) or spec.type in _NOT_PER_ROW):
        raise SuiteUnusableError(
            f"{label}: a catalogue suite holds only row-level expectations "
            "(whole-table ones cannot be summed over chunks; see docs/validation.md)"
        )
    return expectation


# --- summing results over chunks ------------------------------------------------------


@dataclass
class _Sum:
    """One expectation's results over the chunks seen so far."""

    config: dict[str, Any]
    success: bool = True
    element_count: int = 0
    missing_count: int = 0
    unexpected_count: int = 0
    values: list[Any] = field(default_factory=list)
    indexes: list[dict[str, Any]] = field(default_factory=list)
    observed: Any = None
    error: str | None = None

    def add(self, result: Mapping[str, Any]) -> None:
        self.success = self.success and bool(result.get("success"))
        info = result.get("exception_info") or {}
        if info.get("raised_exception") and self.error is None:
            self.error = _text(info.get("exception_message") or "raised an exception")
        found = result.get("result") or {}
        self.element_count += int(found.get("element_count") or 0)
        self.missing_count += int(found.get("missing_count") or 0)
        self.unexpected_count += int(found.get("unexpected_count") or 0)
        values = found.get("partial_unexpected_list") or []
        self.values.extend(values[: max(SAMPLE_ROWS - len(self.values), 0)])
        indexes = found.get("partial_unexpected_index_list") or []
        self.indexes.extend(indexes[: max(SAMPLE_ROWS - len(self.indexes), 0)])
        if "observed_value" in found:
            self.observed = found["observed_value"]

    @property
    def passed(self) -> bool:
        """Over all chunks: ``mostly`` applies to the whole table, not to each chunk."""
        mostly = self.config.get("kwargs", {}).get("mostly")
        if self.error is not None or mostly is None or self.observed is not None:
            return self.success and self.error is None
        nonmissing = self.element_count - self.missing_count
        return nonmissing == 0 or 1 - self.unexpected_count / nonmissing >= float(mostly)

    def as_result(self, index_columns: list[str]) -> dict[str, Any]:
        """An ``ExpectationValidationResult`` as Great Expectations serialises one."""
        counted = self.element_count
        nonmissing = counted - self.missing_count
        result: dict[str, Any] = {
            "element_count": counted,
            "missing_count": self.missing_count,
            "missing_percent": _percent(self.missing_count, counted),
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": _percent(self.unexpected_count, nonmissing),
            "unexpected_percent_total": _percent(self.unexpected_count, counted),
            "unexpected_percent_nonmissing": _percent(self.unexpected_count, nonmissing),
            "partial_unexpected_list": self.values,
            "partial_unexpected_index_list": self.indexes,
            "unexpected_index_column_names": index_columns,
        }
        if self.observed is not None:
            result = (
                {"observed_value": self.observed}
                if not counted
                else {**result, "observed_value": self.observed}
            )
        return {
            "success": self.passed,
            "expectation_config": self.config,
            "result": result,
            "meta": {},
            "exception_info": {
                "raised_exception": self.error is not None,
                "exception_message": self.error,
                "exception_traceback": None,
            },
        }


@dataclass(frozen=True)
class _Plan:
    """How a catalogue suite's expectations run on chunks: numpy where it can, else GE."""

    vectorised: list[tuple[str, Evaluator, float | None]]  # (sum key, evaluator, mostly)
    gx_suite: Any  # the rest as a Great Expectations suite, or None
    gx_columns: list[str]  # the columns the rest reads


@dataclass
class SuiteRun:
    """One suite validated over one or more frames of the same file, results summed."""

    name: str
    asset: str  # what the rows are: a catalogue's path, or "observations"
    expectations: Sequence[BoundExpectation]
    index_columns: list[str]
    per_row: bool
    sums: dict[str, _Sum] = field(default_factory=dict)
    frames: int = 0
    gx_suite: Any = None
    plan: _Plan | None = None

    def __post_init__(self) -> None:
        self.gx_suite = build_suite(self.name, self.expectations, per_row=self.per_row)
        # Results in the suite's order, whichever engine fills them in.
        for expectation in self.gx_suite.expectations:
            config = expectation.configuration.to_json_dict()
            self.sums.setdefault(_sum_key(config), _Sum(config))

    def validate(self, frame: Any) -> None:
        """Validate one pandas frame (a chunk) and add its results to the sums."""
        self._validate_frame(frame, self.gx_suite)
        self.frames += 1

    def _validate_frame(self, frame: Any, gx_suite: Any) -> None:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        result_format = {
            "result_format": "SUMMARY",
            "partial_unexpected_count": SAMPLE_ROWS,
            "unexpected_index_column_names": self.index_columns,
        }
        with warnings.catch_warnings():
            # Per-chunk metrics of an all-null chunk make numpy warn (mean of nothing).
            warnings.simplefilter("ignore", RuntimeWarning)
            outcome = batch.validate(gx_suite, result_format=result_format)
        for result in outcome.to_json_dict()["results"]:
            config = dict(result["expectation_config"])
            config["kwargs"] = {k: v for k, v in config["kwargs"].items() if k != "batch_id"}
            self.sums.setdefault(_sum_key(config), _Sum(config)).add(result)

    def validate_chunk(self, chunk: Chunk, offset: int) -> None:
        """Validate one chunk of a catalogue: numpy evaluators, GE for what they do not cover."""
        if self.plan is None:
            self.plan = self._plan(chunk)
        plan = self.plan
        length = len(next(iter(chunk.values()))) if chunk else 0
        if plan.vectorised:
            used = {c for _, e, _ in plan.vectorised for c in e.columns}
            columns = {name: column_of(chunk[name]) for name in used}
            rows = np.arange(offset, offset + length, dtype=np.int64)
            index = {
                name: column_of(chunk[name]) if name in chunk else FrameColumn(rows, _none(rows))
                for name in self.index_columns
            }
            for key, evaluator, mostly in plan.vectorised:
                self.sums[key].add(evaluator.evaluate(columns, index, mostly, SAMPLE_ROWS))
        if plan.gx_suite is not None:
            self._validate_frame(chunk_frame(chunk, plan.gx_columns, offset), plan.gx_suite)
        self.frames += 1

    def _plan(self, chunk: Chunk) -> _Plan:
        dtypes = {name: column_of(values).values.dtype for name, values in chunk.items()}
        vectorised = []
        rest = []
        for spec in self.expectations:
            config = build_expectation(spec, per_row=self.per_row).configuration.to_json_dict()
            evaluator = evaluator_for(spec.type, spec.kwargs, dtypes)
            if evaluator is None:
                rest.append(spec)
            else:
                vectorised.append((_sum_key(config), evaluator, mostly_of(spec.kwargs)))
        if not rest:
            return _Plan(vectorised, None, [])
        gx_suite = build_suite(self.name, rest, per_row=self.per_row)
        index = [c for c in self.index_columns if c != ROW_COLUMN]
        columns = sorted({c for e in rest for c in e.columns} | set(index))
        return _Plan(vectorised, gx_suite, columns)

    def validation_result(self) -> dict[str, Any]:
        """The summed ``ExpectationSuiteValidationResult`` (for Data Docs), as a dict."""
        from great_expectations import __version__

        results = [s.as_result(self.index_columns) for s in self.sums.values()]
        passed = sum(1 for r in results if r["success"])
        return {
            "success": passed == len(results),
            "results": results,
            "suite_name": self.name,
            "suite_parameters": {},
            "statistics": {
                "evaluated_expectations": len(results),
                "successful_expectations": passed,
                "unsuccessful_expectations": len(results) - passed,
                "success_percent": _percent(passed, len(results)) if results else None,
            },
            "meta": {
                "great_expectations_version": __version__,
                "active_batch_definition": {
                    "datasource_name": DATASOURCE,
                    "data_connector_name": "fluent",
                    "data_asset_name": self.asset,
                    "batch_identifiers": {"chunks": self.frames},
                },
                "batch_spec": {"batch_data": "PandasDataFrame", "data_asset_name": self.asset},
                "firstlight": {"chunks": self.frames, "asset": self.asset},
            },
        }

    def findings(self, file: str | None, *, key: str | None) -> list[Finding]:
        """One finding per failing expectation: counts, sample rows and ids, values."""
        found = []
        for s in self.sums.values():
            if s.passed:
                continue
            # "critical" (the default) rejects the delivery; "warning" and "info" only report.
            critical = s.config.get("severity", "critical") == "critical"
            severity = Severity.ERROR if critical else Severity.WARNING
            found.append(_finding(s, file, key=key, severity=severity))
        return found

    def write(self, results_dir: Path | None, stem: str) -> None:
        if results_dir is None or not self.frames:
            return
        results_dir.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + RESULTS_SUFFIX
        payload = json.dumps(self.validation_result(), indent=1, default=str)
        (results_dir / name).write_text(payload + "\n", encoding="utf-8")


def _finding(s: _Sum, file: str | None, *, key: str | None, severity: Severity) -> Finding:
    kwargs = s.config.get("kwargs", {})
    columns = [str(kwargs[k]) for k in ("column", "column_A", "column_B") if k in kwargs]
    columns += [str(c) for c in kwargs.get("column_list") or ()]
    check = f"expectation:{s.config['type']}"
    rest = {k: v for k, v in kwargs.items() if k not in {"column", "column_list"}}
    what = f"{s.config['type']}({_args(rest)})"
    if s.error is not None:
        return Finding(check, f"could not be evaluated: {s.error}", file=file, severity=severity)
    rows = tuple(int(i[ROW_COLUMN]) for i in s.indexes if ROW_COLUMN in i)
    parts = []
    if key is not None:
        ids = [str(i.get(key)) for i in s.indexes if key in i]
        if ids:
            parts.append(f"{key} " + ", ".join(ids))
    if s.values:
        parts.append("values " + ", ".join(_value(v) for v in s.values))
    if s.observed is not None:
        parts.append(f"observed {_value(s.observed)}")
    if s.unexpected_count:
        reason = f"{s.unexpected_count} of {s.element_count} rows fail {what}"
    else:
        reason = f"fails {what}"
    return Finding(
        check,
        reason,
        file=file,
        column=", ".join(columns) or None,
        failing_count=s.unexpected_count if s.element_count else None,
        sample_rows=rows,
        observed="; ".join(parts) or None,
        severity=severity,
    )


# --- catalogues, chunk by chunk --------------------------------------------------------


def check_catalogue_suite(
    path: Path,
    rel: str,
    fmt: FileFormat,
    table: TableDefinition,
    suite: Suite,
    *,
    chunk_rows: int,
    results_dir: Path | None = None,
    progress: RowProgress | None = None,
) -> list[Finding]:
    """Every row of a catalogue through the suite's row-level expectations, chunk by chunk.

    A table that cannot be read or whose columns differ from its definition is
    ``catalogue_checks``' finding; here its columns that are present still get
    their expectations, and a read error ends the suite quietly.
    """
    with warnings.catch_warnings():
        # Readers' warnings are catalogue_checks' findings; here they are noise.
        warnings.simplefilter("ignore")
        return _catalogue_suite(path, rel, fmt, table, suite, chunk_rows, results_dir, progress)


def _catalogue_suite(  # noqa: PLR0917  (check_catalogue_suite's arguments, passed on)
    path: Path,
    rel: str,
    fmt: FileFormat,
    table: TableDefinition,
    suite: Suite,
    chunk_rows: int,
    results_dir: Path | None,
    progress: RowProgress | None,
) -> list[Finding]:
    try:
        reader = open_table(path, fmt, table)
        present = [c.name for c in reader.columns()]
    except READ_ERRORS:
        return []
    bound = bind_to_table(suite, table, present)
    if not bound:
        return []
    spelled = {name.lower(): name for name in present}
    key = spelled.get(table.primary_key.lower()) if table.primary_key else None
    try:
        run = SuiteRun(suite.name, rel, bound, [*([key] if key else []), ROW_COLUMN], per_row=True)
    except SuiteUnusableError as exc:
        return [_unusable(suite, exc, rel)]
    offset = 0
    total = _rows_known(reader)
    try:
        used = {c for e in bound for c in e.columns} | ({key} if key else set())
        for chunk in reader.iter_chunks(chunk_rows, used or None):
            length = len(next(iter(chunk.values()))) if chunk else 0
            run.validate_chunk(chunk, offset)
            offset += length
            if progress is not None:
                progress(offset, total)
    except READ_ERRORS:
        return []
    run.write(results_dir, f"{rel}.{suite.kind.value}")
    return run.findings(rel, key=key)


def _rows_known(reader: TableReader) -> int | None:
    """The row count where it costs nothing (FITS, Parquet); a CSV would be read twice."""
    return reader.num_rows() if isinstance(reader, FitsTableReader | ParquetTableReader) else None


def chunk_frame(chunk: Chunk, columns: Iterable[str], offset: int) -> Any:
    """A pandas frame of some columns of a chunk (nulls as pandas' missing values)."""
    import pandas as pd  # type: ignore[import-untyped]  # no stubs (pandas-stubs not a dep)

    data: dict[str, Any] = {name: _series(chunk[name]) for name in columns if name in chunk}
    length = len(next(iter(chunk.values()))) if chunk else 0
    data[ROW_COLUMN] = np.arange(offset, offset + length, dtype=np.int64)
    return pd.DataFrame(data, copy=False)


def _series(values: NDArray[Any]) -> Any:
    import pandas as pd

    mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
    data = np.ma.getdata(values)
    # Great Expectations' pandas metrics take their vectorised path only for int64 and
    # float64 columns (others go value by value in Python, 20x slower); widening is exact.
    if data.dtype.kind == "f":
        data = data.astype(np.float64, copy=False)
    elif data.dtype.kind in "iu":
        data = data.astype(np.int64, copy=False)
    if mask is None or not mask.any():
        return data
    if data.dtype.kind == "f":
        return np.where(mask, np.nan, data)
    if data.dtype.kind in "iu":
        return pd.arrays.IntegerArray(data, mask)
    if data.dtype.kind == "b":
        return pd.arrays.BooleanArray(data, mask)
    out = data.astype(object)
    out[mask] = None
    return out


# --- observation rows, one frame ------------------------------------------------------


def check_observation_suite(
    rows: list[dict[str, Any]], suite: Suite, results_dir: Path | None = None
) -> list[Finding]:
    """The delivery's observation rows (ObsCore-shaped, each with its ``file``) as one frame.

    Each row-level failure names the file its row came from; whole-table ones
    (uniqueness) name the files of their first failing rows.
    """
    import pandas as pd

    bound = bind_plain(suite)
    if not rows or not bound:
        return []
    frame = pd.DataFrame(rows)
    frame[ROW_COLUMN] = np.arange(len(frame), dtype=np.int64)
    try:
        run = SuiteRun(suite.name, "observations", bound, ["file", ROW_COLUMN], per_row=False)
    except SuiteUnusableError as exc:
        return [_unusable(suite, exc, None)]
    run.validate(frame)
    run.write(results_dir, f"observations.{suite.kind.value}")
    findings = []
    for finding in run.findings(None, key="file"):
        files = list(dict.fromkeys(rows[r]["file"] for r in finding.sample_rows))
        for file in files or [None]:
            findings.append(_with_file(finding, file))
    return findings


def _with_file(finding: Finding, file: str | None) -> Finding:
    from dataclasses import replace

    return replace(finding, file=file)


# --- shared ---------------------------------------------------------------------------


def _sum_key(config: Mapping[str, Any]) -> str:
    """One expectation's identity in a suite: its type and arguments."""
    return json.dumps([config["type"], config["kwargs"]], sort_keys=True, default=str)


def _none(values: NDArray[Any]) -> NDArray[np.bool_]:
    return np.zeros(values.shape, dtype=bool)


def _unusable(suite: Suite, exc: Exception, file: str | None) -> Finding:
    sources = " over ".join(reversed(suite.sources))
    return Finding("expectation.suite", f"{sources}: {exc}", file=file)


def _args(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "batch_id")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _text(message: object) -> str:
    return " ".join(str(message).split())[:500]
