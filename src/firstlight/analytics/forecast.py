"""Time-to-data forecast at arrival: how long until this delivery is public?

Belongs here: ``forecast_time_to_data`` (size features from the manifest: bytes,
files, catalogue bytes; a least-squares line fitted on the ledger's released
deliveries, or their median while there are fewer than ``_MIN_FIT`` of them;
recorded in ``ttd_forecasts``) and ``forecast_residuals`` (prediction against the
actual time-to-data, for ``firstlight stats``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firstlight.checks.verify import read_manifest
from firstlight.domain.ledger import DeliveryState
from firstlight.domain.manifest import ManifestError
from firstlight.services.context import Context
from firstlight.services.ticket import Ticket
from firstlight.storage.gate_records import ForecastRecord, GateRecords

_MIN_FIT = 8  # released deliveries before a line is fitted
_INPUTS = ("mib", "files", "catalogue_mib")


@dataclass(frozen=True)
class Forecast:
    predicted_seconds: float | None
    model: str  # none | median (n) | linear (n)
    inputs: dict[str, float]

    def describe(self) -> str:
        if self.predicted_seconds is None:
            return "no forecast yet (no released delivery to learn from)"
        return f"about {self.predicted_seconds:.1f} s to data ({self.model})"


def _inputs(ticket: Ticket) -> dict[str, float]:
    try:
        manifest, _ = read_manifest(ticket.path)
    except (ManifestError, OSError):
        return {}
    return {
        "mib": sum(f.size for f in manifest.files) / 2**20,
        "files": float(len(manifest.files)),
        "catalogue_mib": sum(f.size for f in manifest.files if f.table is not None) / 2**20,
    }


def _history(ctx: Context, records: GateRecords) -> list[tuple[dict[str, float], float]]:
    forecasts = records.forecasts()
    out = []
    for entry in ctx.archive.ledger.entries():
        if entry.state is not DeliveryState.RELEASED or entry.finished_at is None:
            continue
        made = forecasts.get((entry.delivery_pk, entry.attempts))
        if made is None or not made.inputs:
            continue
        out.append((made.inputs, (entry.finished_at - entry.arrived_at).total_seconds()))
    return out


def predict(history: list[tuple[dict[str, float], float]], inputs: dict[str, float]) -> Forecast:
    """Pure: the forecast for ``inputs`` from (inputs, actual seconds) pairs."""
    if not inputs or not history:
        return Forecast(None, "none", inputs)
    actual = np.asarray([seconds for _, seconds in history])
    if len(history) < _MIN_FIT:
        return Forecast(float(np.median(actual)), f"median ({len(history)})", inputs)
    x = np.asarray([[1.0, *(h.get(k, 0.0) for k in _INPUTS)] for h, _ in history])
    coef, *_ = np.linalg.lstsq(x, actual, rcond=None)
    row = np.asarray([1.0, *(inputs.get(k, 0.0) for k in _INPUTS)])
    # Never below the fastest delivery seen: a line can dip under zero for tiny inputs.
    value = max(float(row @ coef), float(actual.min()))
    return Forecast(value, f"linear ({len(history)})", inputs)


def forecast_time_to_data(ctx: Context, ticket: Ticket) -> Forecast:
    records = GateRecords(ctx.archive.engine)
    forecast = predict(_history(ctx, records), _inputs(ticket))
    records.save_forecast(
        ForecastRecord(
            ticket.delivery_pk,
            ticket.attempt,
            forecast.predicted_seconds,
            forecast.model,
            forecast.inputs,
        )
    )
    return forecast


@dataclass(frozen=True)
class ForecastResidual:
    """A forecast against what happened (a record, not an exception)."""

    delivery_pk: int
    predicted_seconds: float
    actual_seconds: float

    @property
    def error_seconds(self) -> float:
        return self.predicted_seconds - self.actual_seconds


def forecast_residuals(ctx: Context) -> list[ForecastResidual]:
    """Predicted against actual time-to-data, per released delivery that had a forecast."""
    forecasts = GateRecords(ctx.archive.engine).forecasts()
    out = []
    for entry in ctx.archive.ledger.entries():
        made = forecasts.get((entry.delivery_pk, entry.attempts))
        if (
            made is None
            or made.predicted_seconds is None
            or entry.state is not DeliveryState.RELEASED
            or entry.finished_at is None
        ):
            continue
        actual = (entry.finished_at - entry.arrived_at).total_seconds()
        out.append(ForecastResidual(entry.delivery_pk, made.predicted_seconds, actual))
    return out
