"""The release flow: verify -> validate -> ingest -> index -> promote.

Thin orchestration: the ledger decides whether an arrival is new work; a
delivery that fails a check is quarantined and the run ends Failed with the
reason; anything else that fails (the database down, a full disk) leaves the
delivery in the inbox for a rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from prefect.states import Completed

from firstlight.domain.findings import DeliveryRejected
from firstlight.domain.ledger import Decision
from firstlight.services.verification import Announced
from tasks.steps import (
    admit_task,
    index_task,
    ingest_task,
    promote_task,
    quarantine_task,
    settle_duplicate_task,
    validate_task,
    verify_task,
)

DEPLOYMENT = "release-delivery"
# How the API names the deployment: "<flow name>/<deployment name>".
RELEASE_DEPLOYMENT = f"release-delivery/{DEPLOYMENT}"


@dataclass(frozen=True)
class ReleaseOutcome:
    status: str  # released | skipped
    mission: str
    delivery_id: str
    delivery_pk: int
    release_key: str | None
    detail: str


def _run_name() -> str:
    path = flow_run.parameters.get("delivery_path", "")
    return f"release-{Path(str(path)).name}"


def _name_run(mission: str, delivery_id: str) -> None:
    """Once the manifest is read: name the run after the delivery, tag it by mission."""
    if flow_run.id is None:
        return
    with get_client(sync_client=True) as client:
        client.update_flow_run(
            UUID(flow_run.id),
            name=f"{mission}/{delivery_id}",
            tags=[*flow_run.tags, "firstlight", f"mission:{mission}"],
        )


@flow(name="release-delivery", flow_run_name=_run_name)
def release_delivery(
    delivery_path: str,
    landed_at: datetime | None = None,
    mission: str | None = None,
    delivery_id: str | None = None,
    manifest_sha256: str | None = None,
) -> ReleaseOutcome:
    """Make the delivery at ``delivery_path`` a public release, or quarantine it.

    The other parameters come from the arrival event: ``landed_at``, when the
    manifest landed (where time-to-data starts; default: admission), and the
    announced identity, which lets a late duplicate event whose delivery has
    already left the inbox be recognised and skipped.
    """
    logger = get_run_logger()
    announced = (
        Announced(mission, delivery_id, manifest_sha256)
        if mission and delivery_id and manifest_sha256
        else None
    )
    ticket = admit_task(delivery_path, landed_at, announced)
    _name_run(ticket.mission, ticket.delivery_id)
    if ticket.decision is Decision.SKIP:
        logger.info("%s: %s", ticket.label, ticket.reason)
        settle_duplicate_task(ticket)
        outcome = ReleaseOutcome(
            "skipped",
            ticket.mission,
            ticket.delivery_id,
            ticket.delivery_pk,
            ticket.release_key,
            ticket.reason,
        )
        # A completed run named "Skipped": duplicates stand out in the UI.
        return Completed(name="Skipped", message=ticket.reason, data=outcome)  # type: ignore[return-value]
    try:
        verify_task(ticket)
        validate_task(ticket)
        ingested = ingest_task(ticket)
        index_task(ticket)
        promoted = promote_task(ticket)
    except DeliveryRejected as rejected:
        quarantine_task(ticket, rejected.report)
        raise
    rows = ", ".join(f"{path}: {n:,} rows" for path, n in ingested.table_rows.items())
    detail = (
        f"{promoted.release_key} is current (was {promoted.previous_release_key or 'none'}); "
        f"{ingested.observations} observations, {rows or 'no catalogues'}; "
        f"{promoted.public_files} public and {promoted.embargoed_files} embargoed files"
    )
    create_markdown_artifact(
        key=f"release-{ticket.mission}".replace("_", "-"),
        markdown=f"## {ticket.label} released\n\n{detail}\n",
        description=f"Release of {ticket.label}",
    )
    logger.info("%s: %s", ticket.label, detail)
    return ReleaseOutcome(
        "released",
        ticket.mission,
        ticket.delivery_id,
        ticket.delivery_pk,
        promoted.release_key,
        detail,
    )
