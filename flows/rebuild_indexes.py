"""On demand: rebuild a release's search indexes and statistics."""

from __future__ import annotations

from prefect import flow, get_run_logger

from firstlight.services.context import context_for
from firstlight.services.indexing import rebuild_indexes as rebuild


@flow(name="rebuild-indexes")
def rebuild_indexes(release_key: str) -> int:
    tables = rebuild(context_for(), release_key)
    get_run_logger().info(
        "%s: rebuilt indexes of %d tables and of its observations", release_key, tables
    )
    return tables
