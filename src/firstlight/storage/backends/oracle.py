"""Oracle: prefixed tables, HEALPix B-tree, array DML for bulk loads.

- A release's catalogues are tables named ``cat_<release>__<table>`` beside
  each other, created bare, loaded by ``executemany`` (python-oracledb sends
  each chunk as one array DML round trip), then given their unique key, the
  ``_hpx`` B-tree and optimizer statistics (``DBMS_STATS``).
- Column types are Oracle's own where the generic ones fall short: IEEE
  ``BINARY_FLOAT``/``BINARY_DOUBLE`` for floats (SQLAlchemy refuses a decimal
  precision on Oracle's ``FLOAT``), ``VARCHAR2`` for text, so that a text
  primary key can be indexed (a CLOB cannot).
- No full-text index yet (Oracle Text needs CTXSYS).

No Oracle server runs here: the statements this backend issues are compiled
for the Oracle dialect in the tests, and a live suite runs when
``FIRSTLIGHT_TEST_ORACLE_URL`` is set (docs/oracle.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    MetaData,
    String,
    Table,
    insert,
    text,
)
from sqlalchemy.dialects import oracle
from sqlalchemy.types import TypeEngine

from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.storage.backends.healpix import HealpixBackend
from firstlight.storage.catalogues import (
    HEALPIX_COLUMN,
    SQL_TYPES,
    BulkLoader,
    Chunk,
    chunk_to_rows,
)

# VARCHAR2 in characters. A text key stays under Oracle's index key limit
# (6398 bytes with 8 KB blocks) at 4 bytes a character; other text may use the
# 4000 bytes VARCHAR2 holds with MAX_STRING_SIZE=STANDARD.
TEXT_CHARS = 4000
KEY_TEXT_CHARS = 1000

# Variants: the same Table still compiles for other dialects (the tests run it on SQLite).
ORACLE_TYPES: dict[DataType, Callable[[], TypeEngine[Any]]] = {
    **SQL_TYPES,
    DataType.FLOAT32: lambda: Float(precision=24).with_variant(oracle.BINARY_FLOAT(), "oracle"),
    DataType.FLOAT64: lambda: Float(precision=53).with_variant(oracle.BINARY_DOUBLE(), "oracle"),
    DataType.STRING: lambda: String(TEXT_CHARS),
}

GATHER_STATS = "BEGIN DBMS_STATS.GATHER_TABLE_STATS(ownname => USER, tabname => :t); END;"


def oracle_catalogue_table(definition: TableDefinition, name: str, *, schema: str | None) -> Table:
    """A catalogue's table with Oracle's types, its columns lower-cased, plus ``_hpx``."""
    key = definition.primary_key.lower() if definition.primary_key else None
    columns = []
    for col in definition.columns:
        name_lc = col.name.lower()
        if col.datatype is DataType.STRING and name_lc == key:
            sql_type: TypeEngine[Any] = String(KEY_TEXT_CHARS)
        else:
            sql_type = ORACLE_TYPES[col.datatype]()
        columns.append(Column(name_lc, sql_type, nullable=True))
    if definition.ra is not None:
        columns.append(Column(HEALPIX_COLUMN, BigInteger, nullable=True))
    return Table(name, MetaData(), *columns, schema=schema)


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

    def catalogue_table(self, definition: TableDefinition, schema: str | None, name: str) -> Table:
        return oracle_catalogue_table(definition, name, schema=schema)

    def loader(self) -> BulkLoader:
        return ArrayDmlLoader(self.healpix_order)

    def reindex(self, conn: Connection, table: Table) -> None:
        conn.execute(
            text(
                "BEGIN FOR i IN (SELECT index_name FROM user_indexes WHERE table_name = :t) LOOP "
                "EXECUTE IMMEDIATE 'ALTER INDEX \"' || i.index_name || '\" REBUILD'; END LOOP; END;"
            ),
            {"t": table.name.upper()},
        )

    def gather_statistics(self, conn: Connection, table: Table) -> None:
        # The name as the data dictionary holds it: upper case unless it had to be quoted.
        conn.execute(text(GATHER_STATS), {"t": conn.dialect.denormalize_name(table.name)})
