"""The index step: search indexes built after the load, while still in staging.

Catalogues get their unique key and HEALPix position index, then statistics;
observations their full-text entries. Only an indexed release may be promoted,
so no reader ever meets a half-built index.
"""

from __future__ import annotations

from firstlight.domain.ledger import Stage
from firstlight.services.context import Context
from firstlight.services.ticket import Ticket
from firstlight.storage import fulltext
from firstlight.storage.catalogues import build_indexes, catalogue_table
from firstlight.storage.db import for_writing


def index_release(ctx: Context, ticket: Ticket) -> int:
    """Build the release's indexes; returns the number of tables indexed."""
    assert ticket.release_key is not None
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.INDEX):
        tables = ctx.archive.releases.tables(ticket.release_key)
        with for_writing(ctx.archive.engine).begin() as conn:
            for tab in tables:
                build_indexes(
                    conn, catalogue_table(tab.definition, tab.physical_name), tab.definition
                )
            fulltext.index_release(conn, ticket.release_key)
            conn.exec_driver_sql("ANALYZE observations")
        ctx.archive.releases.mark_indexed(ticket.release_key)
        return len(tables)
