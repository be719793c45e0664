"""The promote step: files to their immutable versioned keys, then one switch.

Every product is copied and its sha256 checked again in the store (fixity);
embargoed products go to the private embargo store instead of the public one.
Only then does one transaction make the release current. A rerun finds the
files already there (identical content is a no-op) and the switch done.
"""

from __future__ import annotations

from dataclasses import dataclass

from firstlight.domain.ledger import DeliveryState, Stage
from firstlight.domain.manifest import now_utc
from firstlight.services.context import Context
from firstlight.services.inbox import remove_from_inbox
from firstlight.services.ticket import Ticket


@dataclass(frozen=True)
class PromotionSummary:
    release_key: str
    previous_release_key: str | None
    public_files: int
    embargoed_files: int


def promote_release(ctx: Context, ticket: Ticket) -> PromotionSummary:
    assert ticket.release_key is not None
    store = ctx.archive.releases
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.PROMOTE):
        now = now_utc()
        public = embargoed = 0
        for product_id, rec in store.products(ticket.release_key):
            dark = rec.release_date is not None and rec.release_date > now
            target = ctx.embargo_store if dark else ctx.public_store
            target.put_file(ticket.path / rec.path, rec.storage_key, rec.sha256)
            store.mark_stored(product_id)
            embargoed += dark
            public += not dark
        previous = store.promote(ticket.release_key)
    ctx.archive.ledger.finish(
        ticket.delivery_pk, DeliveryState.RELEASED, reason=f"released as {ticket.release_key}"
    )
    remove_from_inbox(ctx, ticket)
    return PromotionSummary(ticket.release_key, previous, public, embargoed)
