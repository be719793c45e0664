"""The numpy evaluators answer exactly what Great Expectations answers, chunk by chunk.

Each case runs one expectation on the same sample chunks twice: through Great
Expectations' pandas engine (the frame ``chunk_frame`` builds) and through its
numpy evaluator, and compares success, counts, the first unexpected values and
their index rows. Then the summed results over several chunks, and that what
has no evaluator still runs through Great Expectations.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firstlight.checks.catalogue_checks import SAMPLE_ROWS
from firstlight.checks.expectations import (
    ROW_COLUMN,
    SuiteRun,
    _batch_definition,
    build_suite,
    check_catalogue_suite,
    chunk_frame,
)
from firstlight.checks.row_expectations import (
    SUPPORTED_TYPES,
    column_of,
    evaluator_for,
    mostly_of,
)
from firstlight.checks.suites import BoundExpectation, Suite, SuiteKind
from firstlight.domain.manifest import FileFormat
from firstlight.formats.columns import Chunk
from tests.unit.test_catalogue_checks import definition, values, write_fits

ROWS = 40
KEY = "k"
INDEX = [KEY, ROW_COLUMN]


def sample_chunk(seed: int, rows: int = ROWS) -> Chunk:
    """Columns of every kind, with nulls, NaN, infinities and empty strings."""
    rng = np.random.default_rng(seed)
    f = rng.normal(0.5, 1.0, rows)
    f[rng.random(rows) < 0.2] = np.nan
    f[rng.random(rows) < 0.05] = np.inf
    f[rng.random(rows) < 0.05] = -np.inf
    f[rng.random(rows) < 0.1] = 1.0  # exactly on a bound
    g = rng.normal(0.4, 1.0, rows)
    g[rng.random(rows) < 0.2] = np.nan
    f32 = rng.normal(0.5, 1.0, rows).astype(np.float32)
    f32[rng.random(rows) < 0.1] = np.float32(0.1)  # not 0.1 once widened
    i = rng.integers(-2, 6, rows).astype(np.int64)
    i32 = rng.integers(-2, 6, rows).astype(np.int32)
    s = rng.choice(np.array(["a", "b", "c", ""]), rows)
    b = rng.random(rows) < 0.5
    return {
        KEY: np.arange(1000 + seed * rows, 1000 + (seed + 1) * rows, dtype=np.int64),
        "f": f,
        "g": g,
        "f32": f32,
        "i": np.ma.MaskedArray(i, mask=rng.random(rows) < 0.2),
        "i32": i32,
        "s": np.ma.MaskedArray(s, mask=rng.random(rows) < 0.2),
        "b": np.ma.MaskedArray(b, mask=rng.random(rows) < 0.2),
        "allnan": np.full(rows, np.nan),
    }


def spec(type_: str, **kwargs: Any) -> BoundExpectation:
    return BoundExpectation(type_, kwargs, {}, "critical")


BETWEEN = "expect_column_values_to_be_between"
IN_SET = "expect_column_values_to_be_in_set"
NOT_IN_SET = "expect_column_values_to_not_be_in_set"
NOT_NULL = "expect_column_values_to_not_be_null"
NULL = "expect_column_values_to_be_null"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"

CASES = [
    spec(BETWEEN, column="f", min_value=0.0, max_value=1.0),
    spec(BETWEEN, column="f", min_value=0.0),
    spec(BETWEEN, column="f", max_value=1.0),
    spec(BETWEEN, column="f", min_value=0.0, max_value=1.0, strict_min=True, strict_max=True),
    spec(BETWEEN, column="f", min_value=-1.0, max_value=1.0, mostly=0.6),
    spec(BETWEEN, column="f", min_value=-1.0, max_value=1.0, mostly=0.95),
    spec(BETWEEN, column="f32", min_value=0.1, max_value=2.0),
    spec(BETWEEN, column="i", min_value=0, max_value=3),
    spec(BETWEEN, column="i", min_value=0.5, max_value=3.5, strict_max=True),
    spec(BETWEEN, column="i32", min_value=0, max_value=3, mostly=0.5),
    spec(BETWEEN, column="allnan", min_value=0, max_value=3),
    spec(BETWEEN, column="allnan", min_value=0, max_value=3, mostly=0.9),
    spec(IN_SET, column="f", value_set=[1.0, 0.5]),
    spec(IN_SET, column="i", value_set=[0, 1, 2]),
    spec(IN_SET, column="i32", value_set=[0, 1.0, 2.5]),
    spec(IN_SET, column="s", value_set=["a", "b"]),
    spec(IN_SET, column="s", value_set=["a", ""], mostly=0.5),
    spec(IN_SET, column="i", value_set=[]),
    spec(NOT_IN_SET, column="f", value_set=[1.0]),
    spec(NOT_IN_SET, column="i", value_set=[1, 2], mostly=0.7),
    spec(NOT_IN_SET, column="s", value_set=["c", ""]),
    spec(NOT_NULL, column="f"),
    spec(NOT_NULL, column="i", mostly=0.5),
    spec(NOT_NULL, column="i32"),
    spec(NOT_NULL, column="s"),
    spec(NOT_NULL, column="b"),
    spec(NOT_NULL, column="allnan", mostly=0.1),
    spec(NULL, column="f"),
    spec(NULL, column="s", mostly=0.1),
    spec(NULL, column="b"),
    spec(NULL, column="allnan"),
    spec(PAIR, column_A="f", column_B="g"),
    spec(PAIR, column_A="f", column_B="g", or_equal=True),
    spec(PAIR, column_A="f", column_B="g", ignore_row_if="either_value_is_missing"),
    spec(PAIR, column_A="f", column_B="g", ignore_row_if="neither", or_equal=True),
    spec(PAIR, column_A="f", column_B="g", mostly=0.5, ignore_row_if="both_values_are_missing"),
]


def gx_result(expectation: BoundExpectation, chunk: Chunk, offset: int) -> dict[str, Any]:
    """Great Expectations' own result for one chunk."""
    suite = build_suite("t", [expectation], per_row=True)
    frame = chunk_frame(chunk, list(chunk), offset)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": SAMPLE_ROWS,
        "unexpected_index_column_names": INDEX,
    }
    with _quiet():
        outcome = batch.validate(suite, result_format=result_format)
    [result] = outcome.to_json_dict()["results"]
    assert not result["exception_info"]["raised_exception"], result["exception_info"]
    return dict(result)


