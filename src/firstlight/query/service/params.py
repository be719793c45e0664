"""TAP request parameters: names are case-insensitive, values are checked here.

Pure: ``query_request`` turns the parameters of a sync request or an async
job into a ``QueryRequest`` or raises ``ParameterError`` saying which
parameter is wrong and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from firstlight.query.service.formats import FormatError, OutputFormat, output_format

LANGUAGES = ("ADQL", "ADQL-2.0", "ADQL-2.1")


class ParameterError(ValueError):
    """A TAP parameter that is missing, unsupported or malformed; the message names it."""


@dataclass(frozen=True)
class QueryRequest:
    query: str
    format: OutputFormat
    maxrec: int


def lower_keys(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Parameters by lower-case name (the last value of a repeated name wins)."""
    return {k.lower(): v for k, v in pairs}


def query_request(
    params: Mapping[str, str], *, default_maxrec: int, maxrec_limit: int
) -> QueryRequest:
    request = params.get("request")
    if request is not None and request.lower() != "doquery":
        raise ParameterError(f"REQUEST={request!r} is not supported; only doQuery")
    if "upload" in params:
        raise ParameterError("UPLOAD is not supported by this service")
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
    except FormatError as exc:
        raise ParameterError(str(exc)) from exc
    return QueryRequest(
        query=query, format=fmt, maxrec=maxrec(params, default_maxrec, maxrec_limit)
    )


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
