"""What operators watch: time-to-data over time, forecasts, quarantine, held releases.

Read from the ledger (``deliveries``, ``stage_runs``, ``ttd_forecasts``,
``gate_decisions``) for the latest ``limit`` deliveries only, in four bounded
queries. Time-to-data runs from the delivery's arrival as the ledger saw it
to the end of its promotion (``services.stats`` counts it the same way); the
step breakdown is the latest attempt's stage durations.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from firstlight.config import Settings
from firstlight.storage.schema import deliveries, gate_decisions, stage_runs, ttd_forecasts

MAX_QUARANTINE = 50
MAX_HELD = 100
RELEASED = "released"
STOPPED = ("quarantined", "rejected")
# Where the query service serves a delivery's latest Data Docs (query/service/pages.py).
DATA_DOCS_ROUTE = "/operations/data-docs/{delivery_pk}/"


def data_docs_url(settings: Settings, delivery_pk: int) -> str:
    """The http URL of a delivery's Data Docs (browsers refuse file:// links from pages)."""
    return settings.query_url + DATA_DOCS_ROUTE.format(delivery_pk=delivery_pk) + "index.html"


@dataclass(frozen=True)
class DeliveryTiming:
    delivery_pk: int
    mission: str
    delivery_id: str
    state: str
    attempts: int
    arrived_at: datetime
    finished_at: datetime | None
    time_to_data_seconds: float | None  # released ones only
    stage_seconds: dict[str, float]  # latest attempt, by step
    forecast_seconds: float | None  # predicted at arrival, latest attempt


@dataclass(frozen=True)
class WeekStats:
    week: str  # ISO week, e.g. 2026-W49
    starts: datetime
    released: int
    p50_seconds: float | None
    p90_seconds: float | None
    forecast_mean_abs_error_seconds: float | None


@dataclass(frozen=True)
class QuarantineEntry:
    delivery_pk: int
    mission: str
    delivery_id: str
    state: str
    reason: str | None
    finished_at: datetime | None
    has_report: bool
    has_data_docs: bool


@dataclass(frozen=True)
class HeldRelease:
    delivery_pk: int
    mission: str
    delivery_id: str
    attempt: int
    held_at: datetime | None
    reason: str | None
    anomaly_score: float | None
    anomaly_threshold: float | None
    flow_run_id: str | None  # the paused run (the run's id is the ledger's claim token)


@dataclass(frozen=True)
class Operations:
    window: int  # deliveries read (the latest)
    by_state: dict[str, int]
    p50_seconds: float | None
    p90_seconds: float | None
    deliveries: list[DeliveryTiming]  # oldest first
    weeks: list[WeekStats]
    quarantine: list[QuarantineEntry]
    held: list[HeldRelease]


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(sorted(values), n=100, method="inclusive")[round(q * 100) - 1]


def operations(conn: Connection, *, limit: int) -> Operations:
    latest = (
        select(deliveries.c.id).order_by(deliveries.c.arrived_at.desc()).limit(limit).subquery()
    )
    rows = list(
        conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.mission,
                deliveries.c.delivery_id,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.arrived_at,
                deliveries.c.finished_at,
            )
            .where(deliveries.c.id.in_(select(latest.c.id)))
            .order_by(deliveries.c.arrived_at)
        )
    )
    attempts = {int(r.id): int(r.attempts) for r in rows}
    stages: dict[int, dict[str, float]] = {}
    for s in conn.execute(
        select(
            stage_runs.c.delivery,
            stage_runs.c.attempt,
            stage_runs.c.stage,
            stage_runs.c.outcome,
            stage_runs.c.started_at,
            stage_runs.c.ended_at,
        ).where(stage_runs.c.delivery.in_(select(latest.c.id)))
    ):
        pk = int(s.delivery)
        if s.attempt != attempts.get(pk) or s.outcome == "skipped":
            continue
        per = stages.setdefault(pk, {})
        per[s.stage] = per.get(s.stage, 0.0) + (s.ended_at - s.started_at).total_seconds()
    forecasts = {
        (int(f.delivery), int(f.attempt)): f.predicted_seconds
        for f in conn.execute(
            select(
                ttd_forecasts.c.delivery, ttd_forecasts.c.attempt, ttd_forecasts.c.predicted_seconds
            ).where(ttd_forecasts.c.delivery.in_(select(latest.c.id)))
        )
    }
    timings = [
        DeliveryTiming(
            delivery_pk=int(r.id),
            mission=str(r.mission),
            delivery_id=str(r.delivery_id),
            state=str(r.state),
            attempts=int(r.attempts),
            arrived_at=r.arrived_at,
            finished_at=r.finished_at,
            time_to_data_seconds=(
                (r.finished_at - r.arrived_at).total_seconds()
                if r.state == RELEASED and r.finished_at is not None
                else None
            ),
            stage_seconds=stages.get(int(r.id), {}),
            forecast_seconds=forecasts.get((int(r.id), int(r.attempts))),
        )
        for r in rows
    ]
    by_state: dict[str, int] = {}
    for t in timings:
        by_state[t.state] = by_state.get(t.state, 0) + 1
    released = [t.time_to_data_seconds for t in timings if t.time_to_data_seconds is not None]
    return Operations(
        window=limit,
        by_state=by_state,
        p50_seconds=quantile(released, 0.5),
        p90_seconds=quantile(released, 0.9),
        deliveries=timings,
        weeks=weekly(timings),
        quarantine=_quarantine(conn),
        held=_held(conn),
    )


