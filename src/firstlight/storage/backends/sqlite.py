"""SQLite, the embedded default: prefixed tables, HEALPix B-tree, FTS5 full text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, literal

from firstlight.domain.manifest import TableDefinition
from firstlight.storage import fulltext
from firstlight.storage.backends.healpix import HealpixBackend
from firstlight.storage.catalogues import BulkLoader, Chunk, chunk_to_rows


class SQLiteLoader:
    """The raw driver's executemany inside the caller's transaction."""

    def __init__(self, healpix_order: int) -> None:
        self.healpix_order = healpix_order

    def load(
        self, conn: Connection, table: Table, definition: TableDefinition, chunks: Iterable[Chunk]
    ) -> int:
        cols = ", ".join(f'"{c.name}"' for c in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})'  # noqa: S608  (our own names)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        total = 0
        try:
            for chunk in chunks:
                rows = chunk_to_rows(chunk, definition, self.healpix_order)
                cursor.executemany(sql, rows)
                total += len(rows)
        finally:
            cursor.close()
        return total


class SQLiteBackend(HealpixBackend):
    name = "sqlite"

    def loader(self) -> BulkLoader:
        return SQLiteLoader(self.healpix_order)

    def reindex(self, conn: Connection, table: Table) -> None:
        conn.exec_driver_sql(f'REINDEX "{table.name}"')

    def gather_statistics(self, conn: Connection, table: Table) -> None:
        conn.exec_driver_sql(f'ANALYZE "{table.name}"')

    def index_observations(self, conn: Connection, release_key: str) -> None:
        fulltext.index_release(conn, release_key)
        conn.exec_driver_sql("ANALYZE observations")

    def drop_release(self, conn: Connection, release_key: str, tables: list[Table]) -> None:
        super().drop_release(conn, release_key, tables)
        fulltext.remove_release(conn, release_key)

    def text_match(self, release_key: str, text: str) -> ColumnElement[bool]:
        return fulltext.sqlite_match(release_key, text)

    def distance(self, ra_col: Any, dec_col: Any, ra: float, dec: float) -> ColumnElement[float]:
        # SQLite has no trigonometry built in: storage.db registers this function.
        return func.ang_sep_deg(literal(ra), literal(dec), ra_col, dec_col)
