"""The arrival announcement: its one name, its resource, its payload."""

from __future__ import annotations

from dataclasses import dataclass, field
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

    @property
    def resource_id(self) -> str:
        return f"firstlight.delivery.{self.mission}.{self.delivery_id}"

    def payload(self) -> dict[str, str]:
        return {
            "mission": self.mission,
            "delivery_id": self.delivery_id,
            "location": self.location,
            "manifest_sha256": self.manifest_sha256,
            "source": self.source,
        }


class ArrivalSink(Protocol):
    def emit(self, arrival: Arrival) -> None: ...


@dataclass
class CollectingSink:
    """Keeps what it is told: for tests and dry runs."""

    arrivals: list[Arrival] = field(default_factory=list)

    def emit(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)