def np_result(expectation: BoundExpectation, chunk: Chunk, offset: int) -> dict[str, Any]:
    dtypes = {name: column_of(v).values.dtype for name, v in chunk.items()}
    evaluator = evaluator_for(expectation.type, expectation.kwargs, dtypes)
    assert evaluator is not None, f"{expectation.type} has no evaluator for these columns"
    columns = {name: column_of(v) for name, v in chunk.items()}
    rows = np.arange(offset, offset + len(chunk[KEY]), dtype=np.int64)
    index = {KEY: columns[KEY], ROW_COLUMN: column_of(rows)}
    return evaluator.evaluate(columns, index, mostly_of(expectation.kwargs), SAMPLE_ROWS)


@contextmanager
def _quiet() -> Iterator[None]:
    """GE's per-chunk metrics warn on all-null chunks (a mean of nothing); not under test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def same(a: Any, b: Any) -> bool:
    """Equal as JSON sees them, NaN equal to NaN, dicts in any key order."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


COMPARED = (
    "element_count",
    "missing_count",
    "unexpected_count",
    "partial_unexpected_list",
    "partial_unexpected_index_list",
)


@pytest.mark.parametrize("expectation", CASES, ids=lambda e: f"{e.type}{dict(e.kwargs)}")
def test_numpy_evaluator_equals_great_expectations(expectation: BoundExpectation) -> None:
    for seed in (1, 2, 3):
        chunk = sample_chunk(seed)
        offset = seed * ROWS
        theirs, ours = gx_result(expectation, chunk, offset), np_result(expectation, chunk, offset)
        assert ours["success"] == theirs["success"], (seed, theirs["result"])
        for name in COMPARED:
            assert (name in ours["result"]) == (name in theirs["result"]), name
            if name in ours["result"]:
                assert same(ours["result"][name], theirs["result"][name]), (
                    seed,
                    name,
                    ours["result"][name],
                    theirs["result"][name],
                )


def test_every_supported_type_is_compared() -> None:
    assert {c.type for c in CASES} == SUPPORTED_TYPES


