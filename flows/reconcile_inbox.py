"""Scheduled: deliveries that sit in the inbox with no ledger line (a missed event) are released."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.deployments import run_deployment

from firstlight.events.reconcile import find_missed
from firstlight.services.context import context_for
from flows.release_delivery import RELEASE_DEPLOYMENT


@flow(name="reconcile-inbox")
def reconcile_inbox() -> list[str]:
    """Start a release run for each missed delivery; the ledger still decides what is new."""
    ctx = context_for()
    missed = find_missed(
        ctx.settings.inbox_dir, ctx.archive.ledger, settle_seconds=ctx.settings.inbox_settle_seconds
    )
    logger = get_run_logger()
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
            tags=["firstlight", "reconciled", f"mission:{arrival.mission}"],
        )
    return [arrival.location for arrival in missed]
