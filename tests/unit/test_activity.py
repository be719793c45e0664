"""The activity log's lines: which events make one, and what it says."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from firstlight.events.activity import LoggedSink, activity, describe, log_to_file
from firstlight.events.arrival import Arrival, CollectingSink


def _event(state: str, *, flow: str = "release-delivery", message: str = "") -> dict[str, object]:
    return {
        "id": "e1",
        "occurred": "2026-12-03T10:00:00Z",
        "event": f"prefect.flow-run.{state}",
        "resource": {
            "prefect.resource.id": "prefect.flow-run.0b7e",
            "prefect.resource.name": "survey/survey-0010",
            "prefect.state-message": message,
        },
        "related": [
            {
                "prefect.resource.id": "prefect.flow.1",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            },
            {"prefect.resource.id": "prefect.tag.firstlight", "prefect.resource.role": "tag"},
        ],
    }


@pytest.mark.parametrize(
    ("state", "start"),
    [
        ("Running", "started   survey/survey-0010 (flow run 0b7e)"),
        ("Completed", "released  survey/survey-0010"),
        ("Failed", "failed    survey/survey-0010: table.key_unique: 3 rows"),
        ("Crashed", "crashed   survey/survey-0010: table.key_unique: 3 rows"),
        ("Suspended", "HELD      survey/survey-0010: waits for an operator"),
        ("Paused", "HELD      survey/survey-0010: waits for an operator"),
    ],
)
def test_a_release_run_state_makes_one_line(state: str, start: str) -> None:
    line = describe(_event(state, message="table.key_unique:\n 3 rows"))
    assert line is not None and line.startswith(start), line
    if state in ("Suspended", "Paused"):
        assert "firstlight gate approve|reject survey/survey-0010" in line


def test_other_flows_and_states_make_none() -> None:
    assert describe(_event("Completed", flow="report-failure")) is None
    assert describe(_event("Pending")) is None
    assert describe(_event("Scheduled")) is None


def test_an_arrival_is_announced_then_logged(tmp_path: Path) -> None:
    collected = CollectingSink()
    handler = log_to_file(tmp_path / "logs" / "watch.log")
    try:
        arrival = Arrival("survey", "survey-0010", "/inbox/s10", "ab" * 32, "inbox")
        LoggedSink(collected).emit(arrival)
    finally:
        activity.removeHandler(handler)
        handler.close()
    assert collected.arrivals == [arrival]
    [line] = (tmp_path / "logs" / "watch.log").read_text().splitlines()
    assert line.endswith("arrived   survey/survey-0010 at /inbox/s10 (inbox)")
    assert logging.getLogger("firstlight.activity").propagate is False


def test_a_rejection_says_rejected_with_its_reason() -> None:
    message = (
        "Flow run encountered an exception: DeliveryRejected: validate failed: "
        "catalogue/sources.fits, column source_id: [table.key_unique] 2 rows"
    )
    line = describe(_event("Failed", message=message))
    assert line == (
        "rejected  survey/survey-0010: validate failed: catalogue/sources.fits, "
        "column source_id: [table.key_unique] 2 rows"
    )
    # The release flow ends a rejection Failed with "Rejected: ..." (no exception raised).
    verdict = "Rejected: " + message.split("DeliveryRejected: ", 1)[1]
    assert describe(_event("Failed", message=verdict)) == line
    other = describe(_event("Failed", message="Flow run encountered an exception: OSError: disk"))
    assert other == "failed    survey/survey-0010: Flow run encountered an exception: OSError: disk"
