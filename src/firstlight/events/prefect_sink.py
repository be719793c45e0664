"""Announcing arrivals to Prefect: the event its deployment trigger waits for.

Posted synchronously over the server's REST API (``POST /events``), so a
watcher knows the announcement was taken (or retries it) instead of trusting
a background queue that may drop records under load.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from prefect.events import Event

from firstlight.events.arrival import EVENT_ARRIVED, Arrival


class PrefectEventSink:
    def __init__(self, api_url: str, *, timeout: float = 10.0) -> None:
        self._url = api_url.rstrip("/") + "/events"
        self._timeout = timeout

    def emit(self, arrival: Arrival) -> None:
        event = Event(
            event=EVENT_ARRIVED,
            resource={
                "prefect.resource.id": arrival.resource_id,
                "prefect.resource.name": f"{arrival.mission}/{arrival.delivery_id}",
                "firstlight.mission": arrival.mission,
            },
            payload={"landed_at": _now(), **arrival.payload()},  # the source's time wins
        )
        response = httpx.post(
            self._url, json=[event.model_dump(mode="json")], timeout=self._timeout
        )
        response.raise_for_status()


def _now() -> str:
    """When the source did not say when the delivery landed (the reconciler): announcing
    is the moment it was seen complete (a file's mtime is the producer's, kept by `mv`)."""
    return datetime.now(UTC).isoformat()