def weekly(timings: list[DeliveryTiming]) -> list[WeekStats]:
    """p50/p90 of time-to-data per ISO week of arrival, and the forecast's mean error."""
    weeks: dict[tuple[int, int], list[DeliveryTiming]] = {}
    for t in timings:
        if t.time_to_data_seconds is None:
            continue
        year, week, _ = t.arrived_at.isocalendar()
        weeks.setdefault((year, week), []).append(t)
    out = []
    for (year, week), found in sorted(weeks.items()):
        ttd = [t.time_to_data_seconds for t in found if t.time_to_data_seconds is not None]
        errors = [
            abs(t.forecast_seconds - t.time_to_data_seconds)
            for t in found
            if t.forecast_seconds is not None and t.time_to_data_seconds is not None
        ]
        first = found[0].arrived_at
        monday = (first - timedelta(days=first.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        out.append(
            WeekStats(
                week=f"{year}-W{week:02d}",
                starts=monday,
                released=len(ttd),
                p50_seconds=quantile(ttd, 0.5),
                p90_seconds=quantile(ttd, 0.9),
                forecast_mean_abs_error_seconds=statistics.fmean(errors) if errors else None,
            )
        )
    return out


def _quarantine(conn: Connection) -> list[QuarantineEntry]:
    return [
        QuarantineEntry(
            delivery_pk=int(r.id),
            mission=str(r.mission),
            delivery_id=str(r.delivery_id),
            state=str(r.state),
            reason=r.reason,
            finished_at=r.finished_at,
            has_report=bool(r.has_report),
            has_data_docs=r.data_docs is not None,
        )
        for r in conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.mission,
                deliveries.c.delivery_id,
                deliveries.c.state,
                deliveries.c.reason,
                deliveries.c.finished_at,
                deliveries.c.report.is_not(None).label("has_report"),
                deliveries.c.data_docs,
            )
            .where(deliveries.c.state.in_(STOPPED))
            .order_by(deliveries.c.finished_at.desc())
            .limit(MAX_QUARANTINE)
        )
    ]


def _held(conn: Connection) -> list[HeldRelease]:
    return [
        HeldRelease(
            delivery_pk=int(r.delivery),
            mission=str(r.mission),
            delivery_id=str(r.delivery_id),
            attempt=int(r.attempt),
            held_at=r.held_at,
            reason=r.reason,
            anomaly_score=r.anomaly_score,
            anomaly_threshold=r.anomaly_threshold,
            flow_run_id=r.claim_token,
        )
        for r in conn.execute(
            select(
                gate_decisions.c.delivery,
                gate_decisions.c.attempt,
                gate_decisions.c.held_at,
                gate_decisions.c.reason,
                gate_decisions.c.anomaly_score,
                gate_decisions.c.anomaly_threshold,
                deliveries.c.mission,
                deliveries.c.delivery_id,
                deliveries.c.claim_token,
            )
            .join(deliveries, deliveries.c.id == gate_decisions.c.delivery)
            .where(gate_decisions.c.decision == "held")
            .where(deliveries.c.state == "processing")
            .order_by(gate_decisions.c.held_at.desc())
            .limit(MAX_HELD)
        )
    ]


def report(conn: Connection, delivery_pk: int) -> dict[str, Any] | None:
    """The machine-readable report of a quarantined or rejected delivery."""
    r = conn.execute(
        select(deliveries.c.report)
        .where(deliveries.c.id == delivery_pk)
        .where(deliveries.c.state.in_(STOPPED))
    ).first()
    if r is None or r.report is None:
        return None
    return dict(r.report)


def fingerprint(conn: Connection) -> list[str]:
    """What changes whenever the operations page would: deliveries (new, finished, retried),
    their steps, forecasts and gate decisions (a held one is decided in place)."""
    found = conn.execute(
        select(
            func.count(deliveries.c.id),
            func.max(deliveries.c.id),
            func.max(deliveries.c.finished_at),
            func.sum(deliveries.c.attempts),
        )
    ).one()
    steps = conn.execute(select(func.count(stage_runs.c.id), func.max(stage_runs.c.id))).one()
    made = conn.execute(select(func.count(ttd_forecasts.c.id), func.max(ttd_forecasts.c.id))).one()
    gate = conn.execute(
        select(func.count(gate_decisions.c.id), func.max(gate_decisions.c.decided_at))
    ).one()
    return [str(v) for v in (*found, *steps, *made, *gate)]


class OperationsCache:
    """The latest ``Operations`` read, reused while the ledger's fingerprint is unchanged
    (two aggregate reads instead of the ledger's rows on every page view)."""

    def __init__(self) -> None:
        self._kept: tuple[tuple[Any, ...], Operations] | None = None

    def get(self, conn: Connection, *, limit: int) -> Operations:
        key = (limit, *fingerprint(conn))
        kept = self._kept
        if kept is not None and kept[0] == key:
            return kept[1]
        ops = operations(conn, limit=limit)
        self._kept = (key, ops)
        return ops


def data_docs(conn: Connection, delivery_pk: int) -> str | None:
    """Where a delivery's latest Data Docs site is (its index.html), if one was built."""
    r = conn.execute(select(deliveries.c.data_docs).where(deliveries.c.id == delivery_pk)).first()
    return None if r is None or r.data_docs is None else str(r.data_docs)
