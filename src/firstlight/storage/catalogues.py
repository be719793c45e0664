"""Catalogue tables: one physical table per release and catalogue.

A table is created bare, filled in chunks by its backend's ``BulkLoader``,
and only then indexed (primary key, position index) and analysed: loading
into an unindexed table is several times faster. Where the backend has no
spatial index of its own (SQLite, Oracle) an ``_hpx`` column holds the NESTED
HEALPix index of (ra, dec) at the configured order (see ``domain.sky``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.domain.sky import healpix_index

HEALPIX_COLUMN = "_hpx"
Chunk = dict[str, np.ndarray]
MAX_IDENTIFIER = 63  # PostgreSQL's limit, the strictest of our backends

SQL_TYPES: dict[DataType, Callable[[], TypeEngine[Any]]] = {
    DataType.BOOLEAN: Boolean,
    DataType.INT16: SmallInteger,
    DataType.INT32: Integer,
    DataType.INT64: BigInteger,
    DataType.FLOAT32: lambda: Float(precision=24),
    DataType.FLOAT64: lambda: Float(precision=53),
    DataType.STRING: Text,
}


class BulkLoader(Protocol):
    """Loads chunks of a catalogue into its bare table; returns the row count."""

    def load(
        self, conn: Connection, table: Table, definition: TableDefinition, chunks: Iterable[Chunk]
    ) -> int: ...


def prefixed_name(release_key: str, table_name: str) -> str:
    """A table name unique across releases, for backends without a schema per release."""
    name = f"cat_{release_key}__{table_name}"
    if len(name) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(release_key.encode()).hexdigest()[:12]
    return f"cat_{digest}__{table_name}"[:MAX_IDENTIFIER]


def catalogue_table(
    definition: TableDefinition, name: str, *, schema: str | None, healpix: bool
) -> Table:
    """The SQLAlchemy table of a catalogue: its columns (lower-cased), maybe ``_hpx``."""
    columns = [
        Column(col.name.lower(), SQL_TYPES[col.datatype](), nullable=True)
        for col in definition.columns
    ]
    if healpix and definition.ra is not None:
        columns.append(Column(HEALPIX_COLUMN, BigInteger, nullable=True))
    return Table(name, MetaData(), *columns, schema=schema)


def chunk_to_rows(
    chunk: Chunk, definition: TableDefinition, healpix_order: int | None
) -> list[tuple[Any, ...]]:
    """Rows in table order, NaN and masked values as NULL, maybe the HEALPix index."""
    lookup = {name.lower(): values for name, values in chunk.items()}
    columns = [to_python(lookup[col.name.lower()], col.datatype) for col in definition.columns]
    if healpix_order is not None and definition.ra is not None and definition.dec is not None:
        ra = np.ma.filled(np.ma.asarray(lookup[definition.ra.lower()], dtype=np.float64), np.nan)
        dec = np.ma.filled(np.ma.asarray(lookup[definition.dec.lower()], dtype=np.float64), np.nan)
        ok = np.isfinite(ra) & np.isfinite(dec)
        hpx = np.full(len(ra), -1, dtype=np.int64)
        hpx[ok] = healpix_index(ra[ok], dec[ok], healpix_order)
        columns.append([int(h) if h >= 0 else None for h in hpx.tolist()])
    return list(zip(*columns, strict=True))


def null_mask(values: np.ndarray, datatype: DataType) -> np.ndarray:
    """Which values are NULL: masked ones, and NaN for floats (NaN is not a value here)."""
    mask = np.ma.getmaskarray(values)
    if datatype in (DataType.FLOAT32, DataType.FLOAT64):
        mask = mask | ~np.isfinite(np.ma.getdata(values).astype(np.float64))
    return mask


def to_python(values: np.ndarray, datatype: DataType) -> list[Any]:
    mask = null_mask(values, datatype)
    data = np.ma.getdata(values)
    if datatype in (DataType.FLOAT32, DataType.FLOAT64):
        data = data.astype(np.float64)
    elif datatype is DataType.STRING:
        data = data.astype(str)
    out: list[Any] = data.tolist()
    if mask.any():
        for i in np.flatnonzero(mask).tolist():
            out[i] = None
    return out
