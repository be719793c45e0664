"""Oracle: prefixed tables, HEALPix B-tree, array DML for bulk loads.

No Oracle server runs here: the statements this backend issues are compiled
for the Oracle dialect in the tests, and a live suite runs when
``FIRSTLIGHT_TEST_ORACLE_URL`` is set (docs/oracle.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, insert, text

from firstlight.domain.manifest import TableDefinition
from firstlight.storage.backends.healpix import HealpixBackend
from firstlight.storage.catalogues import BulkLoader, Chunk, chunk_to_rows


class ArrayDmlLoader:
    """executemany per chunk: python-oracledb sends each batch as one array DML call."""

    def __init__(self, healpix_order: int) -> None:
        self.healpix_order = healpix_order

    def load(
        self, conn: Connection, table: Table, definition: TableDefinition, chunks: Iterable[Chunk]
    ) -> int:
        names = [c.name for c in table.columns]
        stmt = insert(table)
        total = 0
        for chunk in chunks:
            rows = chunk_to_rows(chunk, definition, self.healpix_order)
            if rows:
                conn.execute(stmt, [dict(zip(names, row, strict=True)) for row in rows])
                total += len(rows)
        return total


class OracleBackend(HealpixBackend):
    name = "oracle"

    def loader(self) -> BulkLoader:
        return ArrayDmlLoader(self.healpix_order)

    def gather_statistics(self, conn: Connection, table: Table) -> None:
        conn.execute(
            text("BEGIN DBMS_STATS.GATHER_TABLE_STATS(ownname => USER, tabname => :t); END;"),
            {"t": table.name.upper()},
        )
