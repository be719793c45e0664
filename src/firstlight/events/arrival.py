"""The arrival announcement: its one name, its resource, its payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

EVENT_ARRIVED = "firstlight.delivery.arrived"
EVENT_PROMOTED = "firstlight.release.promoted"


@dataclass(frozen=True)
class Arrival:
    mission: str
    delivery_id: str
    location: str  # local folder the release flow reads
    manifest_sha256: str
    source: str  # "inbox", "s3://bucket/prefix", "reconcile"
    # Where time-to-data starts: when the delivery landed complete, as its source knows
    # it (the inbox: first seen complete; S3: the newest object's upload time). Never a
    # file's mtime, which `mv` keeps. None: the sink's own clock at announcing.
    landed_at: datetime | None = None

    @property
    def resource_id(self) -> str:
        return f"firstlight.delivery.{self.mission}.{self.delivery_id}"

    def payload(self) -> dict[str, str]:
        data = {
            "mission": self.mission,
            "delivery_id": self.delivery_id,
            "location": self.location,
            "manifest_sha256": self.manifest_sha256,
            "source": self.source,
        }
        if self.landed_at is not None:
            data["landed_at"] = self.landed_at.isoformat()
        return data


class ArrivalSink(Protocol):
    def emit(self, arrival: Arrival) -> None: ...


@dataclass
class CollectingSink:
    """Keeps what it is told: for tests and dry runs."""

    arrivals: list[Arrival] = field(default_factory=list)

    def emit(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)
