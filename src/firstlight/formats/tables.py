"""Streaming readers of delivered tables: FITS binary tables, VOTable, CSV, Parquet.

Every reader says the same three things: its columns as the manifest's
``Column`` (types, units, UCDs and descriptions from the file's own metadata),
its row count when the format knows it, and its rows as chunks of at most
``chunk_rows`` rows. A chunk maps each column name, spelled as in the file, to
a numpy array of the canonical dtype of the column's ``DataType`` whatever the
source format (strings as unicode arrays); a column with nulls in the chunk is
a ``numpy.ma.MaskedArray``. Source types map to ``DataType`` in one place,
``datatype_of``. Memory stays bounded by the chunk size, except for VOTables
whose data are BINARY, BINARY2 or FITS, which astropy parses whole.
"""

from __future__ import annotations

import csv
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from astropy import units as u
from astropy.io import fits, votable
from astropy.utils.exceptions import AstropyWarning
from numpy.typing import NDArray
from pydantic import ValidationError

from firstlight.domain.manifest import Column, DataType, FileFormat, TableDefinition
from firstlight.formats.detect import FormatError, csv_delimiter, scan_xml_prolog

Chunk = dict[str, NDArray[Any]]

_CANONICAL: dict[DataType, np.dtype[Any]] = {
    DataType.BOOLEAN: np.dtype(np.bool_),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.FLOAT32: np.dtype(np.float32),
    DataType.FLOAT64: np.dtype(np.float64),
    DataType.STRING: np.dtype(np.str_),
}
# Integer storage width -> the narrowest signed type that holds every value.
_SIGNED = {1: DataType.INT16, 2: DataType.INT16, 4: DataType.INT32, 8: DataType.INT64}
_UNSIGNED = {1: DataType.INT16, 2: DataType.INT32, 4: DataType.INT64, 8: DataType.INT64}
_INT64_MAX = np.iinfo(np.int64).max
# Values read as null from CSV; "NA" stays a value (it is a valid name or code).
_CSV_NULLS = ["", "NULL", "null", "NaN", "nan"]
_PROLOG_BYTES = 64 * 1024
# Comments that astropy and cfitsio write on EXTNAME by themselves: no description.
_BOILERPLATE_COMMENTS = {"extension name", "name of this binary table extension"}

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

    def iter_chunks(self, chunk_rows: int) -> Iterator[Chunk]: ...


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


def datatype_of(dtype: np.dtype[Any]) -> DataType:
    """The column type of a numpy dtype (object arrays hold strings)."""
    if dtype.shape or dtype.names:
        raise FormatError(f"array or structured type {dtype} is not a column type")
    if dtype.kind == "b":
        return DataType.BOOLEAN
    if dtype.kind == "i":
        return _SIGNED[dtype.itemsize]
    if dtype.kind == "u":
        return _UNSIGNED[dtype.itemsize]
    if dtype.kind == "f":
        return DataType.FLOAT32 if dtype.itemsize <= 4 else DataType.FLOAT64
    if dtype.kind in "USO":
        return DataType.STRING
    raise FormatError(f"type {dtype} has no column type")


def numpy_dtype_of(datatype: DataType) -> np.dtype[Any]:
    """The canonical numpy dtype of a column type (unicode of any width for strings)."""
    return _CANONICAL[datatype]


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


# --- values ---------------------------------------------------------------------------


def _canonical(values: NDArray[Any], datatype: DataType) -> NDArray[Any]:
    """A native-endian copy of ``values`` in the canonical dtype of ``datatype``."""
    if datatype is DataType.STRING:
        if values.dtype.kind == "S":
            return np.strings.decode(values, "ascii", errors="replace")
        if values.dtype.kind == "O":
            return np.array(["" if v is None else str(v) for v in values], dtype=np.str_)
        return np.asarray(values).astype(np.str_)
    if values.dtype.kind == "u" and values.size and int(values.max()) > _INT64_MAX:
        raise FormatError(f"unsigned value {int(values.max())} does not fit a signed int64")
    return np.asarray(values).astype(_CANONICAL[datatype], copy=True)


def _masked(values: NDArray[Any], mask: NDArray[np.bool_] | None) -> NDArray[Any]:
    if mask is None or not mask.any():
        return values
    return np.ma.MaskedArray(values, mask=mask)


def _check_chunk_rows(chunk_rows: int) -> None:
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, not {chunk_rows}")


