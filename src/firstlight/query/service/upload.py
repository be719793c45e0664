"""TAP_UPLOAD: a user's VOTables, queried as ``TAP_UPLOAD.<name>`` for one query.

DALI 1.1 section 3.4.5: ``UPLOAD=name,param:part`` names a table and the
multipart part holding it (``params.upload_references`` reads it).

``read_uploads`` checks the names and the limits (``query_upload_max_bytes``
per request, ``query_upload_max_rows`` per table) and reads each VOTable with
the archive's own reader (``formats.votable``: TABLEDATA streamed, BINARY,
BINARY2 and FITS through astropy). ``UploadedTable`` then lives for one
query: a temporary table on the query's connection (only that session sees
it), made before the read-only snapshot begins, analysed so the planner
knows its size, and dropped when the query ends. A catalogue's spatial index
serves a crossmatch with it (``CONTAINS(POINT(c.ra, c.dec), CIRCLE(u.ra,
u.dec, r))`` becomes q3c_join on the catalogue's index on PostgreSQL).
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Table

from firstlight.domain.manifest import Column
from firstlight.formats.detect import FormatError
from firstlight.formats.votable import VOTableReader
from firstlight.query.dialects import QueryDialect, query_dialect
from firstlight.query.public import (
    VOTABLE_TYPES,
    CatalogueSource,
    PublicColumn,
    PublicTable,
    adql_name,
)
from firstlight.query.service.params import ParameterError
from firstlight.storage.catalogues import to_python

SCHEMA = "tap_upload"
_CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int  # all uploaded tables of one request together
    max_rows: int  # of each table


@dataclass(frozen=True)
class UploadedTable:
    """One uploaded table's columns and rows, ready to become a temporary table."""

    name: str  # as the user named it; ADQL sees it lower-cased: TAP_UPLOAD.name
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]

    def _table(self, dialect: QueryDialect) -> Table:
        return dialect.temporary_table(f"fl_upload_{self.name.lower()}", self.columns)

    def public_table(self, dialect: QueryDialect) -> PublicTable:
        columns = tuple(
            PublicColumn(
                name=adql_name(c.name.lower()),
                datatype=VOTABLE_TYPES[c.datatype],
                arraysize="*" if VOTABLE_TYPES[c.datatype] == "char" else None,
                unit=c.unit,
                ucd=c.ucd,
                description=c.description,
            )
            for c in self.columns
        )
        return PublicTable(
            schema_name=SCHEMA,
            table_name=f"{SCHEMA}.{self.name.lower()}",
            description="A table uploaded with this query",
            table_type="table",
            columns=columns,
            # No position columns: the upload has no spatial index (the catalogue's serves).
            source=CatalogueSource(
                release_key="",
                physical_schema=dialect.temporary_schema,
                physical_name=self._table(dialect).name,
                ra=None,
                dec=None,
                healpix=None,
            ),
        )

    def create(self, conn: Connection) -> PublicTable:
        """Make and fill the temporary table on ``conn`` (in its own transaction)."""
        dialect = query_dialect(conn.dialect.name)
        table = self._table(dialect)
        with conn.begin():
            table.create(conn)
            if self.rows:
                names = [c.name for c in table.columns]
                conn.execute(table.insert(), [dict(zip(names, r, strict=True)) for r in self.rows])
            if dialect.analyse_temporary:
                conn.exec_driver_sql(f"ANALYZE {table.name}")
        return self.public_table(dialect)

    def drop(self, conn: Connection) -> None:
        dialect = query_dialect(conn.dialect.name)
        with conn.begin():
            dialect.drop_temporary(conn, self._table(dialect))


def read_uploads(
    references: Sequence[tuple[str, str]], parts: Mapping[str, bytes], limits: UploadLimits
) -> list[UploadedTable]:
    """The tables ``references`` name, read from ``parts``; ParameterError when refused."""
    total = sum(len(parts.get(part, b"")) for _, part in references)
    if total > limits.max_bytes:
        raise ParameterError(
            f"UPLOAD: {total} bytes uploaded; this service takes at most {limits.max_bytes}"
        )
    tables: list[UploadedTable] = []
    for name, part in references:
        data = parts.get(part)
        if data is None:
            raise ParameterError(f"UPLOAD {name}: the request has no part named {part!r}")
        tables.append(_read_table(name, data, limits.max_rows))
    return tables


def _read_table(name: str, data: bytes, max_rows: int) -> UploadedTable:
    with tempfile.TemporaryDirectory(prefix="fl-upload-") as folder:
        path = Path(folder) / f"{secrets.token_hex(8)}.vot"
        path.write_bytes(data)
        try:
            reader = VOTableReader(path)
            columns = tuple(reader.columns())
            if len({c.name.lower() for c in columns}) != len(columns):
                raise ParameterError(f"UPLOAD {name}: two columns differ only in case")
            rows: list[tuple[Any, ...]] = []
            for chunk in reader.iter_chunks(_CHUNK_ROWS):
                values = [to_python(chunk[c.name], c.datatype) for c in columns]
                rows.extend(zip(*values, strict=True))
                if len(rows) > max_rows:
                    raise ParameterError(
                        f"UPLOAD {name}: more than {max_rows} rows; this service takes "
                        f"at most {max_rows} per table"
                    )
        except (FormatError, ValidationError, ValueError, SyntaxError) as exc:  # SyntaxError: XML
            if isinstance(exc, ParameterError):
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            first = first.replace(path.name, name)
            message = f"UPLOAD {name}: not a VOTable this service reads: {first}"
            raise ParameterError(message) from exc
    return UploadedTable(name, columns, tuple(rows))
