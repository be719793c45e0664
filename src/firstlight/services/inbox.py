"""The inbox's side of a delivery's life: it leaves once its fate is recorded.

Deliveries ingested from elsewhere (``firstlight ingest PATH``) belong to
their producer and are never moved or deleted.
"""

from __future__ import annotations

import shutil

from firstlight.domain.ledger import DeliveryState
from firstlight.services.context import Context
from firstlight.services.ticket import Ticket


def remove_from_inbox(ctx: Context, ticket: Ticket) -> None:
    """Call only after the ledger holds the delivery's terminal state (and its bytes
    are in the public store or in quarantine)."""
    inbox = ctx.settings.inbox_dir.resolve()
    if ticket.path.is_relative_to(inbox) and ticket.path != inbox:
        shutil.rmtree(ticket.path, ignore_errors=True)


def settle_duplicate(ctx: Context, ticket: Ticket) -> bool:
    """A re-drop of a delivery already released leaves the inbox; returns whether it did.

    Its identity and manifest sha256 are those of the released delivery, whose
    files are in the public store: nothing is lost. A duplicate skipped because
    another run is working on it stays: that run is reading it.
    """
    entry = ctx.archive.ledger.entry(ticket.delivery_pk)
    if entry.state is not DeliveryState.RELEASED or not ticket.path.is_dir():
        return False
    remove_from_inbox(ctx, ticket)
    return not ticket.path.exists()
