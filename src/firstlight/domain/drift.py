"""Drift of a delivery against its mission's current release, from summaries alone.

Belongs here: ``DriftThresholds``, ``DriftFinding`` and ``find_drift`` (pure
functions over ``DeliveryFeatures``): per column a population-stability index
computed from the two quantile summaries, columns added or missing (a renamed
column is one of each), null fractions that jump, row-count change, positions
outside the mission's past footprint, instruments and product types never seen
before. Every finding names its field, says how far, and why it matters.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from firstlight.domain.features import DeliveryFeatures
from firstlight.domain.profile import QUANTILE_LEVELS, ColumnSummary

_EPS = 1e-4  # floor of a bin's share, so an empty bin scores high but finite


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.25  # >= 0.25 is the usual "significant shift" of a PSI
    row_ratio: float = 3.0  # rows x3 or /3 against the reference
    null_fraction: float = 0.1  # absolute change of a column's null fraction
    footprint_outside: float = 0.1  # share of positions in cells never seen before

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class DriftFinding:
    kind: str  # column_shift | column_missing | column_added | table_missing | table_added |
    # null_fraction | row_count | footprint | new_instrument | new_product_type
    field: str
    score: float
    threshold: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DriftFinding:
        return cls(
            kind=str(data["kind"]),
            field=str(data["field"]),
            score=float(data["score"]),
            threshold=float(data["threshold"]),
            reason=str(data["reason"]),
        )


@dataclass(frozen=True)
class MissionHistory:
    """What the mission's released deliveries have shown so far."""

    footprint: frozenset[str]  # sky cells
    instruments: frozenset[str]
    product_types: frozenset[str]


@dataclass(frozen=True)
class DriftReport:
    findings: list[DriftFinding]
    max_psi: float
    footprint_outside: float


