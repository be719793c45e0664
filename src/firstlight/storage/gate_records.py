"""The release gate's records: features, decisions, model versions, forecasts.

Belongs here: ``GateRecords``, reading and writing the tables ``schema.py``
defines for the gate (``delivery_features``, ``gate_decisions``,
``gate_models``, ``ttd_forecasts``) and the two ledger reads the gate needs
(the features of the mission's current release, and of every released
delivery). It returns domain objects and plain rows; deciding is
``services.gate``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from firstlight.domain.features import DeliveryFeatures
from firstlight.domain.ledger import DeliveryState
from firstlight.domain.manifest import now_utc
from firstlight.errors import NotFoundError
from firstlight.storage.db import for_writing
from firstlight.storage.schema import (
    current_releases,
    deliveries,
    delivery_features,
    gate_decisions,
    gate_models,
    releases,
    ttd_forecasts,
)


@dataclass(frozen=True)
class GateDecisionRecord:
    delivery_pk: int
    attempt: int
    decision: str  # auto-pass | held | approved | rejected
    decided_by: str
    reason: str | None
    drift: list[dict[str, Any]]
    anomaly_score: float | None
    anomaly_threshold: float | None
    thresholds: dict[str, Any]
    model_version: int | None
    held_at: datetime | None
    decided_at: datetime


@dataclass(frozen=True)
class HeldRecord:
    """A delivery waiting for an operator at the gate: its latest attempt is held."""

    delivery_pk: int
    attempt: int
    mission: str
    delivery_id: str
    release_key: str | None
    location: str
    claim_token: str | None  # the run that waits: a Prefect flow run id, or in-process
    held_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class ModelRecord:
    version: int
    kind: str
    state: str  # candidate | current | retired | rejected
    trained_at: datetime
    window_from: datetime | None
    window_to: datetime | None
    samples: int
    metrics: dict[str, Any]
    params: dict[str, Any]


@dataclass(frozen=True)
class LabelledFeatures:
    """A past delivery's features with what became of it at the gate."""

    delivery_pk: int
    attempt: int
    mission: str
    arrived_at: datetime
    features: DeliveryFeatures
    decision: str | None  # None: released before the gate existed


@dataclass(frozen=True)
class ForecastRecord:
    delivery_pk: int
    attempt: int
    predicted_seconds: float | None
    model: str
    inputs: dict[str, Any]


