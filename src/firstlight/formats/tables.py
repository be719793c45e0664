"""Delivered tables, whatever their format: the reader protocol and opening one.

Belongs here: ``TableReader`` (what every reader says: its columns as the
manifest's ``Column``, its row count when the format knows it, and its rows as
chunks of at most ``chunk_rows`` rows, see ``formats.columns``, of every column or
of the ``columns`` named), ``open_table``
choosing the reader of a format, and describing a table file as a
``TableDefinition`` with its primary key and position columns guessed from
UCDs and usual names. The readers live in ``fits_table``, ``votable``,
``csv_table`` and ``parquet_table``; memory stays bounded by the chunk size,
except for VOTables whose data are BINARY, BINARY2 or FITS, which astropy
parses whole.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from firstlight.domain.manifest import Column, FileFormat, TableDefinition
from firstlight.formats.columns import Chunk
from firstlight.formats.csv_table import CsvTableReader
from firstlight.formats.detect import FormatError
from firstlight.formats.fits_table import FitsTableReader
from firstlight.formats.parquet_table import ParquetTableReader
from firstlight.formats.votable import VOTableReader

_Reader = FitsTableReader | VOTableReader | CsvTableReader | ParquetTableReader

_PRIMARY_KEY_UCD = "meta.id;meta.main"
_PRIMARY_KEY_NAMES = ("source_id", "id", "obj_id", "objid")
_RA_UCD = "pos.eq.ra;meta.main"
_DEC_UCD = "pos.eq.dec;meta.main"
_POSITION_NAMES = (
    ("ra", "dec"),
    ("ra_icrs", "dec_icrs"),
    ("ra_icrs", "de_icrs"),  # VizieR's spelling
    ("raj2000", "dej2000"),
)


class TableReader(Protocol):
    """A table file read in chunks of rows."""

    path: Path

    def columns(self) -> list[Column]: ...

    def num_rows(self) -> int | None: ...

    def iter_chunks(
        self, chunk_rows: int, columns: Collection[str] | None = None
    ) -> Iterator[Chunk]: ...


def open_table(
    path: Path, fmt: FileFormat, definition: TableDefinition | None = None
) -> TableReader:
    """A reader for a table file; ``definition`` fixes a CSV's names and types."""
    return _open_reader(path, fmt, definition)


def table_definition_from_file(path: Path, fmt: FileFormat, name: str) -> TableDefinition:
    """Describe a table file: its columns and the columns that play roles."""
    reader = _open_reader(path, fmt, None)
    columns = reader.columns()
    ra, dec = guess_position_columns(columns)
    try:
        return TableDefinition(
            name=name,
            description=reader.description(),
            columns=columns,
            primary_key=guess_primary_key(columns),
            ra=ra,
            dec=dec,
        )
    except ValidationError as exc:
        raise FormatError(f"{path.name}: cannot define table {name!r}: {exc}") from exc


def guess_primary_key(columns: list[Column]) -> str | None:
    """The id column by UCD ``meta.id;meta.main``, else by a usual name."""
    by_ucd = [c.name for c in columns if _ucd_is(c, _PRIMARY_KEY_UCD)]
    if by_ucd:
        return by_ucd[0]
    names = {c.name.lower(): c.name for c in columns}
    return next((names[n] for n in _PRIMARY_KEY_NAMES if n in names), None)


def guess_position_columns(columns: list[Column]) -> tuple[str | None, str | None]:
    """The main (ra, dec) columns by UCD, else by usual names; both or neither."""
    ra = next((c.name for c in columns if _ucd_is(c, _RA_UCD)), None)
    dec = next((c.name for c in columns if _ucd_is(c, _DEC_UCD)), None)
    if ra is not None and dec is not None:
        return ra, dec
    names = {c.name.lower(): c.name for c in columns}
    for ra_name, dec_name in _POSITION_NAMES:
        if ra_name in names and dec_name in names:
            return names[ra_name], names[dec_name]
    return None, None


def _open_reader(path: Path, fmt: FileFormat, definition: TableDefinition | None) -> _Reader:
    if fmt is FileFormat.FITS:
        return FitsTableReader(path)
    if fmt is FileFormat.VOTABLE:
        return VOTableReader(path)
    if fmt is FileFormat.CSV:
        return CsvTableReader(path, definition)
    if fmt is FileFormat.PARQUET:
        return ParquetTableReader(path)
    raise FormatError(f"{path.name}: a {fmt} file is not a table")


def _ucd_is(column: Column, ucd: str) -> bool:
    return column.ucd is not None and column.ucd.strip().lower() == ucd
