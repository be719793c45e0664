"""A run's claim on its delivery, kept alive while the run is.

Leases are short (``Settings.claim_lease_seconds``) and renewed from a
background thread every sixth of the lease, so a run that dies (a worker
killed, a machine gone) lets go of its delivery within one lease, and the
reconciler hands it to another run. A run that stops of its own accord (cut
short by a signal, a failure that leaves the delivery for a rerun) gives the
claim up at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from firstlight.services.context import Context
from firstlight.services.ticket import Ticket

log = logging.getLogger(__name__)


@contextmanager
def keep_claim(ctx: Context, ticket: Ticket, claim_token: str) -> Iterator[threading.Event]:
    """Renew the claim while the block runs; the event is set if the claim was lost."""
    ledger = ctx.archive.ledger
    lost = threading.Event()
    stop = threading.Event()
    period = max(ledger.lease_seconds / 6, 0.5)

    def renew() -> None:
        while not stop.wait(period):
            try:
                if not ledger.renew_claim(ticket.delivery_pk, claim_token):
                    lost.set()
                    return
            except Exception:  # the database unreachable: try again, the lease decides
                log.warning("could not renew the claim on %s", ticket.label, exc_info=True)

    thread = threading.Thread(target=renew, name=f"claim-{ticket.delivery_pk}", daemon=True)
    thread.start()
    try:
        yield lost
    except BaseException:
        stop.set()
        thread.join()
        # Cut short: the next attempt may start at once (a terminal state is unaffected).
        ledger.release_claim(ticket.delivery_pk, claim_token)
        raise
    stop.set()
    thread.join()
