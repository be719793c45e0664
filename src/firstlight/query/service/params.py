"""TAP request parameters: names are case-insensitive, values are checked here.

Pure: ``query_request`` turns the parameters of a sync request or an async
job into a ``QueryRequest`` or raises ``ParameterError`` saying which
parameter is wrong and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from firstlight.errors import InvalidInputError
from firstlight.query.service.formats import OutputFormat, OutputFormatError, output_format

LANGUAGES = ("ADQL", "ADQL-2.0", "ADQL-2.1")
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}\Z")


class ParameterError(InvalidInputError):
    """A TAP parameter that is missing, unsupported or malformed; the message names it."""


@dataclass(frozen=True)
class QueryRequest:
    query: str
    format: OutputFormat
    maxrec: int
    # DALI UPLOAD: (table name, multipart part name) pairs, read by query.service.upload
    uploads: tuple[tuple[str, str], ...] = ()


def lower_keys(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Parameters by lower-case name (the last value of a repeated name wins)."""
    return {k.lower(): v for k, v in pairs}


def query_request(
    params: Mapping[str, str], *, default_maxrec: int, maxrec_limit: int
) -> QueryRequest:
    request = params.get("request")
    if request is not None and request.lower() != "doquery":
        raise ParameterError(f"REQUEST={request!r} is not supported; only doQuery")
    lang = params.get("lang")
    if lang is None:
        raise ParameterError("LANG is missing; this service speaks LANG=ADQL")
    if lang.upper() not in LANGUAGES:
        raise ParameterError(f"LANG={lang!r} is not supported; use ADQL")
    query = params.get("query", "").strip()
    if not query:
        raise ParameterError("QUERY is missing or empty")
    try:
        fmt = output_format(params.get("responseformat") or params.get("format"))
    except OutputFormatError as exc:
        raise ParameterError(str(exc)) from exc
    return QueryRequest(
        query=query,
        format=fmt,
        maxrec=maxrec(params, default_maxrec, maxrec_limit),
        uploads=tuple(upload_references(params["upload"])) if "upload" in params else (),
    )


def upload_references(value: str) -> list[tuple[str, str]]:
    """``name,param:part;...`` as (table name, part name) pairs; ParameterError if wrong.

    Only inline parts are taken: fetching a URL the user names would make the
    service a client of any host (other references are refused saying so).
    """
    pairs: list[tuple[str, str]] = []
    for item in (i.strip() for i in value.split(";")):
        if not item:
            continue
        name, sep, uri = (p.strip() for p in item.partition(","))
        if not sep or not uri:
            raise ParameterError(f"UPLOAD={item!r}: expected table-name,URI (e.g. t1,param:t1)")
        if not _TABLE_NAME.match(name):
            raise ParameterError(
                f"UPLOAD table name {name!r}: use a letter then letters, digits or _ (<= 32)"
            )
        if any(name.lower() == n.lower() for n, _ in pairs):
            raise ParameterError(f"UPLOAD names table {name!r} twice")
        if not uri.startswith("param:"):
            raise ParameterError(
                f"UPLOAD {name}: only inline tables (param:part) are accepted, "
                f"not {uri.split(':', 1)[0]!r} references"
            )
        pairs.append((name, uri.removeprefix("param:")))
    if not pairs:
        raise ParameterError("UPLOAD is empty")
    return pairs


def maxrec(params: Mapping[str, str], default: int, limit: int) -> int:
    """MAXREC as asked, capped at the service's limit; the default when absent."""
    value = params.get("maxrec")
    if value is None or value.strip() == "":
        return min(default, limit)
    try:
        asked = int(value)
    except ValueError:
        raise ParameterError(f"MAXREC={value!r} is not an integer") from None
    if asked < 0:
        raise ParameterError(f"MAXREC={asked} is negative")
    return min(asked, limit)