def run_both(expectations: list[BoundExpectation], chunks: list[Chunk]) -> tuple[Any, Any]:
    """The same suite summed over the same chunks: all through GE, and as firstlight runs it."""
    gx_run = SuiteRun("t", "a", expectations, INDEX, per_row=True)
    ours = SuiteRun("t", "a", expectations, INDEX, per_row=True)
    offset = 0
    for chunk in chunks:
        with _quiet():
            gx_run.validate(chunk_frame(chunk, list(chunk), offset))
        ours.validate_chunk(chunk, offset)
        offset += len(chunk[KEY])
    return gx_run.validation_result(), ours.validation_result()


def test_summed_results_over_chunks_equal_great_expectations() -> None:
    expectations = [*CASES, spec("expect_column_values_to_match_regex", column="s", regex="^[ab]$")]
    theirs, ours = run_both(expectations, [sample_chunk(seed) for seed in range(4)])
    assert ours["statistics"] == theirs["statistics"]
    assert len(ours["results"]) == len(theirs["results"]) == len(expectations)
    for mine, gx in zip(ours["results"], theirs["results"], strict=True):
        assert mine["expectation_config"] == gx["expectation_config"]
        assert mine["success"] == gx["success"]
        assert same(json.loads(json.dumps(mine["result"])), json.loads(json.dumps(gx["result"]))), (
            mine["expectation_config"]
        )


def test_arguments_without_an_evaluator_leave_the_expectation_to_great_expectations() -> None:
    dtypes = {name: column_of(v).values.dtype for name, v in sample_chunk(1).items()}
    assert evaluator_for(BETWEEN, {"column": "s", "min_value": 0}, dtypes) is None  # strings
    assert evaluator_for(BETWEEN, {"column": "f", "min_value": {"$PARAMETER": "x"}}, dtypes) is None
    assert (
        evaluator_for(BETWEEN, {"column": "f", "min_value": 0, "row_condition": "x>1"}, dtypes)
        is None
    )
    assert evaluator_for(IN_SET, {"column": "s", "value_set": [1, 2]}, dtypes) is None
    assert evaluator_for(PAIR, {"column_A": "i", "column_B": "f"}, dtypes) is None  # nullable int
    assert evaluator_for("expect_column_values_to_match_regex", {"column": "s"}, dtypes) is None


def test_an_expectation_without_evaluator_still_names_failing_rows(tmp_path: Path) -> None:
    """A catalogue suite mixing both: the regex runs through GE on every chunk, rows named."""
    mag = values()["mag"]
    mag[6] = 99.0
    path = write_fits(tmp_path / "s.fits", values(mag=mag))
    table = definition()
    suite = Suite(
        SuiteKind.CATALOGUE,
        "demo.catalogue",
        (
            _spec("expect_column_values_to_be_between", column="mag", max_value=30.0),
            _spec("expect_column_values_to_match_regex", column="source_id", regex="^10[0-5]$"),
        ),
        ("test",),
    )
    results = tmp_path / "results"
    findings = check_catalogue_suite(
        path, "cat.fits", FileFormat.FITS, table, suite, chunk_rows=3, results_dir=results
    )
    by_check = {f.check: f for f in findings}
    regex = by_check["expectation:expect_column_values_to_match_regex"]
    assert (regex.failing_count, regex.sample_rows) == (2, (6, 7))
    between = by_check["expectation:expect_column_values_to_be_between"]
    assert (between.failing_count, between.sample_rows) == (1, (6,))
    assert "source_id 106" in (between.observed or "")
    [written] = results.iterdir()
    stats = json.loads(written.read_text())["statistics"]
    assert stats["unsuccessful_expectations"] == 2


def _spec(type_: str, **kwargs: Any) -> Any:
    from firstlight.checks.suites import ExpectationSpec

    return ExpectationSpec(type=type_, kwargs=kwargs)


def test_an_unknown_expectation_type_is_an_error_finding_not_a_pass(tmp_path: Path) -> None:
    path = write_fits(tmp_path / "s.fits", values())
    suite = Suite(
        SuiteKind.CATALOGUE,
        "demo.catalogue",
        (_spec("expect_column_values_to_be_prime", column="mag"),),
        ("validations/missions/demo/catalogue.json",),
    )
    [finding] = check_catalogue_suite(
        path, "cat.fits", FileFormat.FITS, definition(), suite, chunk_rows=3
    )
    assert finding.check == "expectation.suite"
    assert finding.severity == "error"
    assert "expect_column_values_to_be_prime" in finding.reason
