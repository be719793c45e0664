"""Compact distribution summaries of catalogue columns, built while rows stream by.

Belongs here: ``ColumnProfiler`` (one per catalogue: exact counts, nulls, NaNs,
min and max over every row, plus one bottom-k random sample of rows shared by
all columns, so memory stays at ``sample_size`` values per column whatever the
table's size), the ``ColumnSummary`` it yields (quantiles from the sample), and
the positions sample used for the sky footprint. Pure numpy; no storage.

A bottom-k sample (each row draws a random key, the ``k`` smallest keys are
kept) is an exact uniform sample without replacement, merged chunk by chunk
with one ``argpartition``; sharing it across columns keeps (ra, dec) pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Quantile levels kept per column: enough points to interpolate a CDF for drift scores.
QUANTILE_LEVELS = (0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9,
                   0.95, 0.99)  # fmt: skip


@dataclass(frozen=True)
class ColumnSummary:
    """What the gate knows of one column: counts over all rows, quantiles of a sample."""

    count: int
    null_fraction: float
    nan_fraction: float
    minimum: float | None
    maximum: float | None
    quantiles: list[float]  # at QUANTILE_LEVELS, empty for non-numeric or empty columns

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnSummary:
        return cls(
            count=int(data["count"]),
            null_fraction=float(data["null_fraction"]),
            nan_fraction=float(data["nan_fraction"]),
            minimum=None if data.get("minimum") is None else float(data["minimum"]),
            maximum=None if data.get("maximum") is None else float(data["maximum"]),
            quantiles=[float(q) for q in data.get("quantiles", [])],
        )


@dataclass
class _Counts:
    nulls: int = 0
    nans: int = 0
    minimum: float | None = None
    maximum: float | None = None


class ColumnProfiler:
    """Feed it chunks (column name -> array, masked where null); ask for summaries."""

    def __init__(self, sample_size: int = 4096, seed: int = 0) -> None:
        if sample_size <= 0:
            raise ValueError("sample_size must be > 0")
        self._k = sample_size
        self._rng = np.random.default_rng(seed)
        self._rows = 0
        self._counts: dict[str, _Counts] = {}
        self._keys: NDArray[np.float64] = np.empty(0)
        self._sample: dict[str, NDArray[np.float64]] = {}

    @property
    def rows(self) -> int:
        return self._rows

    def add(self, chunk: dict[str, NDArray[Any]]) -> None:
        if not chunk:
            return
        n = len(next(iter(chunk.values())))
        numeric = {name: _as_float(values) for name, values in chunk.items()}
        for name, values in chunk.items():
            counts = self._counts.setdefault(name, _Counts())
            nulls = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
            counts.nulls += int(nulls.sum()) if nulls is not None else 0
            floats = numeric[name]
            if floats is None:
                continue
            nan = np.isnan(floats)
            counts.nans += int(nan.sum()) - (int(nulls.sum()) if nulls is not None else 0)
            finite = floats[np.isfinite(floats)]
            if finite.size:
                lo, hi = float(finite.min()), float(finite.max())
                counts.minimum = lo if counts.minimum is None else min(counts.minimum, lo)
                counts.maximum = hi if counts.maximum is None else max(counts.maximum, hi)
        self._rows += n
        # Every chunk has the table's columns, so samples stay aligned with the keys.
        keys = np.concatenate([self._keys, self._rng.random(n)])
        samples = {
            name: np.concatenate([self._sample.get(name, np.empty(0)), floats])
            for name, floats in numeric.items()
            if floats is not None
        }
        if keys.size > self._k:
            keep = np.argpartition(keys, self._k)[: self._k]
            keys = keys[keep]
            samples = {name: values[keep] for name, values in samples.items()}
        self._keys = keys
        self._sample = samples

    def summaries(self) -> dict[str, ColumnSummary]:
        rows = max(self._rows, 1)
        result: dict[str, ColumnSummary] = {}
        for name, counts in self._counts.items():
            sample = self._sample.get(name)
            finite = sample[np.isfinite(sample)] if sample is not None else np.empty(0)
            quantiles = (
                [float(q) for q in np.quantile(finite, QUANTILE_LEVELS)] if finite.size else []
            )
            result[name] = ColumnSummary(
                count=self._rows,
                null_fraction=counts.nulls / rows,
                nan_fraction=max(counts.nans, 0) / rows,
                minimum=counts.minimum,
                maximum=counts.maximum,
                quantiles=quantiles,
            )
        return result

    def sample_of(self, name: str) -> NDArray[np.float64]:
        """The sampled values of one numeric column (NaN where null), in sample order."""
        return self._sample.get(name, np.empty(0))


def _as_float(values: NDArray[Any]) -> NDArray[np.float64] | None:
    """Numeric (not boolean) values as float64 with NaN where null; None otherwise."""
    dtype = values.dtype
    if dtype.kind not in "iuf":
        return None
    if np.ma.isMaskedArray(values):
        return np.asarray(np.ma.filled(values.astype(np.float64), np.nan), dtype=np.float64)
    return np.asarray(values, dtype=np.float64)
