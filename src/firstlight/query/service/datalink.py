"""DataLink 1.1 links (/datalink/links) and file downloads (/files/<key>).

A product is public when ``storage.visibility`` says so (its release
promoted, its release date, if any, passed), judged by the service's clock.
Anything else, whether it does not exist or is embargoed, gets the same
answer: "not found" (a 404 for a file, an error row for a link), so nothing
says an embargoed product exists.
A file whose date has passed is served even while it still waits in the
embargo store for the scheduled copy to the public store. Files in a local
store are sent by the service; a public store in S3 answers ``/files/<key>``
with a 307 redirect to a presigned URL, so links and ObsCore ``access_url``
always name this service's ``/files`` URL, whatever the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from firstlight.query.service.state import ServiceState
from firstlight.query.service.votable import VOTABLE_MIME, FieldSpec, results_document
from firstlight.storage.visibility import PublicAt, PublicProduct

router = APIRouter()

DATALINK_MIME = f"{VOTABLE_MIME};content=datalink"
MIME_BY_FORMAT = {
    "fits": "application/fits",
    "votable": VOTABLE_MIME,
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
LINK_FIELDS = (
    FieldSpec("ID", "char", "*", ucd="meta.id;meta.main"),
    FieldSpec("access_url", "char", "*", ucd="meta.ref.url"),
    FieldSpec("service_def", "char", "*", ucd="meta.ref"),
    FieldSpec("error_message", "char", "*", ucd="meta.code.error"),
    FieldSpec("semantics", "char", "*", ucd="meta.code"),
    FieldSpec("description", "char", "*", ucd="meta.note"),
    FieldSpec("content_type", "char", "*", ucd="meta.code.mime"),
    FieldSpec("content_length", "long", unit="byte", ucd="phys.size;meta.file"),
    FieldSpec("content_qualifier", "char", "*", ucd="meta.code.class"),
    FieldSpec("local_semantics", "char", "*", ucd="meta.code"),
    FieldSpec("link_auth", "char", "*", ucd="meta.code"),
    FieldSpec("link_authorized", "boolean", ucd="meta.code"),
)


def public_product_by_did(state: ServiceState, did: str, now: datetime) -> PublicProduct | None:
    with state.archive.engine.connect() as conn:
        return PublicAt(now).product_by_did(conn, did)


def product_mime(product: PublicProduct) -> str:
    """The declared MIME type of a product, else the one its format implies."""
    return product.access_format or MIME_BY_FORMAT.get(product.format, "application/octet-stream")


def public_file(state: ServiceState, key: str, now: datetime) -> tuple[Path | str, str] | None:
    """Where a public product's bytes are (a path, or a URL to redirect to), and their type.

    None when the product is not public (or absent).
    """
    with state.archive.engine.connect() as conn:
        product = PublicAt(now).product_by_key(conn, key)
    if product is None:
        return None
    mime = MIME_BY_FORMAT.get(product.format, "application/octet-stream")
    for store in (state.public_store, state.embargo_store):
        path = store.local_path(key)
        if path is None:
            url = store.download_url(key, mime)
            if url is not None:
                return url, mime
        elif path.is_file():
            return path, mime
    return None


def link_rows(state: ServiceState, ids: Sequence[str], base_url: str) -> list[list[Any]]:
    now = state.now()
    rows: list[list[Any]] = []
    for did in ids:
        found = public_product_by_did(state, did, now)
        if found is None:
            rows.append([did, None, None, f"NotFoundFault: {did} not found"] + [None] * 8)
            continue
        rows.append(
            [
                did,
                f"{base_url}/files/{found.storage_key}",
                None,
                None,
                "#this",
                f"the {found.product_type} file",
                product_mime(found),
                found.size,
                None,
                None,
                None,
                None,
            ]
        )
    return rows


@router.api_route("/datalink/links", methods=["GET", "POST"])
async def links(request: Request) -> Response:
    state: ServiceState = request.app.state.service
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        form = await request.form()
        pairs += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    ids = [v for k, v in pairs if k.upper() == "ID"]
    base = str(request.base_url).rstrip("/")
    rows = await run_in_threadpool(link_rows, state, ids, base)
    body = "".join(results_document(LINK_FIELDS, rows, table_name="links"))
    return Response(body, media_type=DATALINK_MIME)


@router.get("/files/{key:path}")
async def download(request: Request, key: str) -> Response:
    state: ServiceState = request.app.state.service
    try:
        found = await run_in_threadpool(public_file, state, key, state.now())
    except ValueError:  # an unsafe key (.., absolute): never a stored product
        found = None
    if found is None:
        return PlainTextResponse("not found", status_code=404)
    where, mime = found
    if isinstance(where, str):
        return RedirectResponse(where, status_code=307)
    return FileResponse(where, media_type=mime, filename=Path(key).name)