def psi_from_summaries(reference: ColumnSummary, current: ColumnSummary) -> float | None:
    """Population-stability index of ``current`` in the reference's quantile bins.

    The reference's quantiles cut the line into bins whose expected shares are
    the gaps between quantile levels; the current column's share of each bin
    comes from its own quantiles, read as a piecewise-linear CDF between its
    minimum and maximum. None when either column has no numeric summary.
    """
    if not reference.quantiles or not current.quantiles:
        return None
    if current.minimum is None or current.maximum is None:
        return None
    edges = np.asarray(reference.quantiles)
    if np.unique(edges).size < 3:
        return None  # a (nearly) constant column: bins say nothing
    levels = np.asarray(QUANTILE_LEVELS)
    expected = np.diff(np.concatenate([[0.0], levels, [1.0]]))
    xp = np.concatenate([[current.minimum], current.quantiles, [current.maximum]])
    fp = np.concatenate([[0.0], levels, [1.0]])
    cdf = np.interp(edges, np.maximum.accumulate(xp), fp, left=0.0, right=1.0)
    actual = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    e = np.maximum(expected, _EPS)
    a = np.maximum(actual, _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def find_drift(  # noqa: PLR0912  (one branch per kind of drift reads best)
    current: DeliveryFeatures,
    reference: DeliveryFeatures | None,
    history: MissionHistory,
    thresholds: DriftThresholds,
) -> DriftReport:
    """Everything about ``current`` that differs from the mission's reference and past."""
    found: list[DriftFinding] = []
    max_psi = 0.0
    if reference is not None:
        for name, table in current.tables.items():
            ref = reference.tables.get(name)
            if ref is None:
                found.append(_table_added(name, current))
                continue
            found += _row_count(name, table.rows, ref.rows, thresholds)
            found += _columns(name, set(table.columns), set(ref.columns))
            for col, summary in table.columns.items():
                ref_col = ref.columns.get(col)
                if ref_col is None or col == table.key:
                    continue
                found += _nulls(name, col, summary, ref_col, thresholds)
                psi = psi_from_summaries(ref_col, summary)
                if psi is None:
                    continue
                max_psi = max(max_psi, psi)
                if psi >= thresholds.psi:
                    found.append(_shift(name, col, psi, ref_col, summary, thresholds))
        for name in sorted(set(reference.tables) - set(current.tables)):
            found.append(
                DriftFinding(
                    "table_missing",
                    name,
                    1.0,
                    0.0,
                    f"catalogue {name} is in the current release but not in this delivery: "
                    "queries on it would find the table gone",
                )
            )
    outside = _outside_share(current, history)
    if history.footprint and outside >= thresholds.footprint_outside:
        found.append(
            DriftFinding(
                "footprint",
                "positions",
                outside,
                thresholds.footprint_outside,
                f"{outside:.0%} of sampled positions fall in sky cells (HEALPix order 5) where "
                f"the mission never observed before (its footprint: {len(history.footprint)} "
                "cells): a coordinate-frame or pointing error, or a new survey area",
            )
        )
    if history.instruments:
        for inst in sorted(set(current.instruments) - history.instruments):
            found.append(
                DriftFinding(
                    "new_instrument",
                    inst,
                    1.0,
                    0.0,
                    f"instrument {inst!r} never delivered for this mission before (seen: "
                    f"{', '.join(sorted(history.instruments))}): a new instrument mode or "
                    "a mislabelled product",
                )
            )
    if history.product_types:
        for ptype in sorted(set(current.product_types) - history.product_types):
            found.append(
                DriftFinding(
                    "new_product_type",
                    ptype,
                    1.0,
                    0.0,
                    f"product type {ptype!r} never delivered for this mission before: "
                    "its metadata and queries have not been seen by anyone yet",
                )
            )
    return DriftReport(found, max_psi, outside)


def _outside_share(current: DeliveryFeatures, history: MissionHistory) -> float:
    total = sum(current.sky_cells.values())
    if not total or not history.footprint:
        return 0.0
    outside = sum(n for cell, n in current.sky_cells.items() if cell not in history.footprint)
    return outside / total


def _table_added(name: str, current: DeliveryFeatures) -> DriftFinding:
    return DriftFinding(
        "table_added",
        name,
        1.0,
        0.0,
        f"catalogue {name} ({current.tables[name].rows:,} rows) is new for this mission: "
        "nothing to compare it with",
    )


def _row_count(name: str, rows: int, ref_rows: int, th: DriftThresholds) -> list[DriftFinding]:
    ratio = (rows + 1) / (ref_rows + 1)
    if 1 / th.row_ratio < ratio < th.row_ratio:
        return []
    return [
        DriftFinding(
            "row_count",
            name,
            ratio,
            th.row_ratio,
            f"{name}: {rows:,} rows against {ref_rows:,} in the current release "
            f"(x{ratio:.2g}, limit x{th.row_ratio:g} either way): a truncated or "
            "duplicated delivery changes every count scientists make",
        )
    ]


def _columns(name: str, cols: set[str], ref_cols: set[str]) -> list[DriftFinding]:
    found = [
        DriftFinding(
            "column_missing",
            f"{name}.{col}",
            1.0,
            0.0,
            f"{name}.{col} is in the current release but missing here: "
            "queries naming it would fail (renamed? then see the added column)",
        )
        for col in sorted(ref_cols - cols)
    ]
    found += [
        DriftFinding(
            "column_added",
            f"{name}.{col}",
            1.0,
            0.0,
            f"{name}.{col} is new against the current release: the table's schema changed",
        )
        for col in sorted(cols - ref_cols)
    ]
    return found


def _nulls(
    name: str, col: str, cur: ColumnSummary, ref: ColumnSummary, th: DriftThresholds
) -> list[DriftFinding]:
    now = cur.null_fraction + cur.nan_fraction
    before = ref.null_fraction + ref.nan_fraction
    change = abs(now - before)
    if change < th.null_fraction:
        return []
    return [
        DriftFinding(
            "null_fraction",
            f"{name}.{col}",
            change,
            th.null_fraction,
            f"{name}.{col}: {now:.1%} null or NaN against {before:.1%} in the current "
            "release: values lost (or newly filled) on the producer's side",
        )
    ]


def _shift(  # noqa: PLR0917  (a private formatter of one finding)
    name: str,
    col: str,
    psi: float,
    ref: ColumnSummary,
    cur: ColumnSummary,
    th: DriftThresholds,
) -> DriftFinding:
    mid = QUANTILE_LEVELS.index(0.5)
    lo, hi = QUANTILE_LEVELS.index(0.25), QUANTILE_LEVELS.index(0.75)
    iqr = ref.quantiles[hi] - ref.quantiles[lo]
    shift = cur.quantiles[mid] - ref.quantiles[mid]
    scaled = f", {shift / iqr:+.2f} IQR" if iqr > 0 and math.isfinite(iqr) else ""
    return DriftFinding(
        "column_shift",
        f"{name}.{col}",
        psi,
        th.psi,
        f"{name}.{col}: distribution shifted (PSI {psi:.2f} >= {th.psi:g}; median "
        f"{ref.quantiles[mid]:.4g} -> {cur.quantiles[mid]:.4g}{scaled}): a calibration, "
        "unit or selection change would silently change every result using it",
    )
