"""Row-level Great Expectations expectations evaluated with numpy on a chunk's columns.

Belongs here: one evaluator per supported expectation type, reading the
suite's own kwargs, that answers for one chunk exactly what Great
Expectations' pandas engine answers for the same rows as a frame built by
``checks.expectations.chunk_frame``: ``success``, ``element_count``,
``missing_count``, ``unexpected_count``, the first unexpected values and
their index rows (key and row number). Great Expectations still owns the
suites (it builds and checks every expectation), the results' shape and the
Data Docs; this module only replaces its per-chunk pandas metrics, which run
at about a tenth of numpy's speed.

Null handling follows pandas, as Great Expectations does: a masked value and a
float NaN are missing, an empty string is not. An expectation whose type,
arguments or column types are not covered here gets no evaluator
(``evaluator_for`` returns None) and Great Expectations runs it itself, so
nothing passes unchecked. Equivalence with Great Expectations, type by type,
is tests/unit/test_row_expectations.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Columns = Mapping[str, NDArray[Any]]  # a chunk's columns (masked arrays where null)
Result = dict[str, Any]  # the "result" part of an ExpectationValidationResult, and success

# Arguments every evaluator understands besides its own (the rest means: Great Expectations).
_COMMON = frozenset({"mostly"})
_BETWEEN = frozenset({"column", "min_value", "max_value", "strict_min", "strict_max"})
_SET = frozenset({"column", "value_set"})
_NULL = frozenset({"column"})
_PAIR = frozenset({"column_A", "column_B", "or_equal", "ignore_row_if"})
_INT64 = np.iinfo(np.int64)
_IGNORE_ROW_IF = frozenset({"both_values_are_missing", "either_value_is_missing", "neither"})


@dataclass(frozen=True)
class FrameColumn:
    """One column of a chunk as Great Expectations' pandas frame holds it."""

    values: NDArray[Any]  # float64 / int64 widened, strings and bools as read
    missing: NDArray[np.bool_]  # pandas' isnull: masked, or NaN

    def python(self, rows: NDArray[np.intp]) -> list[Any]:
        """The values of some rows as Python scalars (None where missing)."""
        picked = self.values[rows].tolist()
        return [None if m else v for v, m in zip(picked, self.missing[rows].tolist(), strict=True)]


def column_of(values: NDArray[Any]) -> FrameColumn:
    """A chunk's column widened as ``chunk_frame`` widens it, with pandas' missing mask."""
    data = np.ma.getdata(values)
    missing = np.ma.getmaskarray(values)
    if data.dtype.kind == "f":
        data = data.astype(np.float64, copy=False)
        missing = missing | np.isnan(data)
    elif data.dtype.kind in "iu":
        data = data.astype(np.int64, copy=False)
    return FrameColumn(data, missing)


@dataclass(frozen=True)
class Evaluator:
    """How to find one expectation's unexpected rows in a chunk."""

    columns: tuple[str, ...]  # the columns it reads, in the order GE names them
    # (columns) -> (considered rows: not missing / not ignored, unexpected rows)
    judge: Callable[[Sequence[FrameColumn]], tuple[NDArray[np.bool_], NDArray[np.bool_]]]
    counts_missing: bool  # GE reports missing_count (not for the null expectations)
    pair: bool = False

    def evaluate(
        self,
        chunk: Mapping[str, FrameColumn],
        index: Mapping[str, FrameColumn],
        mostly: float | None,
        sample: int,
    ) -> Result:
        """This chunk's result, in the shape ``checks.expectations._Sum`` adds up."""
        used = [chunk[name] for name in self.columns]
        considered, unexpected = self.judge(used)
        element_count = int(considered.size)
        missing = element_count - int(np.count_nonzero(considered))
        failing = np.flatnonzero(unexpected)
        count = int(failing.size)
        first = failing[:sample]
        values = [c.python(first) for c in used]
        listed: list[Any] = [list(v) for v in zip(*values, strict=True)] if self.pair else values[0]
        named = dict(zip(self.columns, values, strict=True))
        named.update({name: c.python(first) for name, c in index.items()})
        indexes = [{name: v[i] for name, v in named.items()} for i in range(first.size)]
        result: Result = {
            "element_count": element_count,
            "unexpected_count": count,
            "partial_unexpected_list": listed,
            "partial_unexpected_index_list": indexes,
        }
        if self.counts_missing:
            result["missing_count"] = missing
            nonmissing = element_count - missing
        else:
            nonmissing = element_count
        return {"success": _success(count, nonmissing, mostly), "result": result}


def _success(unexpected: int, nonmissing: int, mostly: float | None) -> bool:
    if mostly is None:
        return unexpected == 0
    return nonmissing == 0 or (nonmissing - unexpected) / nonmissing >= mostly


def evaluator_for(
    type_: str, kwargs: Mapping[str, Any], dtypes: Mapping[str, np.dtype[Any]]
) -> Evaluator | None:
    """The evaluator of an expectation over columns of these dtypes; None: GE runs it."""
    make = _MAKERS.get(type_)
    if make is None:
        return None
    return make(kwargs, dtypes)


def mostly_of(kwargs: Mapping[str, Any]) -> float | None:
    value = kwargs.get("mostly")
    return None if value is None else float(value)


