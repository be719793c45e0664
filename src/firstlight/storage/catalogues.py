"""Catalogue tables: one physical table per release and catalogue.

A table is created bare, filled in chunks by a ``BulkLoader``, and only then
indexed (primary key, HEALPix position index) and analysed: loading into an
unindexed table is several times faster. The ``_hpx`` column holds the NESTED
HEALPix index of (ra, dec) at the configured order (see ``domain.sky``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    insert,
)
from sqlalchemy.types import TypeEngine

from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.domain.sky import healpix_index

HEALPIX_COLUMN = "_hpx"
Chunk = dict[str, np.ndarray]

_SQL_TYPES: dict[DataType, Callable[[], TypeEngine[Any]]] = {
    DataType.BOOLEAN: Boolean,
    DataType.INT16: SmallInteger,
    DataType.INT32: Integer,
    DataType.INT64: BigInteger,
    DataType.FLOAT32: lambda: Float(precision=24),
    DataType.FLOAT64: lambda: Float(precision=53),
    DataType.STRING: Text,
}


def physical_table_name(release_key: str, table_name: str) -> str:
    return f"cat_{release_key}__{table_name}"


def catalogue_table(definition: TableDefinition, physical_name: str) -> Table:
    """The SQLAlchemy table of a catalogue: its columns (lower-cased) plus ``_hpx``."""
    columns = [
        Column(col.name.lower(), _SQL_TYPES[col.datatype](), nullable=True)
        for col in definition.columns
    ]
    if definition.ra is not None:
        columns.append(Column(HEALPIX_COLUMN, BigInteger, nullable=True))
    return Table(physical_name, MetaData(), *columns)


class BulkLoader(Protocol):
    """Loads chunks of rows into a bare table; returns the row count."""

    def load(
        self, conn: Connection, table: Table, chunks: Iterable[Sequence[Sequence[Any]]]
    ) -> int: ...


class ExecutemanyLoader:
    """The portable loader: the driver's executemany, one batch per chunk."""

    def load(
        self, conn: Connection, table: Table, chunks: Iterable[Sequence[Sequence[Any]]]
    ) -> int:
        names = [c.name for c in table.columns]
        stmt = insert(table)
        total = 0
        for rows in chunks:
            if rows:
                conn.execute(stmt, [dict(zip(names, row, strict=True)) for row in rows])
                total += len(rows)
        return total


class SQLiteLoader:
    """SQLite: the raw driver's executemany, several times faster than Core's."""

    def load(
        self, conn: Connection, table: Table, chunks: Iterable[Sequence[Sequence[Any]]]
    ) -> int:
        cols = ", ".join(f'"{c.name}"' for c in table.columns)
        marks = ", ".join("?" for _ in table.columns)
        sql = f'INSERT INTO "{table.name}" ({cols}) VALUES ({marks})'  # noqa: S608  (names from our own Table)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        total = 0
        try:
            for rows in chunks:
                cursor.executemany(sql, rows)
                total += len(rows)
        finally:
            cursor.close()
        return total


def loader_for(engine: Engine) -> BulkLoader:
    if engine.dialect.name == "sqlite":
        return SQLiteLoader()
    return ExecutemanyLoader()


def chunk_to_rows(
    chunk: Chunk, definition: TableDefinition, healpix_order: int
) -> list[tuple[Any, ...]]:
    """Rows in table order, NaN and masked values as NULL, plus the HEALPix index."""
    lookup = {name.lower(): values for name, values in chunk.items()}
    columns = [_to_python(lookup[col.name.lower()], col.datatype) for col in definition.columns]
    if definition.ra is not None and definition.dec is not None:
        ra = np.ma.filled(np.ma.asarray(lookup[definition.ra.lower()], dtype=np.float64), np.nan)
        dec = np.ma.filled(np.ma.asarray(lookup[definition.dec.lower()], dtype=np.float64), np.nan)
        ok = np.isfinite(ra) & np.isfinite(dec)
        hpx = np.full(len(ra), -1, dtype=np.int64)
        hpx[ok] = healpix_index(ra[ok], dec[ok], healpix_order)
        columns.append([int(h) if h >= 0 else None for h in hpx.tolist()])
    return list(zip(*columns, strict=True))


def _to_python(values: np.ndarray, datatype: DataType) -> list[Any]:
    mask = np.ma.getmaskarray(values)
    data = np.ma.getdata(values)
    if datatype in (DataType.FLOAT32, DataType.FLOAT64):
        data = data.astype(np.float64)
        mask = mask | ~np.isfinite(data)
    elif datatype is DataType.STRING:
        data = data.astype(str)
    out: list[Any] = data.tolist()
    if mask.any():
        for i in np.flatnonzero(mask).tolist():
            out[i] = None
    return out


def build_indexes(conn: Connection, table: Table, definition: TableDefinition) -> None:
    """Indexes after the load: a unique key, the position index; then statistics."""
    if definition.primary_key is not None:
        key = table.c[definition.primary_key.lower()]
        Index(f"ux_{table.name}_key", key, unique=True).create(conn)
    if HEALPIX_COLUMN in table.c:
        Index(f"ix_{table.name}_hpx", table.c[HEALPIX_COLUMN]).create(conn)
    conn.exec_driver_sql(f'ANALYZE "{table.name}"')
