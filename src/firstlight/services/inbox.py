"""The inbox's side of a delivery's life: it leaves once its fate is recorded.

Deliveries ingested from elsewhere (``firstlight ingest PATH``) belong to
their producer and are never moved or deleted.
"""

from __future__ import annotations

import shutil

from firstlight.services.context import Context
from firstlight.services.ticket import Ticket


def remove_from_inbox(ctx: Context, ticket: Ticket) -> None:
    """Call only after the ledger holds the delivery's terminal state (and its bytes
    are in the public store or in quarantine)."""
    inbox = ctx.settings.inbox_dir.resolve()
    if ticket.path.is_relative_to(inbox) and ticket.path != inbox:
        shutil.rmtree(ticket.path, ignore_errors=True)