# --- the evaluators --------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _only(kwargs: Mapping[str, Any], allowed: frozenset[str]) -> bool:
    if not set(kwargs) <= allowed | _COMMON:
        return False
    mostly = kwargs.get("mostly")
    return mostly is None or (_number(mostly) and 0 <= mostly <= 1)


def _dtype(dtypes: Mapping[str, np.dtype[Any]], name: Any) -> np.dtype[Any] | None:
    return dtypes.get(name) if isinstance(name, str) else None


def _between(kwargs: Mapping[str, Any], dtypes: Mapping[str, np.dtype[Any]]) -> Evaluator | None:
    dtype = _dtype(dtypes, kwargs.get("column"))
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_min, strict_max = kwargs.get("strict_min", False), kwargs.get("strict_max", False)
    if (
        not _only(kwargs, _BETWEEN)
        or dtype is None
        or dtype.kind not in "iuf"
        or (low is None and high is None)
        or not all(v is None or _number(v) for v in (low, high))
        or not all(isinstance(s, bool) for s in (strict_min, strict_max))
        or (low is not None and high is not None and low > high)
    ):
        return None

    def judge(cols: Sequence[FrameColumn]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        (col,) = cols
        considered = ~col.missing
        outside = np.zeros(col.values.shape, dtype=bool)
        with np.errstate(invalid="ignore"):  # NaN rows are missing, never compared
            if low is not None:
                outside |= col.values <= low if strict_min else col.values < low
            if high is not None:
                outside |= col.values >= high if strict_max else col.values > high
        return considered, outside & considered

    return Evaluator((str(kwargs["column"]),), judge, counts_missing=True)


def _in_set(
    kwargs: Mapping[str, Any], dtypes: Mapping[str, np.dtype[Any]], *, inside: bool
) -> Evaluator | None:
    dtype = _dtype(dtypes, kwargs.get("column"))
    value_set = kwargs.get("value_set")
    if not _only(kwargs, _SET) or dtype is None or not isinstance(value_set, list | tuple):
        return None
    # Only sets whose values compare with the column's as pandas compares them.
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in value_set)
    if dtype.kind in "iu" and ints and all(_INT64.min <= v <= _INT64.max for v in value_set):
        wanted: NDArray[Any] = np.asarray(value_set, dtype=np.int64)  # exact, as pandas
    elif dtype.kind in "iuf" and all(_number(v) for v in value_set):
        wanted = np.asarray(value_set, dtype=np.float64)
    elif dtype.kind == "U" and all(isinstance(v, str) for v in value_set):
        wanted = np.asarray(value_set, dtype=np.str_)
    else:
        return None

    def judge(cols: Sequence[FrameColumn]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        (col,) = cols
        considered = ~col.missing
        member = np.isin(col.values, wanted) if wanted.size else np.zeros(col.values.shape, bool)
        return considered, considered & (~member if inside else member)

    return Evaluator((str(kwargs["column"]),), judge, counts_missing=True)


def _null(
    kwargs: Mapping[str, Any], dtypes: Mapping[str, np.dtype[Any]], *, null: bool
) -> Evaluator | None:
    if not _only(kwargs, _NULL) or _dtype(dtypes, kwargs.get("column")) is None:
        return None

    def judge(cols: Sequence[FrameColumn]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        (col,) = cols
        considered = np.ones(col.values.shape, dtype=bool)
        return considered, ~col.missing if null else col.missing

    return Evaluator((str(kwargs["column"]),), judge, counts_missing=False)


def _a_greater_than_b(
    kwargs: Mapping[str, Any], dtypes: Mapping[str, np.dtype[Any]]
) -> Evaluator | None:
    a, b = _dtype(dtypes, kwargs.get("column_A")), _dtype(dtypes, kwargs.get("column_B"))
    or_equal = kwargs.get("or_equal", False)
    ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
    if (
        not _only(kwargs, _PAIR)
        or a is None
        or b is None
        # pandas' nullable integers compare to NA, not False: GE's own evaluation is kept.
        or a.kind != "f"
        or b.kind != "f"
        or not isinstance(or_equal, bool)
        or ignore not in _IGNORE_ROW_IF
    ):
        return None

    def judge(cols: Sequence[FrameColumn]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        col_a, col_b = cols
        if ignore == "both_values_are_missing":
            considered = ~(col_a.missing & col_b.missing)
        elif ignore == "either_value_is_missing":
            considered = ~(col_a.missing | col_b.missing)
        else:
            considered = np.ones(col_a.values.shape, dtype=bool)
        with np.errstate(invalid="ignore"):  # NaN compares False, as in pandas
            good = col_a.values >= col_b.values if or_equal else col_a.values > col_b.values
        return considered, considered & ~good

    columns = (str(kwargs["column_A"]), str(kwargs["column_B"]))
    return Evaluator(columns, judge, counts_missing=True, pair=True)


_MAKERS: dict[str, Callable[[Mapping[str, Any], Mapping[str, np.dtype[Any]]], Evaluator | None]] = {
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": lambda k, d: _in_set(k, d, inside=True),
    "expect_column_values_to_not_be_in_set": lambda k, d: _in_set(k, d, inside=False),
    "expect_column_values_to_not_be_null": lambda k, d: _null(k, d, null=False),
    "expect_column_values_to_be_null": lambda k, d: _null(k, d, null=True),
    "expect_column_pair_values_a_to_be_greater_than_b": _a_greater_than_b,
}
SUPPORTED_TYPES = frozenset(_MAKERS)