def _column(path: Path, name: str, datatype: DataType, **meta: str | None) -> Column:
    try:
        return Column(name=name, datatype=datatype, **{k: v for k, v in meta.items() if v})
    except ValidationError as exc:
        raise FormatError(f"{path.name}: column {name!r} cannot be described: {exc}") from exc


def _ucd_is(column: Column, ucd: str) -> bool:
    return column.ucd is not None and column.ucd.strip().lower() == ucd


# --- FITS -----------------------------------------------------------------------------


class FitsTableReader:
    """The first binary table of a FITS file, read through a memory map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index, self._header, self._types = _inspect_fits_table(path)

    def columns(self) -> list[Column]:
        head = self._header
        return [
            _column(
                self.path,
                name,
                datatype,
                unit=_card(head, f"TUNIT{i}"),
                ucd=_card(head, f"TUCD{i}"),
                description=_card(head, f"TCOMM{i}"),
            )
            for i, (name, datatype) in enumerate(self._types, start=1)
        ]

    def num_rows(self) -> int:
        return int(self._header.get("NAXIS2", 0))

    def description(self) -> str | None:
        """The EXTNAME card's comment, else the EXTNAME itself."""
        if "EXTNAME" not in self._header:
            return None
        comment = self._header.comments["EXTNAME"].strip()
        if comment.lower() in _BOILERPLATE_COMMENTS:
            comment = ""
        return comment or str(self._header["EXTNAME"]).strip() or None

    def iter_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        _check_chunk_rows(chunk_rows)
        total = self.num_rows()
        for start in range(0, total, chunk_rows):
            yield self._read(start, min(start + chunk_rows, total))

    def _read(self, start: int, stop: int) -> Chunk:
        """Rows ``start`` to ``stop`` through a memory map of their own.

        The pages a mapping has touched stay resident (and counted in the
        process's memory) as long as it lives, so one mapping for the whole
        read would grow with the file: each chunk maps the file anew and
        unmaps it before the chunk (copies, never views) is returned.
        """
        with _open_fits(self.path) as hdul:
            data = hdul[self._index].data
            # The raw records (big-endian, unscaled) hold what TNULLn and 'L' nulls mean.
            raw = data.view(np.ndarray)
            try:
                return self._chunk(data[start:stop], raw[start:stop])
            finally:
                # Drop the views so closing the file can unmap it.
                del data, raw

    def _chunk(self, records: Any, raw: NDArray[Any]) -> Chunk:
        chunk: Chunk = {}
        for i, (name, datatype) in enumerate(self._types):
            try:
                values = _canonical(np.asarray(records.field(i)), datatype)
            except (FormatError, UnicodeDecodeError) as exc:
                raise FormatError(f"{self.path.name}: column {name!r}: {exc}") from exc
            stored = raw[(raw.dtype.names or ())[i]]
            chunk[name] = _masked(values, self._null_mask(i + 1, datatype, values, stored))
        return chunk

    def _null_mask(
        self, number: int, datatype: DataType, values: NDArray[Any], stored: NDArray[Any]
    ) -> NDArray[np.bool_] | None:
        """FITS nulls: NaN for floats, TNULLn for integers, a zero byte for logicals."""
        if datatype in {DataType.FLOAT32, DataType.FLOAT64}:
            return np.asarray(np.isnan(values), dtype=bool)
        if datatype is DataType.BOOLEAN:
            return np.asarray(stored == 0, dtype=bool)
        tnull = self._header.get(f"TNULL{number}")
        if tnull is not None and datatype is not DataType.STRING:
            return np.asarray(stored == int(tnull), dtype=bool)
        return None


def _open_fits(path: Path) -> fits.HDUList:
    try:
        return fits.open(path, memmap=True, mode="readonly")
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path.name}: unreadable FITS: {exc}") from exc


def _inspect_fits_table(path: Path) -> tuple[int, fits.Header, list[tuple[str, DataType]]]:
    """Index, header and (name, type) of each column of the first binary table."""
    with _open_fits(path) as hdul:
        index = next(
            (
                i
                for i, hdu in enumerate(hdul)
                if hdu.header.get("XTENSION") == "BINTABLE" and not hdu.header.get("ZIMAGE")
            ),
            None,
        )
        if index is None:
            raise FormatError(f"{path.name}: no binary table HDU")
        header = hdul[index].header.copy()
        _refuse_variable_arrays(path, header)
        data = hdul[index].data
        try:
            # A zero-row slice shows the converted dtypes (scaled, unsigned, logical).
            empty = data[:0]
            types = [
                (name, _fits_datatype(path, name, np.asarray(empty.field(i))))
                for i, name in enumerate(data.columns.names)
            ]
        finally:
            del data
    return index, header, types


