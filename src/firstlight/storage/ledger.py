"""The ledger: every delivery, its attempts, its stages and its terminal state.

The ledger, not the orchestrator, decides whether an arrival is new work: the
same content already released is skipped; the same delivery id with other
bytes, or a release that already exists, is rejected.

Methods ending in ``_in`` take the caller's connection and commit nothing
themselves: promotion writes its switch and the terminal state in one
transaction with them (``services.promotion``), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from firstlight.domain.findings import Finding, Report, Severity
from firstlight.domain.ledger import (
    Admission,
    Decision,
    DeliveryState,
    LedgerEntry,
    Stage,
    StageTiming,
)
from firstlight.domain.manifest import now_utc
from firstlight.errors import InvalidInputError, NotFoundError
from firstlight.storage.db import for_writing
from firstlight.storage.schema import (
    deliveries,
    findings,
    observation_sources,
    releases,
    stage_runs,
)


class Ledger:
    def __init__(self, engine: Engine, *, claim_lease_seconds: int = 1800) -> None:
        self._engine = engine
        self._writer = for_writing(engine)
        self._lease = timedelta(seconds=claim_lease_seconds)

    def admit(
        self,
        *,
        mission: str,
        delivery_id: str,
        manifest_sha256: str,
        release_key: str | None,
        location: str,
        claim_token: str,
        arrived_at: datetime | None = None,
    ) -> Admission:
        """Record an arrival and decide whether it is new work.

        The row of a delivery is locked while deciding, and its insertion is
        guarded by the unique identity, so concurrent arrivals of one delivery
        get one PROCEED between them. A run holds its claim (``claim_token``)
        until it finishes or its lease runs out; the same token may resume.
        ``arrived_at`` is when the delivery landed, if the source knows (default: now).
        """
        now = now_utc()
        identity = (
            deliveries.c.mission == mission,
            deliveries.c.delivery_id == delivery_id,
            deliveries.c.manifest_sha256 == manifest_sha256,
        )
        locked = select(deliveries).where(*identity).with_for_update()
        with self._writer.begin() as conn:
            row = conn.execute(locked).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        inserted = conn.execute(
                            insert(deliveries).values(
                                mission=mission,
                                delivery_id=delivery_id,
                                manifest_sha256=manifest_sha256,
                                release_key=release_key,
                                state=DeliveryState.PROCESSING,
                                location=location,
                                attempts=1,
                                claim_token=claim_token,
                                claimed_at=now,
                                arrived_at=min(arrived_at or now, now),
                            )
                        ).inserted_primary_key
                except IntegrityError:
                    row = conn.execute(locked).one()  # a concurrent arrival inserted it first
                else:
                    assert inserted is not None
                    pk = int(inserted[0])
                    return self._decide_new(
                        conn,
                        pk,
                        1,
                        mission=mission,
                        delivery_id=delivery_id,
                        release_key=release_key,
                    )
            skip = self._skip_reason(row, claim_token, now) or self._settle_from_switch(
                conn, row, now
            )
            if skip is not None:
                self.record_stage_in(
                    conn,
                    row.id,
                    row.attempts,
                    Stage.ADMIT,
                    outcome="skipped",
                    started_at=now,
                    detail=skip,
                )
                return Admission(row.id, row.attempts, Decision.SKIP, skip)
            attempt = row.attempts if row.claim_token == claim_token else row.attempts + 1
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(
                    attempts=attempt,
                    state=DeliveryState.PROCESSING,
                    reason=None,
                    location=location,
                    claim_token=claim_token,
                    claimed_at=now,
                    finished_at=None,
                )
            )
            return self._decide_new(
                conn,
                row.id,
                attempt,
                mission=mission,
                delivery_id=delivery_id,
                release_key=release_key,
            )

    def note_skipped(self, delivery_pk: int, attempt: int, reason: str) -> None:
        """Record an arrival that needs no work (e.g. an echo of a finished delivery)."""
        now = now_utc()
        with self._writer.begin() as conn:
            self.record_stage_in(
                conn,
                delivery_pk,
                attempt,
                Stage.ADMIT,
                outcome="skipped",
                started_at=now,
                detail=reason,
            )

    def _skip_reason(self, row: Row[Any], claim_token: str, now: datetime) -> str | None:
        if row.state == DeliveryState.RELEASED:
            return f"already released as {row.release_key}; nothing to do"
        held = row.claimed_at is not None and now - row.claimed_at < self._lease
        if row.state == DeliveryState.PROCESSING and row.claim_token != claim_token and held:
            return (
                f"in progress in another run (attempt {row.attempts}, claimed at "
                f"{row.claimed_at.isoformat(timespec='seconds')}); nothing to do"
            )
        return None

    def _settle_from_switch(self, conn: Any, row: Row[Any], now: datetime) -> str | None:
        """Close a line whose release was switched in but whose ledger was never closed.

        Archives promoted before the switch and the terminal state shared one
        transaction can hold such a line (a crash between the two): the switch
        is the truth, so the ledger follows it instead of wedging every rerun.
        """
        if row.state != DeliveryState.PROCESSING or row.release_key is None:
            return None
        promoted = conn.execute(
            select(releases.c.release_key).where(
                releases.c.release_key == row.release_key,
                releases.c.delivery == row.id,
                releases.c.promoted_at.is_not(None),
            )
        ).first()
        if promoted is None:
            return None
        reason = f"released as {row.release_key}"
        self.finish_in(conn, row.id, DeliveryState.RELEASED, reason=reason, finished_at=now)
        return f"{reason} (ledger closed from the switch of an earlier attempt); nothing to do"

    def _decide_new(
        self,
        conn: Any,
        pk: int,
        attempt: int,
        *,
        mission: str,
        delivery_id: str,
        release_key: str | None,
    ) -> Admission:
        conflict = self._conflict(conn, pk, mission, delivery_id, release_key)
        if conflict:
            return Admission(pk, attempt, Decision.REJECT, conflict)
        return Admission(pk, attempt, Decision.PROCEED, "new work")

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
            self.record_stage_in(
                conn,
                delivery_pk,
                attempt,
                stage,
                outcome=outcome,
                started_at=started_at,
                detail=detail,
            )

    @staticmethod
    def record_stage_in(
        conn: Connection,
        delivery_pk: int,
        attempt: int,
        stage: Stage,
        *,
        outcome: str,
        started_at: datetime,
        detail: str | None,
    ) -> None:
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

    def record_findings(self, delivery_pk: int, attempt: int, report: Report) -> None:
        """Keep every finding of a step (errors and warnings) for this attempt."""
        if not report.findings:
            return
        with self._writer.begin() as conn:
            conn.execute(
                insert(findings),
                [
                    {
                        "delivery": delivery_pk,
                        "attempt": attempt,
                        "step": report.step,
                        "check_name": f.check,
                        "severity": f.severity.value,
                        "file": f.file,
                        "hdu": f.hdu,
                        "column_name": f.column,
                        "failing_count": f.failing_count,
                        "sample_rows": list(f.sample_rows) or None,
                        "observed": f.observed,
                        "reason": f.reason,
                    }
                    for f in report.findings
                ],
            )

    def record_observation_sources(
        self, delivery_pk: int, attempt: int, sources: Mapping[str, Mapping[str, str]]
    ) -> None:
        """Where each ObsCore column of each product came from (product path -> column ->
        source); a retried ingest of the same attempt replaces what it recorded before."""
        now = now_utc()
        with self._writer.begin() as conn:
            conn.execute(
                delete(observation_sources).where(
                    observation_sources.c.delivery == delivery_pk,
                    observation_sources.c.attempt == attempt,
                )
            )
            if sources:
                conn.execute(
                    insert(observation_sources),
                    [
                        {
                            "delivery": delivery_pk,
                            "attempt": attempt,
                            "path": path,
                            "sources": dict(columns),
                            "recorded_at": now,
                        }
                        for path, columns in sources.items()
                    ],
                )

    def observation_sources(self, delivery_pk: int) -> dict[str, dict[str, str]]:
        """The latest attempt's record: product path -> ObsCore column -> source."""
        latest = (
            select(func.max(observation_sources.c.attempt))
            .where(observation_sources.c.delivery == delivery_pk)
            .scalar_subquery()
        )
        query = (
            select(observation_sources.c.path, observation_sources.c.sources)
            .where(
                observation_sources.c.delivery == delivery_pk,
                observation_sources.c.attempt == latest,
            )
            .order_by(observation_sources.c.path)
        )
        with self._engine.connect() as conn:
            return {row.path: dict(row.sources) for row in conn.execute(query)}

    def set_data_docs(self, delivery_pk: int, index: str | None) -> None:
        """Link the Data Docs of the delivery's latest validation (None: it published none)."""
        with self._writer.begin() as conn:
            conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_pk).values(data_docs=index)
            )

    def findings(self, delivery_pk: int) -> list[Finding]:
        query = select(findings).where(findings.c.delivery == delivery_pk).order_by(findings.c.id)
        with self._engine.connect() as conn:
            return [
                Finding(
                    check=r.check_name,
                    reason=r.reason,
                    file=r.file,
                    hdu=r.hdu,
                    column=r.column_name,
                    failing_count=r.failing_count,
                    sample_rows=tuple(r.sample_rows or ()),
                    observed=r.observed,
                    severity=Severity(r.severity),
                )
                for r in conn.execute(query)
            ]

    def finish(
        self,
        delivery_pk: int,
        state: DeliveryState,
        *,
        reason: str | None = None,
        report: dict[str, Any] | None = None,
        quarantine_path: str | None = None,
    ) -> None:
        with self._writer.begin() as conn:
            self.finish_in(
                conn,
                delivery_pk,
                state,
                reason=reason,
                report=report,
                quarantine_path=quarantine_path,
            )

    @staticmethod
    def finish_in(
        conn: Connection,
        delivery_pk: int,
        state: DeliveryState,
        *,
        reason: str | None = None,
        report: dict[str, Any] | None = None,
        quarantine_path: str | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """The terminal state, inside the caller's transaction."""
        if not state.terminal:
            raise ValueError(f"{state} is not a terminal state")
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_pk)
            .values(
                state=state,
                reason=reason,
                report=report,
                quarantine_path=quarantine_path,
                finished_at=finished_at or now_utc(),
            )
        )

    def entry(self, delivery_pk: int) -> LedgerEntry:
        with self._engine.connect() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_pk)).first()
        if row is None:
            raise NotFoundError(f"no delivery {delivery_pk} in the ledger")
        return _entry(row)

    def lookup(self, reference: str) -> LedgerEntry:
        """A delivery by its ledger id (``12``) or ``MISSION/DELIVERY_ID`` (its newest
        ledger line: a redelivery with another manifest is a line of its own)."""
        mission, slash, delivery_id = reference.strip().partition("/")
        if not slash:
            if not mission.isdigit():
                raise InvalidInputError(
                    f"{reference!r}: give a ledger id (e.g. 12) or MISSION/DELIVERY_ID"
                )
            return self.entry(int(mission))
        query = (
            select(deliveries)
            .where(deliveries.c.mission == mission, deliveries.c.delivery_id == delivery_id)
            .order_by(deliveries.c.id.desc())
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no delivery {mission}/{delivery_id} in the ledger")
        return _entry(row)

    def terminal_report(self, delivery_pk: int) -> dict[str, Any] | None:
        """The report kept with the terminal state (what report.json holds): the
        findings of the step that rejected the delivery, whichever step it was."""
        query = select(deliveries.c.report).where(deliveries.c.id == delivery_pk)
        with self._engine.connect() as conn:
            report = conn.execute(query).scalar_one_or_none()
        return dict(report) if report else None

    def entries(self, mission: str | None = None) -> list[LedgerEntry]:
        query = select(deliveries).order_by(deliveries.c.id)
        if mission:
            query = query.where(deliveries.c.mission == mission)
        with self._engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    # --- claims: short leases, renewed while the run is alive ---------------------------

    @property
    def lease_seconds(self) -> float:
        return self._lease.total_seconds()

    def renew_claim(self, delivery_pk: int, claim_token: str) -> bool:
        """Keep this run's claim; False when it is no longer this run's (taken over, finished).

        A claim held ahead of now (a run waiting for an operator) is not shortened.
        """
        now = now_utc()
        with self._writer.begin() as conn:
            held = conn.execute(
                select(deliveries.c.claimed_at).where(
                    deliveries.c.id == delivery_pk,
                    deliveries.c.claim_token == claim_token,
                    deliveries.c.state == DeliveryState.PROCESSING,
                )
            ).first()
            if held is None:
                return False
            if held.claimed_at is None or held.claimed_at < now:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_pk, deliveries.c.claim_token == claim_token)
                    .values(claimed_at=now)
                )
            return True

    def release_claim(self, delivery_pk: int, claim_token: str) -> None:
        """Give the claim up now (a run cut short): the next attempt need not wait for the lease."""
        with self._writer.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == delivery_pk,
                    deliveries.c.claim_token == claim_token,
                    deliveries.c.state == DeliveryState.PROCESSING,
                    # A claim held ahead (waiting for an operator) outlives the process.
                    deliveries.c.claimed_at.is_(None) | (deliveries.c.claimed_at <= now_utc()),
                )
                .values(claimed_at=None)
            )

    def claim(self, delivery_pk: int) -> tuple[str | None, str]:
        """(the claiming run's token, the delivery's location) of a ledger line."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(deliveries.c.claim_token, deliveries.c.location).where(
                    deliveries.c.id == delivery_pk
                )
            ).one()
        return row.claim_token, row.location

    def lapsed(self) -> list[LedgerEntry]:
        """Deliveries still processing whose run's claim has run out (or was given up)."""
        cutoff = now_utc() - self._lease
        query = (
            select(deliveries)
            .where(
                deliveries.c.state == DeliveryState.PROCESSING,
                (deliveries.c.claimed_at.is_(None)) | (deliveries.c.claimed_at < cutoff),
            )
            .order_by(deliveries.c.id)
        )
        with self._engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    def find(self, mission: str, delivery_id: str, manifest_sha256: str) -> LedgerEntry | None:
        """The ledger line of exactly this delivery content, if it ever arrived."""
        query = select(deliveries).where(
            deliveries.c.mission == mission,
            deliveries.c.delivery_id == delivery_id,
            deliveries.c.manifest_sha256 == manifest_sha256,
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _entry(row)

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
        data_docs=row.data_docs,
    )
