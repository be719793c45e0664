"""Column summaries, drift findings and the anomaly model: pure functions, table-driven."""

from __future__ import annotations

import numpy as np
import pytest

from firstlight.domain.anomaly import ISOLATION_FOREST, ROBUST_Z, AnomalyModel, evaluate, fit
from firstlight.domain.drift import DriftThresholds, MissionHistory, find_drift, psi_from_summaries
from firstlight.domain.features import DeliveryFeatures, TableFeatures
from firstlight.domain.profile import QUANTILE_LEVELS, ColumnProfiler, ColumnSummary


def _summary(values: np.ndarray) -> ColumnSummary:
    profiler = ColumnProfiler(sample_size=4096, seed=1)
    for chunk in np.array_split(values, 7):
        profiler.add({"x": chunk})
    return profiler.summaries()["x"]


def test_profiler_counts_every_row_and_samples_with_bounded_memory() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(10.0, 2.0, 50_000)
    masked = np.ma.masked_array(values, mask=rng.random(values.size) < 0.1)
    masked[:100] = np.nan  # NaN, distinct from null
    profiler = ColumnProfiler(sample_size=2000, seed=3)
    for chunk in np.array_split(masked, 13):
        profiler.add({"x": chunk, "name": np.array(["a"] * chunk.size)})
    s = profiler.summaries()["x"]
    assert s.count == 50_000 and profiler.sample_of("x").size == 2000
    assert s.null_fraction == pytest.approx(0.1, abs=0.01)
    assert s.nan_fraction == pytest.approx(100 * 0.9 / 50_000, abs=5e-4)
    assert s.minimum == pytest.approx(float(np.nanmin(values[~masked.mask][100:])), abs=1.0)
    median = s.quantiles[QUANTILE_LEVELS.index(0.5)]
    assert median == pytest.approx(10.0, abs=0.2)
    assert profiler.summaries()["name"].quantiles == []  # strings: counts only


@pytest.mark.parametrize(
    ("shift", "scale", "drifts"),
    [
        (0.0, 1.0, False),
        (0.05, 1.0, False),
        (0.5, 1.0, True),
        (0.0, 1.6, True),
        (-1.0, 1.0, True),
    ],
)
def test_psi_from_summaries_sees_shifts_and_spread(
    shift: float, scale: float, drifts: bool
) -> None:
    rng = np.random.default_rng(42)
    ref = _summary(rng.normal(0.0, 1.0, 3000))
    cur = _summary(rng.normal(shift, scale, 3000))
    psi = psi_from_summaries(ref, cur)
    assert psi is not None
    assert (psi >= DriftThresholds().psi) is drifts, psi


def _features(
    *,
    rows: int = 1500,
    columns: tuple[str, ...] = ("ra", "mag", "bp_rp"),
    mag_shift: float = 0.0,
    cells: dict[str, int] | None = None,
    instruments: tuple[str, ...] = ("IMAGER",),
    seed: int = 0,
) -> DeliveryFeatures:
    rng = np.random.default_rng(seed)
    summaries = {
        "ra": _summary(rng.uniform(149.0, 151.0, rows)),
        "mag": _summary(rng.normal(19.0 + mag_shift, 1.5, rows)),
        "bp_rp": _summary(rng.normal(1.1, 0.4, rows)),
        "bp_rp_colour": _summary(rng.normal(1.1, 0.4, rows)),
    }
    return DeliveryFeatures(
        mission="m",
        files=2,
        bytes=rows * 60,
        product_types={"catalogue": 1, "image": 1},
        instruments=list(instruments),
        tables={"sources": TableFeatures(rows, {c: summaries[c] for c in columns}, key=None)},
        sky_cells=cells if cells is not None else {"100": rows},
    )


HISTORY = MissionHistory(
    frozenset({"100"}), frozenset({"IMAGER"}), frozenset({"catalogue", "image"})
)


@pytest.mark.parametrize(
    ("current", "kinds"),
    [
        (_features(seed=1), []),
        (_features(seed=2, rows=1900), []),
        (_features(seed=3, mag_shift=0.8), ["column_shift:sources.mag"]),
        (
            _features(seed=4, columns=("ra", "mag", "bp_rp_colour")),
            ["column_missing:sources.bp_rp", "column_added:sources.bp_rp_colour"],
        ),
        (_features(seed=5, rows=15_000), ["row_count:sources"]),
        (_features(seed=6, rows=400), ["row_count:sources"]),
        (_features(seed=7, cells={"100": 10, "999": 1490}), ["footprint:positions"]),
        (_features(seed=8, instruments=("IMAGER", "NEWCAM")), ["new_instrument:NEWCAM"]),
    ],
)
def test_drift_findings_name_the_field(current: DeliveryFeatures, kinds: list[str]) -> None:
    reference = _features()
    report = find_drift(current, reference, HISTORY, DriftThresholds())
    found = [f"{f.kind}:{f.field}" for f in report.findings]
    assert sorted(found) == sorted(kinds)
    for finding in report.findings:
        assert finding.field.split(".")[-1] in finding.reason or finding.kind == "footprint"
        assert "matter" in finding.reason or ":" in finding.reason


def test_no_reference_means_no_column_drift_only_history_checks() -> None:
    report = find_drift(_features(mag_shift=3.0), None, HISTORY, DriftThresholds())
    assert report.findings == []


def _normal_vectors(n: int, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [
        [3.2 + rng.normal(0, 0.05), 5.0 + rng.normal(0, 0.05), 2.0, 10.0, 0.05, 0.0,
         abs(rng.normal(0, 0.01)), 0.0]
        for _ in range(n)
    ]  # fmt: skip


@pytest.mark.parametrize(("n", "kind"), [(15, ROBUST_Z), (80, ISOLATION_FOREST)])
def test_model_holds_a_tenfold_delivery_and_survives_json(n: int, kind: str) -> None:
    names = [f"f{i}" for i in range(8)]
    model = fit(_normal_vectors(n), names, forest_min_samples=50, margin=0.05)
    assert model.kind == kind
    tenfold = _normal_vectors(1, seed=9)[0]
    tenfold[0] += 1.0
    tenfold[1] += 1.0
    fresh = _normal_vectors(20, seed=5)
    result = evaluate(model, [*fresh, tenfold], [False] * 20 + [True])
    assert result.detected == 1 and result.false_positives <= 1
    again = AnomalyModel.from_json(model.to_json())
    assert again.scores([*fresh, tenfold]) == pytest.approx(model.scores([*fresh, tenfold]))
    assert again.top_features(tenfold)[0][0] in {"f0", "f1"}
