"""The ticket: what steps pass each other about one delivery (ids and paths only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from firstlight.domain.ledger import Decision


@dataclass(frozen=True)
class Ticket:
    delivery_path: str
    delivery_pk: int
    attempt: int
    mission: str
    delivery_id: str
    manifest_sha256: str
    release_key: str | None
    decision: Decision
    reason: str
    manifest_problem: str | None = None  # set when manifest.json is missing or invalid

    @property
    def path(self) -> Path:
        return Path(self.delivery_path)

    @property
    def label(self) -> str:
        return f"{self.mission}/{self.delivery_id}"
