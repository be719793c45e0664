"""What differs between archive databases, behind one Protocol.

Everything else in ``storage`` is SQLAlchemy Core shared by all backends.
A backend decides where a release's catalogue rows live, how they are bulk
loaded, which indexes serve cone searches and full text, and how "current"
is published. ``backend_for`` picks one from the engine's dialect.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Engine, Table

from firstlight.config import Settings
from firstlight.domain.manifest import TableDefinition
from firstlight.domain.release import CatalogueTable
from firstlight.storage.catalogues import BulkLoader


class Backend(Protocol):
    name: str

    def catalogue_location(self, release_key: str, table_name: str) -> tuple[str | None, str]:
        """(schema, table) where a release's catalogue lives."""
        ...

    def catalogue_table(
        self, definition: TableDefinition, schema: str | None, name: str
    ) -> Table: ...

    def create_catalogue(
        self, conn: Connection, table: Table, definition: TableDefinition, rows: int | None
    ) -> None:
        """Create the bare table for ``rows`` rows (if known) before the load."""
        ...

    def prepare_release(self, conn: Connection, release_key: str) -> None:
        """Make room for a release's tables (a schema on PostgreSQL)."""
        ...

    def drop_release(self, conn: Connection, release_key: str, tables: list[Table]) -> None: ...

    def loader(self) -> BulkLoader: ...

    def build_catalogue_indexes(
        self, conn: Connection, table: Table, definition: TableDefinition
    ) -> None: ...

    def index_observations(self, conn: Connection, release_key: str) -> None: ...

    def rebuild_indexes(self, conn: Connection, tables: list[Table], release_key: str) -> None:
        """Rebuild a release's indexes in place and refresh statistics (content unchanged)."""
        ...

    def publish_current(self, conn: Connection, mission: str, tables: list[CatalogueTable]) -> None:
        """Inside the promotion transaction: expose the current release by mission name."""
        ...

    def text_match(self, release_key: str, text: str) -> ColumnElement[bool]:
        """Predicate on ``observations``: target or instrument names hold every word."""
        ...

    def cone(
        self,
        ra_col: Any,
        dec_col: Any,
        hpx_col: Any | None,
        *,
        ra: float,
        dec: float,
        radius: float,
    ) -> tuple[ColumnElement[bool], ColumnElement[float]]:
        """(predicate selecting rows in the cone, using an index; exact distance in degrees)."""
        ...


def backend_for(engine: Engine, settings: Settings) -> Backend:
    name = engine.dialect.name
    if name == "sqlite":
        from firstlight.storage.backends.sqlite import SQLiteBackend

        return SQLiteBackend(settings.healpix_order)
    if name == "postgresql":
        from firstlight.storage.backends.postgres import PostgresBackend

        return PostgresBackend(
            cluster=settings.cluster_catalogues,
            partition_rows=settings.pg_partition_rows,
            partitions=settings.pg_partitions,
            reader_role=settings.query_role,
            sort_run_rows=settings.pg_sort_run_rows,
            index_connections=settings.pg_index_connections,
            maintenance_work_mem_mib=settings.pg_maintenance_work_mem_mib,
        )
    if name == "oracle":
        from firstlight.storage.backends.oracle import OracleBackend

        return OracleBackend(settings.healpix_order)
    raise ValueError(f"no archive backend for the {name!r} dialect (sqlite, postgresql, oracle)")
