"""An empty flow that an event starts: how long Prefect alone takes from an event to a run.

`make bench` (bench/stack.py) emits ``firstlight.probe`` events at a running
stack and reads when each probe run started: the floor that any delivery's
time-to-data pays for orchestration, measured beside it. An operator can do
the same to check a stack's responsiveness.
"""

from __future__ import annotations

from prefect import flow

EVENT_PROBE = "firstlight.probe"


@flow(name="probe")
def probe(probe_id: str | None = None) -> str | None:
    """Nothing: its start time is the measurement (``probe_id``: the event's resource)."""
    return probe_id
