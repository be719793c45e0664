"""Running one ADQL query against the archive: bounded in rows and time, read-only.

What is public and the rows are read in ONE read-only transaction, so a query
sees one snapshot: never half a promotion, never a catalogue whose embargo
lifted between the two reads. ``maxrec + 1`` rows are fetched: the extra one
says that there were more (OVERFLOW). The time limit is the database's own:
``statement_timeout`` on PostgreSQL, a progress handler on SQLite,
``call_timeout`` on Oracle (the backend's ``QueryDialect`` says how), and it
covers the whole query: what the translation took is taken off what the
database may spend. A database's error reaches the user in ADQL's terms
(``QueryDialect.explain``), never in the database's own.

Tables a query brings along (TAP_UPLOAD, ``TemporaryTable``) are made on the
query's own connection before its read-only snapshot begins, and dropped
after it, whatever happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Connection, Engine

from firstlight.domain.manifest import now_utc
from firstlight.errors import ExternalError
from firstlight.query.adql import AdqlError, translate_adql
from firstlight.query.dialects import query_dialect
from firstlight.query.public import PublicColumn, PublicTable, public_tables_now
from firstlight.storage.archive import Archive

__all__ = ["AdqlError", "QueryResult", "QueryTimeout", "run_adql"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryResult:
    columns: list[PublicColumn]
    rows: list[tuple[Any, ...]]
    overflow: bool


class TemporaryTable(Protocol):
    """A table that exists for one query, on its connection (an uploaded one)."""

    def create(self, conn: Connection) -> PublicTable: ...
    def drop(self, conn: Connection) -> None: ...


class QueryTimeout(ExternalError):  # noqa: N818  (the name the service contract fixes)
    """The query ran past its time limit and was cancelled."""


def run_adql(
    archive: Archive,
    adql: str,
    *,
    maxrec: int,
    timeout_seconds: float,
    now: datetime | None = None,
    engine: Engine | None = None,
    temporary: Sequence[TemporaryTable] = (),
) -> QueryResult:
    """Parse, check, translate and run ``adql``; AdqlError, QueryTimeout on failure."""
    if maxrec < 0:
        raise ValueError(f"maxrec must be >= 0, got {maxrec}")
    now = now or now_utc()
    engine = engine or archive.engine
    dialect = query_dialect(engine.dialect.name)
    order = getattr(archive.backend, "healpix_order", 16)
    # One budget for everything: reading what is public, translating, running.
    deadline = time.monotonic() + timeout_seconds
    too_long = f"the query ran longer than {timeout_seconds:g} s"
    with (
        engine.connect() as conn,
        _temporary_tables(conn, temporary) as brought,
        dialect.read_only(conn, timeout_seconds),
    ):
        tables = public_tables_now(conn, archive, now=now) + brought
        try:
            translation = translate_adql(
                adql, tables, dialect, maxrec=maxrec, healpix_order=int(order)
            )
        except RecursionError as exc:  # bounded by parse_adql's limits; never a 500 anyway
            raise AdqlError("the query is too complex to translate") from exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise QueryTimeout(too_long)
        dialect.limit_time(conn, left, timeout_seconds - left)
        # The driver's own cursor, without parameters: no '%' or ':' in a literal is
        # then taken for a placeholder (the SQL holds no user text but literals).
        cursor = conn.connection.cursor()
        try:
            cursor.execute(translation.sql)
            rows = [tuple(r) for r in cursor.fetchmany(maxrec + 1)]
        except conn.dialect.loaded_dbapi.Error as exc:
            if dialect.is_timeout(exc):
                raise QueryTimeout(too_long) from exc
            # The database's own words name its internals: said in ADQL's terms instead.
            log.info("query failed in the database: %s", _first_line(exc))
            raise AdqlError(dialect.explain(exc)) from exc
        finally:
            cursor.close()
    overflow = len(rows) > maxrec
    rows = _folded(rows[:maxrec], translation.widths)
    columns = [_typed(c, i, rows) for i, c in enumerate(translation.columns)]
    rows = _normalised(columns, rows)
    return QueryResult(columns=columns, rows=rows, overflow=overflow)


@contextmanager
def _temporary_tables(
    conn: Connection, temporary: Sequence[TemporaryTable]
) -> Iterator[list[PublicTable]]:
    made: list[TemporaryTable] = []
    try:
        tables = []
        for table in temporary:
            made.append(table)
            tables.append(table.create(conn))
        yield tables
    finally:
        for table in made:
            table.drop(conn)


def _folded(rows: list[tuple[Any, ...]], widths: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """Geometry values' numbers folded into one list each (NULL if any number is)."""
    if not widths:
        return rows
    out = []
    for row in rows:
        cells: list[Any] = []
        at = 0
        for width in widths:
            part = row[at : at + width]
            at += width
            if width == 1:
                cells.append(part[0])
            else:
                cells.append(None if None in part else [float(v) for v in part])
        out.append(tuple(cells))
    return out


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_PY_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "long"),
    (float, "double"),
    (str, "char"),
    (datetime, "char"),
)


def _typed(col: PublicColumn, index: int, rows: list[tuple[Any, ...]]) -> PublicColumn:
    """A computed column's type, from its values (double when all are NULL)."""
    if col.datatype:
        return col
    sample = next((r[index] for r in rows if r[index] is not None), None)
    datatype = "double"
    for py_type, name in _PY_TYPES:
        if isinstance(sample, py_type):
            datatype = name
            break
    if isinstance(sample, Decimal):
        datatype = "double"
    xtype = "timestamp" if isinstance(sample, datetime) else None
    arraysize = "*" if datatype == "char" else None
    return replace(col, datatype=datatype, arraysize=arraysize, xtype=xtype)


def _normalised(columns: list[PublicColumn], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The same values whatever the database: aware UTC datetimes, floats for doubles,
    float32 values widened exactly."""
    fixes: dict[int, Any] = {}
    for i, col in enumerate(columns):
        if col.xtype == "timestamp":
            fixes[i] = _as_datetime
        elif col.datatype == "float":
            fixes[i] = _as_single
        elif col.datatype == "double":
            fixes[i] = _as_float
        elif col.datatype in ("short", "int", "long"):
            fixes[i] = _as_int
    if not fixes:
        return rows
    return [
        tuple(fixes[i](v) if i in fixes and v is not None else v for i, v in enumerate(row))
        for row in rows
    ]


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_float(value: Any) -> Any:
    return float(value) if isinstance(value, int | float | Decimal) else value


def _as_single(value: Any) -> Any:
    """A float32 value as the double it widens to (PostgreSQL's driver reads its text)."""
    return float(np.float32(value)) if isinstance(value, int | float | Decimal) else value


def _as_int(value: Any) -> Any:
    return int(value) if isinstance(value, int | float | Decimal) else value