class GateRecords:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = for_writing(engine)

    # --- features ------------------------------------------------------------------------

    def save_features(self, delivery_pk: int, attempt: int, features: DeliveryFeatures) -> None:
        """Record (or replace) the features of one attempt."""
        where = (
            delivery_features.c.delivery == delivery_pk,
            delivery_features.c.attempt == attempt,
        )
        with self._writer.begin() as conn:
            found = conn.execute(select(delivery_features.c.id).where(*where)).first()
            values = {"features": features.to_json(), "recorded_at": now_utc()}
            if found is None:
                conn.execute(
                    insert(delivery_features).values(
                        delivery=delivery_pk, attempt=attempt, **values
                    )
                )
            else:
                conn.execute(update(delivery_features).where(*where).values(**values))

    def features(self, delivery_pk: int, attempt: int) -> DeliveryFeatures | None:
        query = select(delivery_features.c.features).where(
            delivery_features.c.delivery == delivery_pk, delivery_features.c.attempt == attempt
        )
        with self._engine.connect() as conn:
            data = conn.execute(query).scalar()
        return None if data is None else DeliveryFeatures.from_json(data)

    def current_release_features(self, mission: str) -> tuple[str, DeliveryFeatures] | None:
        """The release key and features of the delivery that made the mission's current release."""
        query = (
            select(releases.c.release_key, deliveries.c.attempts, releases.c.delivery)
            .select_from(current_releases)
            .join(releases, releases.c.release_key == current_releases.c.release_key)
            .join(deliveries, deliveries.c.id == releases.c.delivery)
            .where(current_releases.c.mission == mission)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        features = self.features(row.delivery, row.attempts)
        return None if features is None else (row.release_key, features)

    def history(self, mission: str | None = None) -> list[LabelledFeatures]:
        """Features of every delivery that passed or was rejected at the gate, oldest first.

        A released delivery counts with its final attempt; one rejected at the
        gate with the attempt the operator rejected.
        """
        query = (
            select(
                deliveries.c.id,
                deliveries.c.mission,
                deliveries.c.arrived_at,
                delivery_features.c.attempt,
                delivery_features.c.features,
                gate_decisions.c.decision,
                deliveries.c.state,
                deliveries.c.attempts,
            )
            .select_from(deliveries)
            .join(delivery_features, delivery_features.c.delivery == deliveries.c.id)
            .outerjoin(
                gate_decisions,
                (gate_decisions.c.delivery == deliveries.c.id)
                & (gate_decisions.c.attempt == delivery_features.c.attempt),
            )
            .order_by(deliveries.c.arrived_at, deliveries.c.id)
        )
        if mission is not None:
            query = query.where(deliveries.c.mission == mission)
        out: list[LabelledFeatures] = []
        with self._engine.connect() as conn:
            for r in conn.execute(query):
                released = r.state == DeliveryState.RELEASED and r.attempt == r.attempts
                if not (released or r.decision == "rejected"):
                    continue
                out.append(
                    LabelledFeatures(
                        delivery_pk=r.id,
                        attempt=r.attempt,
                        mission=r.mission,
                        arrived_at=r.arrived_at,
                        features=DeliveryFeatures.from_json(r.features),
                        decision=r.decision,
                    )
                )
        return out

    # --- decisions -----------------------------------------------------------------------

    def save_decision(self, record: GateDecisionRecord) -> None:
        values = {
            "decision": record.decision,
            "decided_by": record.decided_by,
            "reason": record.reason,
            "drift": record.drift,
            "anomaly_score": record.anomaly_score,
            "anomaly_threshold": record.anomaly_threshold,
            "thresholds": record.thresholds,
            "model_version": record.model_version,
            "held_at": record.held_at,
            "decided_at": record.decided_at,
        }
        where = (
            gate_decisions.c.delivery == record.delivery_pk,
            gate_decisions.c.attempt == record.attempt,
        )
        with self._writer.begin() as conn:
            found = conn.execute(select(gate_decisions.c.id).where(*where)).first()
            if found is None:
                conn.execute(
                    insert(gate_decisions).values(
                        delivery=record.delivery_pk, attempt=record.attempt, **values
                    )
                )
            else:
                conn.execute(update(gate_decisions).where(*where).values(**values))

    def decision(self, delivery_pk: int, attempt: int) -> GateDecisionRecord | None:
        query = select(gate_decisions).where(
            gate_decisions.c.delivery == delivery_pk, gate_decisions.c.attempt == attempt
        )
        with self._engine.connect() as conn:
            r = conn.execute(query).first()
        if r is None:
            return None
        return GateDecisionRecord(
            delivery_pk=r.delivery,
            attempt=r.attempt,
            decision=r.decision,
            decided_by=r.decided_by,
            reason=r.reason,
            drift=list(r.drift),
            anomaly_score=r.anomaly_score,
            anomaly_threshold=r.anomaly_threshold,
            thresholds=dict(r.thresholds),
            model_version=r.model_version,
            held_at=r.held_at,
            decided_at=r.decided_at,
        )

    def settle_held(self, record: GateDecisionRecord) -> bool:
        """Replace a held decision by ``record`` only if it is still held (one decider wins).

        An operator in the UI, another in a shell and the reconciler's timeout
        may answer the same hold; the first to get here decides, the others see False.
        """
        with self._writer.begin() as conn:
            done = conn.execute(
                update(gate_decisions)
                .where(
                    gate_decisions.c.delivery == record.delivery_pk,
                    gate_decisions.c.attempt == record.attempt,
                    gate_decisions.c.decision == "held",
                )
                .values(
                    decision=record.decision,
                    decided_by=record.decided_by,
                    reason=record.reason,
                    decided_at=record.decided_at,
                )
            )
        return bool(done.rowcount)

    def held(self) -> list[HeldRecord]:
        """Deliveries still processing whose latest attempt the gate holds, oldest hold first."""
        query = (
            select(
                deliveries.c.id,
                deliveries.c.attempts,
                deliveries.c.mission,
                deliveries.c.delivery_id,
                deliveries.c.release_key,
                deliveries.c.location,
                deliveries.c.claim_token,
                gate_decisions.c.held_at,
                gate_decisions.c.reason,
            )
            .select_from(deliveries)
            .join(
                gate_decisions,
                (gate_decisions.c.delivery == deliveries.c.id)
                & (gate_decisions.c.attempt == deliveries.c.attempts),
            )
            .where(
                deliveries.c.state == DeliveryState.PROCESSING,
                gate_decisions.c.decision == "held",
            )
            .order_by(gate_decisions.c.held_at, deliveries.c.id)
        )
        with self._engine.connect() as conn:
            return [
                HeldRecord(
                    delivery_pk=r.id,
                    attempt=r.attempts,
                    mission=r.mission,
                    delivery_id=r.delivery_id,
                    release_key=r.release_key,
                    location=r.location,
                    claim_token=r.claim_token,
                    held_at=r.held_at,
                    reason=r.reason,
                )
                for r in conn.execute(query)
            ]

    def hold_claim(self, delivery_pk: int, claim_token: str, seconds: float) -> None:
        """Keep a held run's claim on its delivery for the whole wait for an operator.

        ``claimed_at`` is moved ahead by the wait, so the ledger's lease (which
        lets another run take over a stale claim) runs out only after the pause
        has: a duplicate arrival event meanwhile is skipped, not run twice.
        """
        with self._writer.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_pk, deliveries.c.claim_token == claim_token)
                .values(claimed_at=now_utc() + timedelta(seconds=seconds))
            )

    # --- models --------------------------------------------------------------------------

    def add_model(
        self,
        *,
        kind: str,
        state: str,
        window: tuple[datetime | None, datetime | None],
        samples: int,
        metrics: dict[str, Any],
        params: dict[str, Any],
    ) -> int:
        with self._writer.begin() as conn:
            last = conn.execute(select(func.max(gate_models.c.version))).scalar()
            version = int(last or 0) + 1
            conn.execute(
                insert(gate_models).values(
                    version=version,
                    kind=kind,
                    state=state,
                    trained_at=now_utc(),
                    window_from=window[0],
                    window_to=window[1],
                    samples=samples,
                    metrics=metrics,
                    params=params,
                )
            )
        return version

    def set_current_model(self, version: int) -> None:
        """Make ``version`` current and retire the one it replaces, in one transaction."""
        with self._writer.begin() as conn:
            found = conn.execute(
                select(gate_models.c.version).where(gate_models.c.version == version)
            ).first()
            if found is None:
                raise NotFoundError(f"no model version {version}")
            conn.execute(
                update(gate_models)
                .where(gate_models.c.state == "current", gate_models.c.version != version)
                .values(state="retired")
            )
            conn.execute(
                update(gate_models).where(gate_models.c.version == version).values(state="current")
            )

    def set_model_state(self, version: int, state: str) -> None:
        with self._writer.begin() as conn:
            conn.execute(
                update(gate_models).where(gate_models.c.version == version).values(state=state)
            )

    def models(self) -> list[ModelRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(gate_models).order_by(gate_models.c.version)).all()
        return [_model(r) for r in rows]

    def model(self, version: int) -> ModelRecord | None:
        return next((m for m in self.models() if m.version == version), None)

    def current_model(self) -> ModelRecord | None:
        return next((m for m in self.models() if m.state == "current"), None)

    # --- forecasts -----------------------------------------------------------------------

    def save_forecast(self, record: ForecastRecord) -> None:
        where = (
            ttd_forecasts.c.delivery == record.delivery_pk,
            ttd_forecasts.c.attempt == record.attempt,
        )
        values = {
            "predicted_seconds": record.predicted_seconds,
            "model": record.model,
            "inputs": record.inputs,
            "made_at": now_utc(),
        }
        with self._writer.begin() as conn:
            if conn.execute(select(ttd_forecasts.c.id).where(*where)).first() is None:
                conn.execute(
                    insert(ttd_forecasts).values(
                        delivery=record.delivery_pk, attempt=record.attempt, **values
                    )
                )
            else:
                conn.execute(update(ttd_forecasts).where(*where).values(**values))

    def forecasts(self) -> dict[tuple[int, int], ForecastRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(ttd_forecasts)).all()
        return {
            (r.delivery, r.attempt): ForecastRecord(
                r.delivery, r.attempt, r.predicted_seconds, r.model, dict(r.inputs)
            )
            for r in rows
        }


def _model(r: Any) -> ModelRecord:
    return ModelRecord(
        version=r.version,
        kind=r.kind,
        state=r.state,
        trained_at=r.trained_at,
        window_from=r.window_from,
        window_to=r.window_to,
        samples=r.samples,
        metrics=dict(r.metrics),
        params=dict(r.params),
    )
