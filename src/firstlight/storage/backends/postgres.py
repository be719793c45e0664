"""PostgreSQL: a schema per release, binary COPY, q3c, views for "current".

- A release's catalogues live in a schema named after it (``gaia_dr4_v1``):
  isolated, immutable once promoted, droppable whole while in staging.
- Catalogues load by binary COPY into bare tables, their rows sent in q3c
  pixel order (``skyorder``: an external sort in the loader, so no
  ``CLUSTER`` rewrites the table afterwards), then get their unique key and
  a q3c index on (ra, dec), built at once over ``index_connections``
  connections, and statistics. Catalogues of ``partition_rows`` rows or more
  are range-partitioned by q3c pixel (docs/scaling.md).
- Promotion re-points views in the mission's schema (``gaia.sources``) inside
  the same transaction as the ``current_releases`` switch.
- Promotion also grants the query service's read-only role what became
  public (``storage.reader``).
- ObsCore positions have a q3c index and its text columns a GIN full-text
  index, both created by the migrations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, func, literal, text
from sqlalchemy.schema import CreateTable

from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.domain.release import CatalogueTable
from firstlight.domain.sky import q3c_search_radius
from firstlight.storage import fulltext
from firstlight.storage.backends.pgcopy import HEADER, TRAILER, encode_ahead, fixed_width
from firstlight.storage.backends.pgindex import run_concurrently
from firstlight.storage.backends.skyorder import in_pixel_order
from firstlight.storage.catalogues import BulkLoader, Chunk, catalogue_table, chunk_to_rows
from firstlight.storage.reader import grant_public_access, lock_grants

PG_TYPES: dict[DataType, str] = {
    DataType.BOOLEAN: "bool",
    DataType.INT16: "int2",
    DataType.INT32: "int4",
    DataType.INT64: "int8",
    DataType.FLOAT32: "float4",
    DataType.FLOAT64: "float8",
    DataType.STRING: "text",
}


def _ident(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _qualified(conn: Connection, table: Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


class CopyLoader:
    """psycopg 3 binary COPY inside the caller's transaction, rows in sky order if asked."""

    def __init__(self, *, sky_order: bool = False, run_rows: int = 250_000) -> None:
        self.sky_order = sky_order
        self.run_rows = run_rows

    def load(
        self, conn: Connection, table: Table, definition: TableDefinition, chunks: Iterable[Chunk]
    ) -> int:
        ordered = self.sky_order and definition.ra is not None and definition.dec is not None
        if ordered:
            chunks = in_pixel_order(
                chunks, definition, run_rows=self.run_rows, chunk_rows=COPY_CHUNK_ROWS
            )
        cols = ", ".join(_ident(conn, c.name) for c in table.columns)
        sql = f"COPY {_qualified(conn, table)} ({cols}) FROM STDIN (FORMAT BINARY)"
        raw = conn.connection.driver_connection
        total = 0
        with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
            if fixed_width(definition):
                copy.write(HEADER)
                # The next chunk is read and encoded while this one is sent.
                for rows, data in encode_ahead(chunks, definition, keep_order=ordered):
                    copy.write(data)
                    total += rows
                    del data  # sent: its memory may go before the next one arrives
                copy.write(TRAILER)
            else:
                copy.set_types([PG_TYPES[c.datatype] for c in definition.columns])
                for chunk in chunks:
                    for row in chunk_to_rows(chunk, definition, None):
                        copy.write_row(row)
                        total += 1
        return total


# Rows per chunk the sky-ordered merge hands to the encoder.
COPY_CHUNK_ROWS = 100_000

# q3c's pixel index covers the six cube faces: [0, 6 * 2**60).
Q3C_IPIX_END = 6 * 2**60