def _refuse_variable_arrays(path: Path, header: fits.Header) -> None:
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        tform = str(header.get(f"TFORM{i}", "")).upper()
        if "P" in tform or "Q" in tform:
            name = header.get(f"TTYPE{i}", f"#{i}")
            raise FormatError(f"{path.name}: column {name!r} is a variable-length array")


def _fits_datatype(path: Path, name: str, empty: NDArray[Any]) -> DataType:
    if empty.ndim > 1:
        raise FormatError(f"{path.name}: column {name!r} is an array column, not a scalar")
    try:
        return datatype_of(empty.dtype)
    except FormatError as exc:
        raise FormatError(f"{path.name}: column {name!r}: {exc}") from exc


def _card(header: fits.Header, keyword: str) -> str | None:
    value = header.get(keyword)
    return None if value is None else str(value).strip() or None


# --- VOTable --------------------------------------------------------------------------


class VOTableReader:
    """The first table of a VOTable.

    TABLEDATA, by far the usual serialization, is streamed: ``iterparse`` reads
    the FIELDs, then the rows one by one, each dropped from the tree once its
    values are taken, so memory is bounded by the chunk size. The values follow
    astropy's TABLEDATA rules (types, VALUES nulls, empty cells, NaN), so a
    streamed table reads as astropy would read it whole. ``num_rows`` counts the
    rows in a pass of its own, streamed too.

    BINARY, BINARY2 and FITS data are read whole by astropy: their rows are a
    base64 stream (or a FITS file, possibly remote) that only astropy decodes,
    and streaming them would take a decoder of our own for each encoding.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        header = _votable_header(path)
        self._header = header
        self._rows: int | None = None
        self._whole: _WholeVOTable | None = None
        if header.serialization not in {None, "TABLEDATA"}:
            self._whole = _WholeVOTable(path)
            self._columns = self._whole.columns()
        else:
            self._columns = [_vo_column(path, field, header) for field in header.fields]

    def columns(self) -> list[Column]:
        return list(self._columns)

    def num_rows(self) -> int:
        if self._whole is not None:
            return self._whole.num_rows()
        if self._rows is None:
            self._rows = sum(1 for _ in _tabledata_rows(self.path, len(self._header.fields)))
        return self._rows

    def description(self) -> str | None:
        return self._header.description

    def iter_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        _check_chunk_rows(chunk_rows)
        if self._whole is not None:
            yield from self._whole.iter_chunks(chunk_rows)
            return
        rows: list[list[str]] = []
        for row in _tabledata_rows(self.path, len(self._header.fields)):
            rows.append(row)
            if len(rows) == chunk_rows:
                yield self._chunk(rows)
                rows = []
        if rows:
            yield self._chunk(rows)

    def _chunk(self, rows: list[list[str]]) -> Chunk:
        chunk: Chunk = {}
        cells = list(zip(*rows, strict=True))
        for field, column, texts in zip(self._header.fields, self._columns, cells, strict=True):
            try:
                values, mask = _vo_values(list(texts), field, column.datatype, self._header)
            except (ValueError, OverflowError) as exc:
                raise FormatError(f"{self.path.name}: column {column.name!r}: {exc}") from exc
            chunk[column.name] = _masked(values, mask)
        return chunk


@dataclass(frozen=True)
class _VOField:
    name: str
    datatype: str
    arraysize: str | None
    null: str | None
    unit: str | None
    ucd: str | None
    description: str | None


@dataclass
class _VOHeader:
    version: tuple[int, ...]
    description: str | None
    fields: list[_VOField]
    serialization: str | None  # the first table's DATA element, None without DATA


# VOTable datatype -> the dtype astropy reads it as (strings: any width).
_VO_DTYPES = {
    "boolean": "?",
    "bit": "?",
    "unsignedByte": "u1",
    "short": "i2",
    "int": "i4",
    "long": "i8",
    "float": "f4",
    "double": "f8",
    "floatComplex": "c8",
    "doubleComplex": "c16",
    "char": "U",
    "unicodeChar": "U",
}
_VO_BOOLEANS = {
    "TRUE": (True, False),
    "FALSE": (False, False),
    "1": (True, False),
    "0": (False, False),
    "T": (True, False),
    "F": (False, False),
    "\0": (False, True),
    " ": (False, True),
    "?": (False, True),
    "": (False, True),
}
# astropy trims TD text of XML white space (only).
_XML_SPACE = " \t\n\r"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _vo_version(text: str | None) -> tuple[int, ...]:
    """The VOTable version; astropy assumes 1.4 when it is missing or unreadable."""
    try:
        return tuple(int(part) for part in (text or "").lstrip("vV").split("."))
    except ValueError:
        return (1, 4)


def _votable_events(path: Path) -> Iterator[tuple[str, ET.Element]]:
    """``iterparse`` events, after the prolog is checked: nothing expanded or fetched."""
    _refuse_entities(path)
    try:
        with path.open("rb") as fh:
            # The prolog declares no entities (refused above); expat fetches nothing.
            yield from ET.iterparse(fh, events=("start", "end"))  # noqa: S314
    except (ET.ParseError, OSError) as exc:
        raise FormatError(f"{path.name}: unreadable VOTable: {exc}") from exc


def _votable_header(path: Path) -> _VOHeader:
    """The version and the first TABLE's description, FIELDs and serialization."""
    header = _VOHeader(version=(1, 4), description=None, fields=[], serialization=None)
    stack: list[str] = []
    table_depth: int | None = None
    for event, elem in _votable_events(path):
        tag = _local(elem.tag)
        if event == "start":
            stack.append(tag)
            if len(stack) == 1 and "version" in elem.attrib:
                header.version = _vo_version(elem.get("version"))
            elif table_depth is None and tag == "TABLE":
                table_depth = len(stack)
            elif table_depth is not None and len(stack) == table_depth + 2 and stack[-2] == "DATA":
                header.serialization = tag
                return header
            continue
        stack.pop()
        if table_depth is None:
            continue
        if len(stack) == table_depth and tag == "FIELD":
            header.fields.append(_vo_field(elem))
        elif len(stack) == table_depth and tag == "DESCRIPTION":
            header.description = (elem.text or "").strip() or None
        elif len(stack) == table_depth - 1 and tag == "TABLE":
            return header
    raise FormatError(f"{path.name}: unreadable VOTable: no TABLE found")


