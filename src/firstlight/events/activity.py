"""The activity log: one line per arrival, run start, release, rejection and hold.

Belongs here: ``activity`` (the logger; `firstlight up` shows it in its
terminal, the stack writes it to ``<data dir>/logs/activity.log``),
``LoggedSink`` (announces an arrival and logs it: the watchers' log) and
``RunFollower``, which reads the release runs' state changes from the Prefect
server's event API and logs one line for each. It polls ``/events/filter``
(plain HTTP, a thread, no event loop): a line may come a few seconds after
the fact, as the server stores events in batches.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from firstlight.events.arrival import Arrival, ArrivalSink

activity = logging.getLogger("firstlight.activity")

RELEASE_FLOW = "release-delivery"
# State name (the event is prefect.flow-run.<name>) -> the word the line starts with.
_WORDS = {
    "Running": "started",
    "Completed": "released",
    "Skipped": "skipped",
    "Failed": "failed",
    "Crashed": "crashed",
    "Suspended": "HELD",
    "Paused": "HELD",
}
# How Prefect words a run that raised: "Flow run encountered an exception: Kind: text";
# a release run that rejects its delivery ends Failed with "Rejected: text" instead.
_RAISED = re.compile(
    r"^(?:Flow run encountered an exception: (?P<kind>\w+)|(?P<verdict>Rejected)): (?P<text>.*)$"
)
_LOOKBACK = timedelta(seconds=120)  # events are stored late; seen ids keep lines single


def log_to(handler: logging.Handler) -> logging.Handler:
    """Add a destination for the activity lines (a file, a terminal); returns it."""
    handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", "%Y-%m-%d %H:%M:%S"))
    activity.addHandler(handler)
    activity.setLevel(logging.INFO)
    activity.propagate = False  # its destinations are chosen here, not by the root logger
    return handler


def log_to_file(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    return log_to(logging.FileHandler(path))


class LoggedSink:
    """An arrival sink that logs each arrival it announces."""

    def __init__(self, sink: ArrivalSink) -> None:
        self._sink = sink

    def emit(self, arrival: Arrival) -> None:
        self._sink.emit(arrival)
        activity.info(
            "arrived   %s/%s at %s (%s)",
            arrival.mission,
            arrival.delivery_id,
            arrival.location,
            arrival.source,
        )


def describe(event: dict[str, Any]) -> str | None:
    """The line for a release run's state-change event; None for anything else."""
    state = str(event.get("event", "")).removeprefix("prefect.flow-run.")
    word = _WORDS.get(state)
    related = event.get("related") or []
    flows = {
        r.get("prefect.resource.name") for r in related if r.get("prefect.resource.role") == "flow"
    }
    if word is None or RELEASE_FLOW not in flows:
        return None
    resource = event.get("resource") or {}
    name = resource.get("prefect.resource.name", "?")
    run_id = str(resource.get("prefect.resource.id", "")).removeprefix("prefect.flow-run.")
    message = " ".join(str(resource.get("prefect.state-message") or "").split())
    if word == "HELD":
        return (
            f"HELD      {name}: waits for an operator; `firstlight held` shows why, "
            f"`firstlight gate approve|reject {name} --reason ... --operator ...` decides "
            f"(or the form of flow run {run_id})"
        )
    if word == "started":
        return f"started   {name} (flow run {run_id})"
    raised = _RAISED.match(message)
    if word == "failed" and raised and (raised["verdict"] or raised["kind"].endswith("Rejected")):
        word, message = "rejected", raised["text"]  # quarantined: the reason is the message
    return f"{word:<9} {name}" + (f": {message}" if message else "")


class RunFollower:
    """Logs the release runs' state changes read from a Prefect server, until stopped."""

    def __init__(self, api_url: str, *, poll_seconds: float = 2.0) -> None:
        self._api = api_url.rstrip("/")
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = self._since = datetime.now(UTC)
        self._seen: deque[str] = deque(maxlen=20_000)
        self._seen_set: set[str] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="run-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self._poll):
                try:
                    self.poll(client)
                except httpx.HTTPError as exc:  # the server restarting: the next poll catches up
                    logging.getLogger(__name__).debug("events not read: %s", exc)

    def poll(self, client: httpx.Client) -> int:
        """Log the lines of events not seen yet; how many were logged."""
        body = {
            "filter": {
                "occurred": {"since": (self._since - _LOOKBACK).isoformat()},
                "event": {"name": [f"prefect.flow-run.{s}" for s in _WORDS]},
                "order": "ASC",
            },
            "limit": 50,
        }
        response = client.post(f"{self._api}/events/filter", json=body)
        logged = 0
        while True:
            response.raise_for_status()
            page = response.json()
            for event in page.get("events", []):
                logged += self._log(event)
            if not page.get("next_page"):
                return logged
            response = client.get(page["next_page"])

    def _log(self, event: dict[str, Any]) -> int:
        event_id = str(event.get("id"))
        if event_id in self._seen_set:
            return 0
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(event_id)
        self._seen_set.add(event_id)
        occurred = datetime.fromisoformat(str(event["occurred"]).replace("Z", "+00:00"))
        self._since = max(self._since, occurred)
        line = describe(event) if occurred >= self._started else None
        if line is None:
            return 0
        activity.info("%s", line)
        return 1
