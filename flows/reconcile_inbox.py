"""Scheduled: deliveries in the inbox that no live run works on (a missed event, a dead run)."""

from __future__ import annotations

from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.states import Failed

from firstlight.events.reconcile import find_missed
from firstlight.services.context import context_for
from firstlight.services.gate import expire_unanswered_holds
from flows.release_delivery import RELEASE_DEPLOYMENT


@flow(name="reconcile-inbox")
def reconcile_inbox() -> list[str]:
    """Start a release run for each missed delivery; the ledger still decides what is new."""
    ctx = context_for()
    logger = get_run_logger()
    for hold in expire_unanswered_holds(ctx):
        logger.warning("%s: no operator decision in time; quarantined", hold.ticket.label)
        if hold.flow_run_id:
            _fail_suspended_run(hold.flow_run_id, f"{hold.ticket.label}: gate hold expired")
    missed = find_missed(
        ctx.settings.inbox_dir, ctx.archive.ledger, settle_seconds=ctx.settings.inbox_settle_seconds
    )
    for arrival in missed:
        logger.warning("missed arrival: %s at %s", arrival.resource_id, arrival.location)
        run_deployment(
            RELEASE_DEPLOYMENT,
            parameters={
                "delivery_path": arrival.location,
                "mission": arrival.mission,
                "delivery_id": arrival.delivery_id,
                "manifest_sha256": arrival.manifest_sha256,
            },
            timeout=0,  # start it, don't wait: each delivery is a run of its own
            # Not a subflow of this run: Prefect cannot suspend a subflow, so a
            # release the gate holds would fail instead of waiting for an operator.
            as_subflow=False,
            tags=["firstlight", "reconciled", f"mission:{arrival.mission}"],
        )
    return [arrival.location for arrival in missed]


def _fail_suspended_run(flow_run_id: str, message: str) -> None:
    """The suspended run of an expired hold ends Failed in the UI (best effort)."""
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(flow_run_id), Failed(message=message), force=True)
    except Exception as exc:  # not a flow run id (a run outside Prefect), or gone
        get_run_logger().warning("could not end run %s: %s", flow_run_id, exc)