def _vo_field(elem: ET.Element) -> _VOField:
    description = values = None
    for child in elem:
        if _local(child.tag) == "DESCRIPTION":
            description = (child.text or "").strip() or None
        elif _local(child.tag) == "VALUES":
            values = child
    return _VOField(
        name=elem.get("name") or elem.get("ID") or "",
        datatype=elem.get("datatype", ""),
        arraysize=elem.get("arraysize"),
        null=None if values is None else values.get("null"),
        unit=elem.get("unit"),
        ucd=elem.get("ucd"),
        description=description,
    )


def _vo_column(path: Path, field: _VOField, header: _VOHeader) -> Column:
    name = field.name
    strings = field.datatype in {"char", "unicodeChar"}
    if field.arraysize is not None and (not strings or "x" in field.arraysize):
        raise FormatError(f"{path.name}: column {name!r} is an array column")
    if field.datatype not in _VO_DTYPES:
        raise FormatError(f"{path.name}: column {name!r}: unknown datatype {field.datatype!r}")
    try:
        datatype = datatype_of(np.dtype(_VO_DTYPES[field.datatype]))
    except FormatError as exc:
        raise FormatError(f"{path.name}: column {name!r}: {exc}") from exc
    unit = None
    if field.unit is not None:
        unit_format = "vounit" if header.version >= (1, 4) else "cds"
        unit = _votable_unit(u.Unit(field.unit, format=unit_format, parse_strict="silent"))
    return _column(path, name, datatype, unit=unit, ucd=field.ucd, description=field.description)


def _tabledata_rows(path: Path, width: int) -> Iterator[list[str]]:
    """The trimmed cell texts of each TR of the first table, each TR dropped once read."""
    stack: list[str] = []
    table_depth: int | None = None
    tabledata: ET.Element | None = None
    for event, elem in _votable_events(path):
        tag = _local(elem.tag)
        if event == "start":
            stack.append(tag)
            if table_depth is None and tag == "TABLE":
                table_depth = len(stack)
            elif (
                table_depth is not None
                and tag == "TABLEDATA"
                and len(stack) == table_depth + 2
                and stack[-2] == "DATA"
            ):
                tabledata = elem
            continue
        stack.pop()
        if tabledata is None:
            if table_depth is not None and len(stack) < table_depth:
                return  # the first table has no TABLEDATA
            continue
        if elem is tabledata:
            return
        if tag == "TR" and table_depth is not None and len(stack) == table_depth + 2:
            row = [(td.text or "").strip(_XML_SPACE) for td in elem]
            if len(row) != width or any(_local(td.tag) != "TD" for td in elem):
                raise FormatError(f"{path.name}: a row has {len(row)} cells for {width} FIELDs")
            elem.clear()
            tabledata.clear()
            yield row


