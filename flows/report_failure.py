"""Started by the failed-run automation: says loudly which run failed and why."""

from __future__ import annotations

from prefect import flow, get_run_logger


@flow(name="report-failure")
def report_failure(flow_run_id: str, flow_run_name: str, message: str) -> str:
    """Log the failure at ERROR level, where operators' log shipping picks it up."""
    run_id = flow_run_id.removeprefix("prefect.flow-run.")
    text = f"flow run {flow_run_name} ({run_id}) failed: {message}"
    get_run_logger().error(text)
    return text
