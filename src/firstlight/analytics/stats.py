"""Time-to-data from the ledger: per delivery, per stage, and in summary.

Time-to-data runs from the delivery's admission (its arrival as the ledger
saw it) to the end of the promotion that made it public. Where a forecast was
made at arrival (``services.forecast``), its error is tracked beside it.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from firstlight.domain.ledger import DeliveryState
from firstlight.storage.ledger import Ledger


@dataclass(frozen=True)
class DeliveryStats:
    mission: str
    delivery_id: str
    state: str
    attempts: int
    release_key: str | None
    time_to_data_seconds: float | None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    forecast_seconds: float | None = None  # predicted at arrival

    @property
    def forecast_error_seconds(self) -> float | None:
        """Predicted minus actual time-to-data (positive: it was faster than forecast)."""
        if self.forecast_seconds is None or self.time_to_data_seconds is None:
            return None
        return self.forecast_seconds - self.time_to_data_seconds


@dataclass(frozen=True)
class Summary:
    deliveries: int
    by_state: dict[str, int]
    time_to_data_p50: float | None
    time_to_data_p90: float | None
    stage_mean_seconds: dict[str, float]
    per_delivery: list[DeliveryStats]
    forecasts_compared: int = 0
    forecast_mean_abs_error_seconds: float | None = None
    forecast_mean_error_seconds: float | None = None  # bias: positive, forecasts too long

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def delivery_stats(
    ledger: Ledger,
    mission: str | None = None,
    forecasts: dict[tuple[int, int], float | None] | None = None,
) -> Summary:
    """``forecasts``: predicted time-to-data per (delivery, attempt), from the gate's records."""
    forecasts = forecasts or {}
    rows: list[DeliveryStats] = []
    for entry in ledger.entries(mission):
        stages: dict[str, float] = {}
        for st in ledger.stages(entry.delivery_pk):
            if st.attempt == entry.attempts and st.outcome != "skipped":
                stages[st.stage.value] = stages.get(st.stage.value, 0.0) + st.seconds
        ttd = None
        if entry.state is DeliveryState.RELEASED and entry.finished_at is not None:
            ttd = (entry.finished_at - entry.arrived_at).total_seconds()
        rows.append(
            DeliveryStats(
                mission=entry.mission,
                delivery_id=entry.delivery_id,
                state=entry.state.value,
                attempts=entry.attempts,
                release_key=entry.release_key,
                time_to_data_seconds=ttd,
                stage_seconds=stages,
                forecast_seconds=forecasts.get((entry.delivery_pk, entry.attempts)),
            )
        )
    released = sorted(r.time_to_data_seconds for r in rows if r.time_to_data_seconds is not None)
    by_stage: dict[str, list[float]] = {}
    for r in rows:
        for stage, seconds in r.stage_seconds.items():
            by_stage.setdefault(stage, []).append(seconds)
    by_state: dict[str, int] = {}
    for r in rows:
        by_state[r.state] = by_state.get(r.state, 0) + 1
    errors = [r.forecast_error_seconds for r in rows if r.forecast_error_seconds is not None]
    return Summary(
        deliveries=len(rows),
        by_state=by_state,
        time_to_data_p50=_quantile(released, 0.5),
        time_to_data_p90=_quantile(released, 0.9),
        stage_mean_seconds={k: statistics.fmean(v) for k, v in by_stage.items()},
        per_delivery=rows,
        forecasts_compared=len(errors),
        forecast_mean_abs_error_seconds=statistics.fmean(map(abs, errors)) if errors else None,
        forecast_mean_error_seconds=statistics.fmean(errors) if errors else None,
    )


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]
