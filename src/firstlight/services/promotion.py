"""The promote step: files to their immutable versioned keys, then one switch.

Every product is copied and its sha256 checked again in the store (fixity);
embargoed products go to the private embargo store instead of the public one.
Only then does ONE transaction make the release public (and current, unless a
newer release of the mission already is: ``ReleaseStore.promote_in``), record
the step and close the ledger line. A crash at any instant leaves the old
state (a rerun copies nothing new and switches) or the new one (a rerun is
skipped as released and the inbox copy goes).
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
    current_release_key: str | None = None  # the mission's current release after this one

    @property
    def made_current(self) -> bool:
        return self.current_release_key == self.release_key


def promote_release(ctx: Context, ticket: Ticket) -> PromotionSummary:
    assert ticket.release_key is not None
    archive = ctx.archive
    started = now_utc()
    try:
        public, embargoed = _store_files(ctx, ticket)
        with archive.transaction() as conn:
            switch = archive.releases.promote_in(conn, ticket.release_key)
            archive.ledger.record_stage_in(
                conn,
                ticket.delivery_pk,
                ticket.attempt,
                Stage.PROMOTE,
                outcome="ok",
                started_at=started,
                detail=None if switch.made_current else f"current stays {switch.current}",
            )
            reason = f"released as {ticket.release_key}"
            if not switch.made_current and not switch.already:
                reason += f" (not current: {switch.current} is newer)"
            archive.ledger.finish_in(
                conn, ticket.delivery_pk, DeliveryState.RELEASED, reason=reason
            )
    except BaseException as exc:
        archive.ledger.record_stage(
            ticket.delivery_pk,
            ticket.attempt,
            Stage.PROMOTE,
            outcome="failed",
            started_at=started,
            detail=str(exc)[:2000],
        )
        raise
    remove_from_inbox(ctx, ticket)
    previous = None if switch.already or switch.previous == ticket.release_key else switch.previous
    return PromotionSummary(ticket.release_key, previous, public, embargoed, switch.current)


def _store_files(ctx: Context, ticket: Ticket) -> tuple[int, int]:
    """Copy every product to the public or the embargo store; (public, embargoed) counts."""
    assert ticket.release_key is not None
    store = ctx.archive.releases
    now = now_utc()
    public = embargoed = 0
    for product_id, rec in store.products(ticket.release_key):
        dark = rec.release_date is not None and rec.release_date > now
        target = ctx.embargo_store if dark else ctx.public_store
        target.put_file(ticket.path / rec.path, rec.storage_key, rec.sha256)
        store.mark_stored(product_id)
        embargoed += dark
        public += not dark
    return public, embargoed
