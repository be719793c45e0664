"""The ledger's vocabulary: a delivery's states, its admission, its stages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class DeliveryState(StrEnum):
    PROCESSING = "processing"
    RELEASED = "released"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self is not DeliveryState.PROCESSING


class Decision(StrEnum):
    PROCEED = "proceed"
    SKIP = "skip"  # same identity, same bytes, already released: nothing to do
    REJECT = "reject"  # conflicts with what is released: quarantine, state rejected


class Stage(StrEnum):
    ADMIT = "admit"
    VERIFY = "verify"
    VALIDATE = "validate"
    INGEST = "ingest"
    INDEX = "index"
    GATE = "gate"  # may it go public by itself? (services.gate)
    PROMOTE = "promote"
    QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Admission:
    """The ledger's answer to an arrival."""

    delivery_pk: int
    attempt: int
    decision: Decision
    reason: str


@dataclass(frozen=True)
class LedgerEntry:
    delivery_pk: int
    mission: str
    delivery_id: str
    manifest_sha256: str | None
    release_key: str | None
    state: DeliveryState
    reason: str | None
    attempts: int
    arrived_at: datetime
    finished_at: datetime | None
    quarantine_path: str | None
    data_docs: str | None = None  # index.html of the latest validation's Data Docs


@dataclass(frozen=True)
class StageTiming:
    stage: Stage
    attempt: int
    outcome: str
    started_at: datetime
    ended_at: datetime
    detail: str | None

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()