def _vo_values(
    texts: list[str], field: _VOField, datatype: DataType, header: _VOHeader
) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
    """Values of one column as astropy parses TABLEDATA, and their null mask."""
    if datatype is DataType.STRING:
        # Strings are never null; a fixed width (1 without arraysize) truncates.
        size = field.arraysize or "1"
        if size.isdigit():
            texts = [t[: int(size)] for t in texts]
        return np.array(texts, dtype=np.str_), None
    if datatype is DataType.BOOLEAN:
        if field.datatype == "bit":
            pairs = [(t == "1", t == "") for t in texts]
            if any(t not in {"0", "1", ""} for t in texts):
                raise ValueError("a bit value is neither 0 nor 1")
        else:
            try:
                pairs = [_VO_BOOLEANS[t.upper()] for t in texts]
            except KeyError as exc:
                raise ValueError(f"invalid boolean value {exc}") from exc
        values = np.array([p[0] for p in pairs], dtype=np.bool_)
        return values, np.array([p[1] for p in pairs], dtype=np.bool_)
    dtype = np.dtype(_VO_DTYPES[field.datatype])
    if dtype.kind == "f":
        return _vo_floats(texts, dtype, field.null, datatype)
    return _vo_integers(texts, dtype, field.null, header.version >= (1, 3), datatype)


