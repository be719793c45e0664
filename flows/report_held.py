"""Started by the held-runs automation: says which release waits for an operator, and how."""

from __future__ import annotations

from prefect import flow, get_run_logger

from firstlight.services.gate import decide_commands


@flow(name="report-held")
def report_held(flow_run_id: str, flow_run_name: str) -> str:
    """Log at WARNING that a release is held (the run is named MISSION/DELIVERY_ID)."""
    run_id = flow_run_id.removeprefix("prefect.flow-run.")
    text = (
        f"{flow_run_name} is held at the gate for an operator (flow run {run_id}); "
        "`firstlight held` shows why; decide in the run's form or with: "
        + " | ".join(decide_commands(flow_run_name))
    )
    get_run_logger().warning(text)
    return text
