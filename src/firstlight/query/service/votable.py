"""VOTable 1.4 documents as the query service writes them: BINARY2 or TABLEDATA.

Pure: columns and rows in, text out. Results (with QUERY_STATUS OK before the
table and OVERFLOW after it when MAXREC cut it), DALI error documents, and
DataLink service descriptors. Values are written per the column's datatype.

TABLEDATA: NULL is an empty cell, NaN and infinities are spelled as VOTable
wants them, booleans are T/F, timestamps ISO 8601 (UTC), text is escaped and
stripped of characters XML cannot carry. BINARY2 (``query.service.binary2``
encodes the rows): the same values in their binary form, bit for bit, with
NULLs in each row's flags; about a third of TABLEDATA's size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"  # VOTable 1.4 keeps the 1.3 namespace
VOTABLE_MIME = "application/x-votable+xml"
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class ColumnLike(Protocol):
    """What a FIELD needs (query.public.PublicColumn has it, and so does ``FieldSpec``)."""

    @property
    def name(self) -> str: ...
    @property
    def datatype(self) -> str: ...
    @property
    def arraysize(self) -> str | None: ...
    @property
    def xtype(self) -> str | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def ucd(self) -> str | None: ...
    @property
    def utype(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...


@dataclass(frozen=True)
class FieldSpec:
    """A column the service defines itself (cone search, DataLink)."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ServiceDescriptor:
    """A DataLink service descriptor: how a client turns a column's value into links."""

    access_url: str
    id_field: str  # the column whose values the ID parameter takes (obs_publisher_did)
    standard_id: str = "ivo://ivoa.net/std/DataLink#links-1.1"


def text(value: object) -> str:
    """Text safe inside an XML element."""
    return escape(_XML_INVALID.sub("\ufffd", str(value)))


def attr(value: object) -> str:
    """A quoted XML attribute value."""
    return quoteattr(_XML_INVALID.sub("\ufffd", str(value)))


def cell(value: Any, datatype: str) -> str:  # noqa: PLR0911 - one return per kind of value
    """One value as the content of a TD (empty for NULL)."""
    if value is None:
        return ""
    if isinstance(value, bool) or datatype == "boolean":
        return "T" if value else "F"
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Decimal):
        return _float(float(value)) if datatype in ("float", "double") else str(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return text(bytes(value).hex())
    if isinstance(value, list | tuple):
        return " ".join(cell(v, datatype) for v in value)
    return text(value)


def timestamp(value: datetime) -> str:
    """DALI timestamp: ISO 8601 in UTC without a zone suffix."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def field_element(col: ColumnLike, field_id: str | None = None) -> str:
    attrs = [f"name={attr(col.name)}", f"datatype={attr(col.datatype)}"]
    if field_id:
        attrs.insert(0, f"ID={attr(field_id)}")
    arraysize = col.arraysize
    if arraysize is None and col.datatype in ("char", "unicodeChar"):
        arraysize = "*"  # a scalar char is one character: never what a text column means
    for key, val in (
        ("arraysize", arraysize),
        ("unit", col.unit),
        ("ucd", col.ucd),
        ("utype", col.utype),
        ("xtype", col.xtype),
    ):
        if val:
            attrs.append(f"{key}={attr(val)}")
    head = f"<FIELD {' '.join(attrs)}"
    if col.description:
        return f"{head}><DESCRIPTION>{text(col.description)}</DESCRIPTION></FIELD>"
    return f"{head}/>"


def info(name: str, value: str, content: str | None = None) -> str:
    if content is None:
        return f"<INFO name={attr(name)} value={attr(value)}/>"
    return f"<INFO name={attr(name)} value={attr(value)}>{text(content)}</INFO>"


def results_document(
    columns: Sequence[ColumnLike],
    rows: Iterable[Sequence[Any]],
    *,
    overflow: bool = False,
    infos: Sequence[tuple[str, str]] = (),
    descriptors: Sequence[ServiceDescriptor] = (),
    table_name: str = "result",
    binary2: bool = False,
) -> Iterable[str]:
    """A results VOTable, in pieces (stream them or join them)."""
    # binary2 reads this module's timestamp(): imported here, not at the top, to avoid a cycle.
    from firstlight.query.service.binary2 import binary2_stream, unicode_columns

    ids = {d.id_field: f"col_{d.id_field}" for d in descriptors}
    wide: set[int] = set()
    if binary2:
        rows = rows if isinstance(rows, Sequence) else list(rows)
        wide = unicode_columns(columns, rows)
        columns = [
            replace(FieldSpec(**_field_args(c)), datatype="unicodeChar") if i in wide else c
            for i, c in enumerate(columns)
        ]
    yield _head()
    yield '<RESOURCE type="results">'
    yield info("QUERY_STATUS", "OK")
    for name, value in infos:
        yield info(name, value)
    yield f"<TABLE name={attr(table_name)}>"
    for col in columns:
        yield field_element(col, ids.get(col.name))
    if binary2:
        yield '<DATA><BINARY2><STREAM encoding="base64">\n'
        yield from binary2_stream(columns, rows)
        yield "</STREAM></BINARY2></DATA></TABLE>"
    else:
        yield "<DATA><TABLEDATA>"
        types = [c.datatype for c in columns]
        for row in rows:
            cells = zip(row, types, strict=True)
            yield "<TR>" + "".join(f"<TD>{cell(v, t)}</TD>" for v, t in cells) + "</TR>\n"
        yield "</TABLEDATA></DATA></TABLE>"
    if overflow:
        yield info("QUERY_STATUS", "OVERFLOW")
    yield "</RESOURCE>"
    present = {c.name for c in columns}
    for d in descriptors:
        if d.id_field in present:
            yield _descriptor(d, ids[d.id_field])
    yield "</VOTABLE>\n"


def _field_args(col: ColumnLike) -> dict[str, Any]:
    return {
        "name": col.name,
        "datatype": col.datatype,
        "arraysize": col.arraysize,
        "xtype": col.xtype,
        "unit": col.unit,
        "ucd": col.ucd,
        "utype": col.utype,
        "description": col.description,
    }


def error_document(message: str, *, status: str = "ERROR") -> str:
    """A DALI error document: QUERY_STATUS ERROR carrying the message."""
    return "".join(
        (
            _head(),
            '<RESOURCE type="results">',
            info("QUERY_STATUS", status, message),
            "</RESOURCE></VOTABLE>\n",
        )
    )


def _descriptor(d: ServiceDescriptor, ref: str) -> str:
    return (
        '<RESOURCE type="meta" utype="adhoc:service" name="datalink">'
        f'<PARAM name="standardID" datatype="char" arraysize="*" value={attr(d.standard_id)}/>'
        f'<PARAM name="accessURL" datatype="char" arraysize="*" value={attr(d.access_url)}/>'
        '<GROUP name="inputParams">'
        f'<PARAM name="ID" datatype="char" arraysize="*" value="" ref={attr(ref)} '
        'ucd="meta.id;meta.main"/>'
        "</GROUP></RESOURCE>"
    )


def _head() -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<VOTABLE version="1.4" xmlns="{VOTABLE_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    )
