"""Duplicate keys found exactly, in memory or spilled to disk, and memory that stays flat."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firstlight.checks.duplicate_keys import SAMPLE, DuplicateKeys, Duplicates


def naive(keys: np.ndarray) -> Duplicates:
    """Every key in memory at once: what the streaming finder must equal."""
    values, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    involved = np.flatnonzero(counts[inverse] > 1)
    repeated = values[counts > 1]
    return Duplicates(
        int(involved.size),
        int(repeated.size),
        tuple(int(r) for r in involved[:SAMPLE]),
        tuple(k.item() for k in repeated[:SAMPLE]),
    )


def streamed(keys: np.ndarray, chunk: int, partition_rows: int, expected: int | None) -> Duplicates:
    finder = DuplicateKeys(expected, partition_rows=partition_rows)
    with finder:
        for start in range(0, keys.size, chunk):
            part = keys[start : start + chunk]
            finder.add(part, np.arange(start, start + part.size, dtype=np.int64))
        return finder.duplicates()


def keys_of(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if kind == "int":
        return rng.integers(0, 5 * n, n).astype(np.int64)
    if kind == "float":
        values = rng.integers(-n, n, n).astype(np.float64) / 4
        values[values == 0] = -0.0  # equal to 0.0, another bit pattern
        values[::97] = 0.0
        return values
    if kind == "string":
        return np.array([f"s{'x' * (i % 7)}{i}" for i in rng.integers(0, 3 * n, n)])
    if kind == "sorted":
        return np.arange(n, dtype=np.int64) * 3
    if kind == "sorted-then-repeat":
        keys = np.arange(n, dtype=np.int64)
        keys[-1] = 5  # the last row repeats an early key, long after it was spilled
        return keys
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["int", "float", "string", "sorted", "sorted-then-repeat"])
@pytest.mark.parametrize(
    ("partition_rows", "expected"), [(10_000, 2_000), (300, 2_000), (300, None)]
)
def test_duplicates_equal_an_in_memory_count(
    kind: str, partition_rows: int, expected: int | None
) -> None:
    rng = np.random.default_rng(7)
    keys = keys_of(kind, rng, 2_000)
    found = streamed(keys, 170, partition_rows, expected)
    assert found == naive(keys)
    if kind.startswith("sorted"):
        assert found.rows == (0 if kind == "sorted" else 2)


def test_string_keys_hash_alike_whatever_their_chunk_width() -> None:
    keys = np.array(["a", "bb", "a", "cccccccc", "bb"])
    found = streamed(keys, 2, 1, None)  # every chunk a different width, every key spilled
    assert found == Duplicates(4, 2, (0, 1, 2, 4), ("a", "bb"))


def test_spill_is_removed_when_closed(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    keys = np.random.default_rng(1).integers(0, 100, 1_000)
    found = streamed(keys, 100, 50, 1_000)
    assert found.rows > 0
    assert list(tmp_path.iterdir()) == []


def test_memory_stays_flat_in_rows() -> None:
    """Two million distinct keys through a finder holding 100,000 at once: peak far below
    what keeping the keys would take (16 MB for them and their rows alone)."""
    rows, chunk = 2_000_000, 100_000
    tracemalloc.start()
    try:
        finder = DuplicateKeys(rows, partition_rows=100_000)
        with finder:
            rng = np.random.default_rng(3)
            for start in range(0, rows, chunk):
                keys = rng.permutation(chunk).astype(np.int64) * (rows // chunk) + start // chunk
                finder.add(keys, np.arange(start, start + chunk, dtype=np.int64))
            assert finder.duplicates().rows == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB"
