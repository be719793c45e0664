"""One TAP query from its parameters to the bytes of its response.

Shared by the sync endpoint and the async workers, so both answer alike:
``execute`` runs the ADQL (query.tap.run_adql: parsed, checked, translated,
one read-only snapshot, time-limited) and renders the result; any failure a
user can act on becomes a DALI error document saying what went wrong.

Two things are added to results here because only the service knows its own
URL: access URLs of public files become download URLs of this service (the
archive stores them as locations in the public store), and a result holding
``obs_publisher_did`` carries a DataLink service descriptor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from firstlight.query.service.formats import OutputFormat, render
from firstlight.query.service.params import ParameterError, QueryRequest
from firstlight.query.service.state import ServiceState
from firstlight.query.service.upload import UploadLimits, read_uploads
from firstlight.query.service.votable import (
    VOTABLE_MIME,
    ColumnLike,
    ServiceDescriptor,
    error_document,
)

log = logging.getLogger(__name__)

DID_COLUMN = "obs_publisher_did"
ACCESS_URL_COLUMN = "access_url"
URL_UCD = "meta.ref.url"


@dataclass(frozen=True)
class Answer:
    """A rendered response: its body in pieces, its type, and the HTTP status."""

    body: Iterable[str]
    mime: str
    status: int = 200
    rows: int | None = None
    error: str | None = None  # the message, when the query failed


def error_answer(message: str, status: int = 400) -> Answer:
    return Answer([error_document(message)], VOTABLE_MIME, status, error=message)


def execute(
    state: ServiceState,
    request: QueryRequest,
    base_url: str,
    *,
    timeout_seconds: float,
    parts: Mapping[str, bytes] | None = None,
) -> Answer:
    """Run one query; an Answer either way (a DALI error document when it fails).

    ``parts`` are the request's uploaded files by part name (TAP_UPLOAD).
    """
    from firstlight.query.adql import AdqlError
    from firstlight.query.tap import QueryTimeout, run_adql

    try:
        uploads = (
            read_uploads(request.uploads, parts or {}, upload_limits(state))
            if request.uploads
            else []
        )
        result = run_adql(
            state.archive,
            request.query,
            maxrec=request.maxrec,
            timeout_seconds=timeout_seconds,
            now=state.now(),
            engine=state.query_engine,
            temporary=uploads,
        )
    except AdqlError as exc:
        return error_answer(str(exc))
    except QueryTimeout as exc:
        return error_answer(f"query exceeded its time limit of {timeout_seconds:g} s: {exc}")
    except ParameterError as exc:
        return error_answer(str(exc))
    except Exception:
        log.exception("TAP query failed: %s", request.query)
        return error_answer("internal error while running the query; the operators are told", 500)
    rows = public_urls(state, base_url, result.columns, result.rows)
    descriptors = [ServiceDescriptor(f"{base_url}/datalink/links", DID_COLUMN)]
    return Answer(
        render(
            request.format, result.columns, rows, overflow=result.overflow, descriptors=descriptors
        ),
        _mime(request.format),
        rows=len(rows),
    )


def upload_limits(state: ServiceState) -> UploadLimits:
    s = state.settings
    return UploadLimits(max_bytes=s.query_upload_max_bytes, max_rows=s.query_upload_max_rows)


def public_urls(
    state: ServiceState, base_url: str, columns: Sequence[ColumnLike], rows: Sequence[Sequence[Any]]
) -> Sequence[Sequence[Any]]:
    """Rows whose access URLs into the public store point at this service's downloads."""
    # By name, or by UCD when a query renamed it (SELECT access_url AS url).
    where = [i for i, c in enumerate(columns) if c.name == ACCESS_URL_COLUMN or c.ucd == URL_UCD]
    if not where:
        return rows
    prefix = state.public_store_prefix
    files = f"{base_url}/files/"

    def rewrite(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(prefix):
            return files + value[len(prefix) :]
        return value

    out: list[Sequence[Any]] = []
    for row in rows:
        cells = list(row)
        for i in where:
            cells[i] = rewrite(cells[i])
        out.append(cells)
    return out


def _mime(fmt: OutputFormat) -> str:
    if fmt.votable:
        return VOTABLE_MIME
    return f"{fmt.mime}; charset=utf-8" if fmt.mime.startswith("text/") else fmt.mime
