"""HTTP handlers of SIA 2.0: /sia/query over ObsCore's images, and its VOSI endpoints.

Thin: the parameters become ADQL (``sia_query``), which runs as a TAP query
(``execution.execute``: public rows only, MAXREC and OVERFLOW, DataLink
descriptors, the service's download URLs). Parameter names are
case-insensitive; a parameter may repeat (its values are ORed).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from firstlight.query.service.execution import error_answer, execute
from firstlight.query.service.params import ParameterError, query_request
from firstlight.query.service.sia_query import sia_adql
from firstlight.query.service.state import ServiceState
from firstlight.query.service.vosi import VS, XML_HEAD, XSI, availability_xml
from firstlight.query.service.votable import text

SIA_STANDARD_ID = "ivo://ivoa.net/std/SIA#query-2.0"
XML = "text/xml; charset=utf-8"

router = APIRouter(prefix="/sia")


async def _parameters(request: Request) -> dict[str, list[str]]:
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        form = await request.form()
        pairs += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    found: dict[str, list[str]] = {}
    for key, value in pairs:
        found.setdefault(key.lower(), []).append(value)
    return found


@router.api_route("/query", methods=["GET", "POST"])
async def query(request: Request) -> Response:
    state: ServiceState = request.app.state.service
    params = await _parameters(request)
    last = {k: v[-1] for k, v in params.items() if k in ("maxrec", "responseformat")}
    try:
        adql = sia_adql(params)
        asked = query_request(
            {"lang": "ADQL", "query": adql, **last},
            default_maxrec=state.settings.query_maxrec,
            maxrec_limit=state.settings.query_maxrec_limit,
        )
    except ParameterError as exc:
        answer = error_answer(str(exc))
    else:
        answer = await run_in_threadpool(
            execute,
            state,
            asked,
            str(request.base_url).rstrip("/"),
            timeout_seconds=state.settings.query_timeout_seconds,
        )
    body = await run_in_threadpool("".join, answer.body)
    return Response(body, status_code=answer.status, media_type=answer.mime)


@router.get("/capabilities")
def capabilities(request: Request) -> Response:
    base = str(request.base_url).rstrip("/") + "/sia"
    return Response(sia_capabilities_xml(base), media_type=XML)


@router.get("/availability")
def availability(request: Request) -> Response:
    up_since: datetime = request.app.state.up_since
    return Response(availability_xml(True, "the archive answers queries", up_since), media_type=XML)


def sia_capabilities_xml(sia_url: str) -> str:
    """SIA 2.0's query capability and the VOSI ones, as VOSI capabilities lists them."""

    def capability(standard: str, url: str) -> str:
        return (
            f'<capability standardID="{standard}">'
            f'<interface xsi:type="vs:ParamHTTP" role="std">'
            f'<accessURL use="full">{text(url)}</accessURL></interface></capability>'
        )

    return (
        f"{XML_HEAD}<vosi:capabilities "
        f'xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" {XSI} {VS}>'
        + capability(SIA_STANDARD_ID, f"{sia_url}/query")
        + capability("ivo://ivoa.net/std/VOSI#capabilities", f"{sia_url}/capabilities")
        + capability("ivo://ivoa.net/std/VOSI#availability", f"{sia_url}/availability")
        + "</vosi:capabilities>"
    )