def _vo_floats(
    texts: list[str], dtype: np.dtype[Any], null: str | None, datatype: DataType
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Unreadable values (empty, 'null') are null; so is NaN, or the VALUES null if set."""
    unreadable = np.zeros(len(texts), dtype=np.bool_)
    try:
        numbers = [float(t) for t in texts]
    except ValueError:
        numbers = []
        for i, t in enumerate(texts):
            try:
                numbers.append(float(t))
            except ValueError:
                numbers.append(float("nan"))
                unreadable[i] = True
    values = np.array(numbers, dtype=np.float64).astype(dtype)
    if null is None:
        mask = unreadable | np.isnan(values)
    else:
        mask = unreadable | (values == np.asarray(float(null), dtype=dtype))
    return _canonical(values, datatype), mask


def _vo_integers(
    texts: list[str], dtype: np.dtype[Any], null: str | None, v13: bool, datatype: DataType
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """astropy's integer rules: empty is null from VOTable 1.3, 'nan' always; hex allowed."""
    info = np.iinfo(dtype)
    null_value = (
        None if null is None else int(null, 0) if null.lower().startswith("0x") else int(null)
    )
    numbers: list[int] = []
    mask = np.zeros(len(texts), dtype=np.bool_)
    for i, text in enumerate(texts):
        value = text.lower()
        if value == "":
            mask[i] = v13
            number = 0 if null_value is None else null_value
        elif value == "nan":
            mask[i] = True
            number = 0 if null_value is None else null_value
        elif value.startswith("0x"):
            number = int(value[2:], 16)
        else:
            number = int(value, 10)
        if null_value is not None and number == null_value:
            mask[i] = True
        numbers.append(min(max(number, int(info.min)), int(info.max)))
    return _canonical(np.array(numbers, dtype=dtype), datatype), mask


class _WholeVOTable:
    """The first table of a VOTable parsed whole by astropy (BINARY, BINARY2, FITS)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        table = _parse_votable(path)
        self._array: np.ma.MaskedArray[Any, Any] = table.array
        self._columns = [self._describe(field, i) for i, field in enumerate(table.fields)]

    def columns(self) -> list[Column]:
        return list(self._columns)

    def num_rows(self) -> int:
        return len(self._array)

    def iter_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        names = self._array.dtype.names or ()
        for start in range(0, len(self._array), chunk_rows):
            chunk: Chunk = {}
            for column, key in zip(self._columns, names, strict=True):
                part = self._array[key][start : start + chunk_rows]
                values = _canonical(np.ma.getdata(part), column.datatype)
                chunk[column.name] = _masked(values, np.ma.getmaskarray(part))
            yield chunk

    def _describe(self, field: Any, index: int) -> Column:
        name = str(field.name or field.ID)
        if field.arraysize is not None and field.datatype not in {"char", "unicodeChar"}:
            raise FormatError(f"{self.path.name}: column {name!r} is an array column")
        key = (self._array.dtype.names or ())[index]
        try:
            datatype = datatype_of(self._array.dtype[key])
        except FormatError as exc:
            raise FormatError(f"{self.path.name}: column {name!r}: {exc}") from exc
        return _column(
            self.path,
            name,
            datatype,
            unit=_votable_unit(field.unit),
            ucd=field.ucd,
            description=field.description,
        )


def _parse_votable(path: Path) -> Any:
    _refuse_entities(path)
    try:
        with warnings.catch_warnings():
            # verify="ignore" silences the VO warnings; units astropy cannot parse still warn.
            warnings.simplefilter("ignore", AstropyWarning)
            return votable.parse(str(path), verify="ignore").get_first_table()
    except (ValueError, IndexError, KeyError, OSError) as exc:
        raise FormatError(f"{path.name}: unreadable VOTable: {exc}") from exc


def _refuse_entities(path: Path) -> None:
    """Entity declarations can only precede the root; refuse them before parsing."""
    with path.open("rb") as fh:
        head = fh.read(_PROLOG_BYTES).decode("utf-8", errors="replace")
    prolog = scan_xml_prolog(head)
    if prolog.declares_entities:
        raise FormatError(f"{path.name}: the VOTable declares XML entities; refused")
    if prolog.root != "VOTABLE":
        raise FormatError(f"{path.name}: the XML root element is not VOTABLE")


def _votable_unit(unit: Any) -> str | None:
    """The unit as a VOUnit string, as VOTable 1.4 asks; unparsed units as written."""
    if unit is None:
        return None
    try:
        return str(unit.to_string("vounit"))
    except (ValueError, AttributeError):
        return str(unit)


# --- Arrow (CSV, Parquet) -------------------------------------------------------------


class CsvTableReader:
    """A CSV file streamed by pyarrow with explicit types for every column.

    With a table definition the names and types are the definition's; without
    one, pyarrow infers them from the first block (for describing a new file).
    """

    def __init__(self, path: Path, definition: TableDefinition | None = None) -> None:
        self.path = path
        self._delimiter = csv_delimiter(path)
        header = self._header_names()
        if definition is None:
            self._schema = self._inferred_schema()
        else:
            self._schema = _schema_from_definition(path, header, definition)

    def columns(self) -> list[Column]:
        return [
            _column(self.path, f.name, _arrow_datatype(self.path, f.name, f.type))
            for f in self._schema
        ]

    def num_rows(self) -> None:
        return None

    def description(self) -> None:
        return None

    def iter_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        _check_chunk_rows(chunk_rows)
        reader = self._open(self._schema)
        try:
            yield from _arrow_chunks(self.path, _rebatch(reader, chunk_rows), self._schema)
        except pa.ArrowException as exc:
            raise FormatError(f"{self.path.name}: {exc}") from exc
        finally:
            reader.close()

    def _header_names(self) -> list[str]:
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=self._delimiter), [])
        lowered = [name.lower() for name in header]
        if not header or len(set(lowered)) != len(lowered):
            raise FormatError(f"{self.path.name}: the header line is missing or repeats a name")
        return header

    def _inferred_schema(self) -> pa.Schema:
        reader = self._open(None)
        try:
            inferred = reader.schema
        finally:
            reader.close()
        return pa.schema(
            [(f.name, _normal_arrow_type(self.path, f.name, f.type)) for f in inferred]
        )

    def _open(self, schema: pa.Schema | None) -> Any:
        convert = pacsv.ConvertOptions(
            column_types=schema,
            null_values=_CSV_NULLS,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )
        try:
            return pacsv.open_csv(
                self.path,
                parse_options=pacsv.ParseOptions(delimiter=self._delimiter),
                convert_options=convert,
            )
        except pa.ArrowException as exc:
            raise FormatError(f"{self.path.name}: unreadable CSV: {exc}") from exc


def _schema_from_definition(
    path: Path, header: list[str], definition: TableDefinition
) -> pa.Schema:
    """The file's names with the definition's types; the two must name the same columns."""
    defined = {c.name.lower() for c in definition.columns}
    present = {name.lower() for name in header}
    if defined != present:
        missing = sorted(defined - present)
        extra = sorted(present - defined)
        raise FormatError(
            f"{path.name}: columns differ from table {definition.name!r}: "
            f"missing {missing}, not defined {extra}"
        )
    return pa.schema([(name, _arrow_type(definition.column(name).datatype)) for name in header])


class ParquetTableReader:
    """A Parquet file read batch by batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with pq.ParquetFile(path) as pf:
                source = pf.schema_arrow
                self._rows = int(pf.metadata.num_rows)
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(f"{path.name}: unreadable Parquet: {exc}") from exc
        self._fields: list[Any] = list(source)
        self._schema = pa.schema(
            [(f.name, _normal_arrow_type(path, f.name, f.type)) for f in self._fields]
        )

    def columns(self) -> list[Column]:
        return [
            _column(
                self.path,
                field.name,
                _arrow_datatype(self.path, field.name, target),
                **_field_metadata(field),
            )
            for field, target in zip(self._fields, self._schema.types, strict=True)
        ]

    def num_rows(self) -> int:
        return self._rows

    def description(self) -> None:
        return None

    def iter_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        _check_chunk_rows(chunk_rows)
        try:
            with pq.ParquetFile(self.path) as pf:
                batches = pf.iter_batches(batch_size=chunk_rows)
                yield from _arrow_chunks(self.path, _rebatch(batches, chunk_rows), self._schema)
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(f"{self.path.name}: {exc}") from exc


def _field_metadata(field: Any) -> dict[str, str | None]:
    meta = {k.decode("utf-8", "replace"): v for k, v in (field.metadata or {}).items()}
    return {
        key: meta[key].decode("utf-8", "replace") if key in meta else None
        for key in ("unit", "ucd", "description")
    }


def _normal_arrow_type(path: Path, name: str, source: Any) -> Any:
    """The arrow type a column is read as: one per ``DataType``.

    Dictionaries read as their values, temporal values as ISO strings and
    decimals as float64; nested types have no column type.
    """
    kind = source.value_type if pa.types.is_dictionary(source) else source
    if pa.types.is_boolean(kind):
        return pa.bool_()
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        datatype = datatype_of(np.dtype(kind.to_pandas_dtype()))
        return _arrow_type(datatype)
    if pa.types.is_decimal(kind):
        return pa.float64()
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_null(kind)
    ):
        return pa.string()
    raise FormatError(f"{path.name}: column {name!r}: type {source} has no column type")


