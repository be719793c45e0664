"""The ledger: every delivery, its attempts, its stages and its terminal state.

The ledger, not the orchestrator, decides whether an arrival is new work: the
same content already released is skipped; the same delivery id with other
bytes, or a release that already exists, is rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update

from firstlight.domain.ledger import (
    Admission,
    Decision,
    DeliveryState,
    LedgerEntry,
    Stage,
    StageTiming,
)
from firstlight.domain.manifest import now_utc
from firstlight.storage.db import for_writing
from firstlight.storage.schema import deliveries, releases, stage_runs


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = for_writing(engine)

    def admit(
        self,
        *,
        mission: str,
        delivery_id: str,
        manifest_sha256: str,
        release_key: str | None,
        location: str,
    ) -> Admission:
        """Record an arrival and decide whether it is new work."""
        now = now_utc()
        with self._writer.begin() as conn:
            row = conn.execute(
                select(deliveries).where(
                    deliveries.c.mission == mission,
                    deliveries.c.delivery_id == delivery_id,
                    deliveries.c.manifest_sha256 == manifest_sha256,
                )
            ).first()
            if row is None:
                inserted = conn.execute(
                    insert(deliveries).values(
                        mission=mission,
                        delivery_id=delivery_id,
                        manifest_sha256=manifest_sha256,
                        release_key=release_key,
                        state=DeliveryState.PROCESSING,
                        location=location,
                        attempts=1,
                        arrived_at=now,
                    )
                ).inserted_primary_key
                assert inserted is not None
                pk, attempt = int(inserted[0]), 1
            else:
                pk, attempt = row.id, row.attempts + 1
                if row.state == DeliveryState.RELEASED:
                    conn.execute(
                        update(deliveries).where(deliveries.c.id == pk).values(attempts=attempt)
                    )
                    reason = f"already released as {row.release_key}; nothing to do"
                    return Admission(pk, attempt, Decision.SKIP, reason)
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == pk)
                    .values(
                        attempts=attempt,
                        state=DeliveryState.PROCESSING,
                        reason=None,
                        location=location,
                        finished_at=None,
                    )
                )
            conflict = self._conflict(conn, pk, mission, delivery_id, release_key)
            if conflict:
                return Admission(int(pk), attempt, Decision.REJECT, conflict)
            return Admission(int(pk), attempt, Decision.PROCEED, "new work")

    @staticmethod
    def _conflict(
        conn: Any, pk: int, mission: str, delivery_id: str, release_key: str | None
    ) -> str | None:
        other = conn.execute(
            select(deliveries.c.manifest_sha256, deliveries.c.release_key).where(
                deliveries.c.mission == mission,
                deliveries.c.delivery_id == delivery_id,
                deliveries.c.id != pk,
                deliveries.c.state == DeliveryState.RELEASED,
            )
        ).first()
        if other is not None:
            return (
                f"delivery {mission}/{delivery_id} was already released as {other.release_key} "
                f"with a different manifest (sha256 {other.manifest_sha256[:12]}...); "
                "a correction needs a new delivery id and a new release version"
            )
        if release_key is None:
            return None
        existing = conn.execute(
            select(releases.c.delivery).where(releases.c.release_key == release_key)
        ).first()
        if existing is not None and existing.delivery != pk:
            return (
                f"release {release_key} already exists (made by another delivery); "
                "releases are immutable: deliver a new release version"
            )
        return None

    @contextmanager
    def stage(self, delivery_pk: int, attempt: int, stage: Stage) -> Iterator[None]:
        """Time a step and record its outcome, whether it succeeds or raises."""
        started = now_utc()
        try:
            yield
        except BaseException as exc:
            self.record_stage(
                delivery_pk,
                attempt,
                stage,
                outcome="failed",
                started_at=started,
                detail=str(exc)[:2000],
            )
            raise
        self.record_stage(
            delivery_pk, attempt, stage, outcome="ok", started_at=started, detail=None
        )

    def record_stage(
        self,
        delivery_pk: int,
        attempt: int,
        stage: Stage,
        *,
        outcome: str,
        started_at: datetime,
        detail: str | None,
    ) -> None:
        with self._writer.begin() as conn:
            conn.execute(
                insert(stage_runs).values(
                    delivery=delivery_pk,
                    attempt=attempt,
                    stage=stage,
                    outcome=outcome,
                    detail=detail,
                    started_at=started_at,
                    ended_at=now_utc(),
                )
            )

    def finish(
        self,
        delivery_pk: int,
        state: DeliveryState,
        *,
        reason: str | None = None,
        report: dict[str, Any] | None = None,
        quarantine_path: str | None = None,
    ) -> None:
        if not state.terminal:
            raise ValueError(f"{state} is not a terminal state")
        with self._writer.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_pk)
                .values(
                    state=state,
                    reason=reason,
                    report=report,
                    quarantine_path=quarantine_path,
                    finished_at=now_utc(),
                )
            )

    def entry(self, delivery_pk: int) -> LedgerEntry:
        with self._engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_pk)).one()
        return _entry(row)

    def entries(self, mission: str | None = None) -> list[LedgerEntry]:
        query = select(deliveries).order_by(deliveries.c.id)
        if mission:
            query = query.where(deliveries.c.mission == mission)
        with self._engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    def latest_at(self, location: str) -> LedgerEntry | None:
        """The most recent arrival seen at this location."""
        query = (
            select(deliveries)
            .where(deliveries.c.location == location)
            .order_by(deliveries.c.arrived_at.desc(), deliveries.c.id.desc())
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _entry(row)

    def stages(self, delivery_pk: int) -> list[StageTiming]:
        query = (
            select(stage_runs).where(stage_runs.c.delivery == delivery_pk).order_by(stage_runs.c.id)
        )
        with self._engine.connect() as conn:
            return [
                StageTiming(
                    stage=Stage(r.stage),
                    attempt=r.attempt,
                    outcome=r.outcome,
                    started_at=r.started_at,
                    ended_at=r.ended_at,
                    detail=r.detail,
                )
                for r in conn.execute(query)
            ]


def _entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        delivery_pk=row.id,
        mission=row.mission,
        delivery_id=row.delivery_id,
        manifest_sha256=row.manifest_sha256,
        release_key=row.release_key,
        state=DeliveryState(row.state),
        reason=row.reason,
        attempts=row.attempts,
        arrived_at=row.arrived_at,
        finished_at=row.finished_at,
        quarantine_path=row.quarantine_path,
    )
