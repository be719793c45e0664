"""Output formats of query results: VOTable (BINARY2 or TABLEDATA), CSV, TSV and JSON.

``output_format`` reads a FORMAT/RESPONSEFORMAT value (a short name or a MIME
type, as TAP allows; ``;serialization=`` picks the VOTable one); ``render``
writes a result in it. Pure. VOTable's default is BINARY2: the same values
bit for bit as TABLEDATA, in about a third of the bytes.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from firstlight.errors import InvalidInputError
from firstlight.query.service.votable import (
    VOTABLE_MIME,
    ColumnLike,
    ServiceDescriptor,
    results_document,
    timestamp,
)


class OutputFormatError(InvalidInputError):
    """A FORMAT the service does not write."""


@dataclass(frozen=True)
class OutputFormat:
    name: str
    mime: str  # what the response's Content-Type says
    aliases: tuple[str, ...]
    extension: str
    ivo_id: str | None = None  # TAPRegExt's identifier of the format, when it has one
    votable: bool = False


_VOTABLE_NAMES = ("votable", "application/x-votable+xml", "text/xml", "application/xml")
_TAPREGEXT = "ivo://ivoa.net/std/TAPRegExt#"
VOTABLE = OutputFormat(
    "votable",
    VOTABLE_MIME,
    (*_VOTABLE_NAMES, "votable/b2", "votable/binary2"),
    "xml",
    _TAPREGEXT + "output-votable-binary2",
    votable=True,
)
VOTABLE_TD = OutputFormat(
    "votable/td",
    VOTABLE_MIME,
    ("votable/td", "votable/tabledata"),
    "xml",
    _TAPREGEXT + "output-votable-td",
    votable=True,
)
CSV = OutputFormat("csv", "text/csv", ("csv", "text/csv"), "csv")
TSV = OutputFormat("tsv", "text/tab-separated-values", ("tsv", "text/tab-separated-values"), "tsv")
JSON = OutputFormat("json", "application/json", ("json", "application/json"), "json")
FORMATS = (VOTABLE, VOTABLE_TD, CSV, TSV, JSON)


def output_format(value: str | None) -> OutputFormat:
    """The format a FORMAT value names (default VOTable BINARY2).

    Of a MIME type's parameters only VOTable's ``serialization`` counts
    (``application/x-votable+xml;serialization=TABLEDATA``); others are ignored.
    """
    if not value:
        return VOTABLE
    wanted, *params = (part.strip().lower() for part in value.split(";"))
    for fmt in FORMATS:
        if wanted in fmt.aliases:
            return _serialization(fmt, params, value) if fmt.votable else fmt
    names = ", ".join(f.name for f in FORMATS)
    raise OutputFormatError(f"FORMAT {value!r} is not supported; use one of {names}")


def _serialization(fmt: OutputFormat, params: list[str], value: str) -> OutputFormat:
    for param in params:
        key, _, serialization = param.partition("=")
        if key.strip() != "serialization":
            continue
        serialization = serialization.strip().strip('"')
        if serialization == "tabledata":
            return VOTABLE_TD
        if serialization == "binary2":
            return VOTABLE
        raise OutputFormatError(
            f"FORMAT {value!r}: serialization {serialization!r} is not written here; "
            "use BINARY2 or TABLEDATA"
        )
    return fmt


def render(
    fmt: OutputFormat,
    columns: Sequence[ColumnLike],
    rows: Sequence[Sequence[Any]],
    *,
    overflow: bool,
    descriptors: Sequence[ServiceDescriptor] = (),
) -> Iterable[str]:
    if fmt.votable:
        return results_document(
            columns, rows, overflow=overflow, descriptors=descriptors, binary2=fmt is VOTABLE
        )
    if fmt is JSON:
        return [_json(columns, rows, overflow)]
    return [_delimited(columns, rows, "\t" if fmt is TSV else ",")]


def _plain(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """A value as CSV/JSON carry it: NaN and infinities become null, times ISO 8601."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _json(columns: Sequence[ColumnLike], rows: Sequence[Sequence[Any]], overflow: bool) -> str:
    metadata = [
        {
            "name": c.name,
            "datatype": c.datatype,
            "arraysize": c.arraysize,
            "xtype": c.xtype,
            "unit": c.unit,
            "ucd": c.ucd,
            "description": c.description,
        }
        for c in columns
    ]
    data = [[_plain(v) for v in row] for row in rows]
    return json.dumps({"metadata": metadata, "data": data, "overflow": overflow}) + "\n"


def _delimited(columns: Sequence[ColumnLike], rows: Sequence[Sequence[Any]], sep: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    for row in rows:
        writer.writerow(["" if (v := _plain(x)) is None else _csv_cell(v) for x in row])
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value