class PostgresBackend:
    name = "postgresql"

    def __init__(
        self,
        *,
        cluster: bool = True,
        partition_rows: int = 50_000_000,
        partitions: int = 24,
        reader_role: str | None = None,
        sort_run_rows: int = 250_000,
        index_connections: int = 2,
        maintenance_work_mem_mib: int = 512,
    ) -> None:
        # cluster: rows stored in q3c order, which the loader now sends them in.
        self.cluster = cluster
        self.sort_run_rows = sort_run_rows
        self.index_connections = index_connections
        self.maintenance_work_mem_mib = maintenance_work_mem_mib
        self.partition_rows = partition_rows
        self.partitions = partitions
        self.reader_role = reader_role

    def create_catalogue(
        self, conn: Connection, table: Table, definition: TableDefinition, rows: int | None
    ) -> None:
        """A bare table; partitioned by q3c pixel range when the catalogue is large."""
        large = rows is not None and rows >= self.partition_rows
        if not large or definition.ra is None or definition.dec is None:
            table.create(conn)
            return
        ra, dec = _ident(conn, definition.ra.lower()), _ident(conn, definition.dec.lower())
        ddl = str(CreateTable(table).compile(dialect=conn.dialect)).rstrip()
        conn.exec_driver_sql(f"{ddl} PARTITION BY RANGE (q3c_ang2ipix({ra}, {dec}))")
        parent, span = _qualified(conn, table), -(-Q3C_IPIX_END // self.partitions)
        for i in range(self.partitions):
            lo, hi = i * span, min((i + 1) * span, Q3C_IPIX_END)
            part = self._partition_name(conn, table, f"p{i:03d}")
            conn.exec_driver_sql(
                f"CREATE TABLE {part} PARTITION OF {parent} FOR VALUES FROM ({lo}) TO ({hi})"
            )
        # Rows without a position have a NULL pixel: they need a home too.
        default = self._partition_name(conn, table, "pnull")
        conn.exec_driver_sql(f"CREATE TABLE {default} PARTITION OF {parent} DEFAULT")

    @staticmethod
    def _partition_name(conn: Connection, table: Table, suffix: str) -> str:
        schema = _ident(conn, table.schema or "public")
        return f"{schema}.{_ident(conn, f'{table.name}_{suffix}'[:63])}"

    def catalogue_location(self, release_key: str, table_name: str) -> tuple[str | None, str]:
        return release_key, table_name

    def catalogue_table(self, definition: TableDefinition, schema: str | None, name: str) -> Table:
        return catalogue_table(definition, name, schema=schema, healpix=False)

    def prepare_release(self, conn: Connection, release_key: str) -> None:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {_ident(conn, release_key)}")

    def drop_release(self, conn: Connection, release_key: str, tables: list[Table]) -> None:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {_ident(conn, release_key)} CASCADE")

    def loader(self) -> BulkLoader:
        return CopyLoader(sky_order=self.cluster, run_rows=self.sort_run_rows)

    def build_catalogue_indexes(
        self, conn: Connection, table: Table, definition: TableDefinition
    ) -> None:
        # A partitioned table is indexed partition by partition: a unique index
        # cannot span partitions (validation already proved the key unique).
        targets = self._partitions(conn, table, definition) or [table]
        plans = [(target, self._index_builds(conn, target, definition)) for target in targets]
        run_concurrently(
            conn.engine,
            [sql for _, builds in plans for sql, _ in builds],
            connections=self.index_connections,
            maintenance_work_mem_mib=self.maintenance_work_mem_mib,
        )
        if self.cluster and definition.ra is not None and definition.dec is not None:
            # The rows are already in q3c order (the loader sorted them): mark the
            # index as the table's order, so a later plain CLUSTER keeps it.
            for target, builds in plans:
                position = builds[-1][1]  # the q3c index comes last
                conn.exec_driver_sql(
                    f"ALTER TABLE {_qualified(conn, target)} CLUSTER ON {position}"
                )
        # On a partitioned table ANALYZE samples every partition and recurses into each.
        conn.exec_driver_sql(f"ANALYZE {_qualified(conn, table)}")

    def _index_builds(
        self, conn: Connection, table: Table, definition: TableDefinition
    ) -> list[tuple[str, str]]:
        """(CREATE INDEX statement, index name) of a plain table: its key, then its position."""
        target = _qualified(conn, table)
        builds = []
        if definition.primary_key is not None:
            key = _ident(conn, definition.primary_key.lower())
            index = _ident(conn, f"ux_{table.name}"[:63])
            builds.append((f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {target} ({key})", index))
        if definition.ra is not None and definition.dec is not None:
            index = _ident(conn, f"ix_{table.name}"[:59] + "_q3c")
            ra, dec = _ident(conn, definition.ra.lower()), _ident(conn, definition.dec.lower())
            builds.append(
                (
                    f"CREATE INDEX IF NOT EXISTS {index} ON {target} (q3c_ang2ipix({ra}, {dec}))",
                    index,
                )
            )
        return builds

    @staticmethod
    def _partitions(conn: Connection, table: Table, definition: TableDefinition) -> list[Table]:
        rows = conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:parent) ORDER BY c.relname"
            ),
            {"parent": _qualified(conn, table)},
        )
        return [catalogue_table(definition, r[0], schema=table.schema, healpix=False) for r in rows]

    def index_observations(self, conn: Connection, release_key: str) -> None:
        conn.exec_driver_sql("ANALYZE observations")

    def rebuild_indexes(self, conn: Connection, tables: list[Table], release_key: str) -> None:
        for table in tables:
            target = _qualified(conn, table)
            conn.exec_driver_sql(f"REINDEX TABLE {target}")
            conn.exec_driver_sql(f"ANALYZE {target}")
        self.index_observations(conn, release_key)

    def publish_current(self, conn: Connection, mission: str, tables: list[CatalogueTable]) -> None:
        if self.reader_role is not None:
            # Before the views: a grant change waiting on them would deadlock with us.
            lock_grants(conn)
        schema = _ident(conn, mission)
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for tab in tables:
            view = f"{schema}.{_ident(conn, tab.table_name)}"
            source = (
                f"{_ident(conn, tab.physical_schema or 'public')}.{_ident(conn, tab.physical_name)}"
            )
            # DROP + CREATE, not REPLACE: a new release may have other columns.
            # Both are transactional: readers see the old view or the new one.
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {view}")
            # security_invoker: reading the view needs the grant on the release's table,
            # which the reader role has only while the table is public (storage.reader).
            conn.exec_driver_sql(
                f"CREATE VIEW {view} WITH (security_invoker = true) AS SELECT * FROM {source}"  # noqa: S608
            )
        if self.reader_role is not None:
            # The query service's role reads the release just made public (and
            # the shared tables), in the same transaction as the switch.
            grant_public_access(conn, self.reader_role, create=False)

    def text_match(self, release_key: str, text: str) -> ColumnElement[bool]:
        return fulltext.postgres_match(text)

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
        ra0, dec0 = literal(ra), literal(dec)
        # q3c_join plans 4 index ranges where q3c_radial_query plans 50 (same rows). It
        # keeps distances strictly below its radius and misses points below ~3e-6 deg:
        # it searches a widened radius and the exact distance <= radius decides, as ADQL.
        search = literal(q3c_search_radius(radius))
        distance = func.q3c_dist(ra_col, dec_col, ra0, dec0)
        predicate = func.q3c_join(ra0, dec0, ra_col, dec_col, search).is_(True)
        return and_(predicate, distance <= literal(radius)), distance
