"""The VOTable reader.

Belongs here: ``VOTableReader`` and everything it reads with: the streaming
TABLEDATA parser (``iterparse`` over the header and then the rows, each row
dropped once its values are taken, the values following astropy's TABLEDATA
rules), ``_WholeVOTable`` for BINARY, BINARY2 and FITS data that astropy
parses whole, the refusal of XML entity declarations before any parsing, and
units written as VOUnit.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import votable
from astropy.utils.exceptions import AstropyWarning
from numpy.typing import NDArray

from firstlight.domain.manifest import Column, DataType
from firstlight.formats.columns import (
    Chunk,
    canonical,
    check_chunk_rows,
    datatype_of,
    describe_column,
    masked,
    selected,
)
from firstlight.formats.detect import FormatError, scan_xml_prolog

_PROLOG_BYTES = 64 * 1024


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

    def iter_chunks(
        self, chunk_rows: int, columns: Collection[str] | None = None
    ) -> Iterator[Chunk]:
        check_chunk_rows(chunk_rows)
        if self._whole is not None:
            yield from self._whole.iter_chunks(chunk_rows, columns)
            return
        rows: list[list[str]] = []
        for row in _tabledata_rows(self.path, len(self._header.fields)):
            rows.append(row)
            if len(rows) == chunk_rows:
                yield selected(self._chunk(rows), columns)
                rows = []
        if rows:
            yield selected(self._chunk(rows), columns)

    def _chunk(self, rows: list[list[str]]) -> Chunk:
        chunk: Chunk = {}
        cells = list(zip(*rows, strict=True))
        for field, column, texts in zip(self._header.fields, self._columns, cells, strict=True):
            try:
                values, mask = _vo_values(list(texts), field, column.datatype, self._header)
            except (ValueError, OverflowError) as exc:
                raise FormatError(f"{self.path.name}: column {column.name!r}: {exc}") from exc
            chunk[column.name] = masked(values, mask)
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
    return describe_column(
        path, name, datatype, unit=unit, ucd=field.ucd, description=field.description
    )


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
    return canonical(values, datatype), mask


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
    return canonical(np.array(numbers, dtype=dtype), datatype), mask


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

    def iter_chunks(
        self, chunk_rows: int, columns: Collection[str] | None = None
    ) -> Iterator[Chunk]:
        names = self._array.dtype.names or ()
        for start in range(0, len(self._array), chunk_rows):
            chunk: Chunk = {}
            for column, key in zip(self._columns, names, strict=True):
                if columns is not None and column.name not in columns:
                    continue
                part = self._array[key][start : start + chunk_rows]
                values = canonical(np.ma.getdata(part), column.datatype)
                chunk[column.name] = masked(values, np.ma.getmaskarray(part))
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
        return describe_column(
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
