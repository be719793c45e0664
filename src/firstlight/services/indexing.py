"""The index step: search indexes built after the load, while still in staging.

Catalogues get their unique key and position index (q3c on PostgreSQL, the
HEALPix B-tree elsewhere), then statistics; observations their full-text
entries; the sky coverage (a MOC per embargo group, ``services.coverage``)
is recorded for the release pages. Only an indexed release may be promoted,
so no reader ever meets a half-built index.
"""

from __future__ import annotations

from firstlight.domain.ledger import Stage
from firstlight.errors import NotFoundError
from firstlight.services.context import Context
from firstlight.services.coverage import record_coverage
from firstlight.services.ticket import Ticket
from firstlight.storage.coverage import CoverageStore
from firstlight.storage.db import for_writing


def index_release(ctx: Context, ticket: Ticket) -> int:
    """Build the release's indexes; returns the number of tables indexed."""
    assert ticket.release_key is not None
    archive = ctx.archive
    with archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.INDEX):
        tables = archive.releases.tables(ticket.release_key)
        with for_writing(archive.engine).begin() as conn:
            for tab in tables:
                physical = archive.releases.physical_table(tab)
                archive.backend.build_catalogue_indexes(conn, physical, tab.definition)
            archive.backend.index_observations(conn, ticket.release_key)
        store = CoverageStore(ctx.settings.coverage_dir)
        record_coverage(
            archive,
            store,
            ticket.release_key,
            ctx.settings.coverage_order,
            healpix_order=ctx.settings.healpix_order,
        )
        archive.releases.mark_indexed(ticket.release_key)
        return len(tables)


def rebuild_indexes(ctx: Context, release_key: str) -> int:
    """Rebuild the indexes of a release (staging or promoted) and refresh statistics."""
    archive = ctx.archive
    if archive.releases.get(release_key) is None:
        raise NotFoundError(f"no release {release_key!r}")
    tables = [archive.releases.physical_table(t) for t in archive.releases.tables(release_key)]
    with for_writing(archive.engine).begin() as conn:
        archive.backend.rebuild_indexes(conn, tables, release_key)
    return len(tables)