def _arrow_type(datatype: DataType) -> Any:
    if datatype is DataType.STRING:
        return pa.string()
    return pa.from_numpy_dtype(_CANONICAL[datatype])


def _arrow_datatype(path: Path, name: str, arrow_type: Any) -> DataType:
    try:
        return datatype_of(np.dtype(arrow_type.to_pandas_dtype()))
    except (FormatError, NotImplementedError, TypeError) as exc:
        raise FormatError(f"{path.name}: column {name!r}: {exc}") from exc


def _rebatch(batches: Any, rows: int) -> Iterator[pa.Table]:
    """Regroup record batches of any size into tables of exactly ``rows`` (the last fewer)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def _arrow_chunks(path: Path, tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[Chunk]:
    datatypes = [_arrow_datatype(path, f.name, f.type) for f in schema]
    for table in tables:
        chunk: Chunk = {}
        for field, datatype, column in zip(schema, datatypes, table.columns, strict=True):
            chunk[field.name] = _arrow_values(column.cast(field.type), datatype)
        yield chunk


def _arrow_values(column: Any, datatype: DataType) -> NDArray[Any]:
    mask = None
    if column.null_count:
        mask = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        column = column.fill_null(_FILL[datatype])
    values = _canonical(np.asarray(column.to_numpy(zero_copy_only=False)), datatype)
    return _masked(values, mask)


# What sits under the mask of a null: NaN keeps floats honest if the mask is lost.
_FILL: dict[DataType, Any] = {
    DataType.BOOLEAN: False,
    DataType.INT16: 0,
    DataType.INT32: 0,
    DataType.INT64: 0,
    DataType.FLOAT32: float("nan"),
    DataType.FLOAT64: float("nan"),
    DataType.STRING: "",
}

_Reader = FitsTableReader | VOTableReader | CsvTableReader | ParquetTableReader
