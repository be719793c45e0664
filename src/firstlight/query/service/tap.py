"""HTTP handlers of TAP 1.1: /tap/sync, /tap/async (UWS 1.1) and the VOSI/DALI endpoints.

Thin: read the parameters, call the pure modules (params, uws, vosi) and
execution, answer. Parameter names are case-insensitive, GET and POST alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from firstlight.query.public import PublicTable, public_tables
from firstlight.query.service import uws
from firstlight.query.service.execution import Answer, error_answer, execute
from firstlight.query.service.jobs import JobRunner
from firstlight.query.service.params import ParameterError, lower_keys, query_request
from firstlight.query.service.state import ServiceState
from firstlight.query.service.vosi import (
    Limits,
    availability_xml,
    capabilities_xml,
    examples_xhtml,
    table_xml,
    tableset_xml,
)

XML = "text/xml; charset=utf-8"
MAX_WAIT_SECONDS = 5.0  # UWS WAIT: below clients' read timeouts (pyvo: 10 s)

router = APIRouter(prefix="/tap")


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def parameters(request: Request) -> dict[str, str]:
    """Query-string and form parameters by lower-case name (files: ``uploaded_parts``)."""
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        form = await request.form()
        pairs += [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return lower_keys(pairs)


async def uploaded_parts(request: Request, max_bytes: int) -> dict[str, bytes]:
    """The files of a multipart POST by part name, each read to at most ``max_bytes`` + 1.

    One byte more than allowed is enough to refuse the upload (read_uploads says so).
    """
    if request.method != "POST":
        return {}
    form = await request.form()
    return {
        name: await value.read(max_bytes + 1)
        for name, value in form.multi_items()
        if not isinstance(value, str)
    }


def limits(state: ServiceState) -> Limits:
    s = state.settings
    return Limits(
        default_maxrec=s.query_maxrec,
        maxrec_limit=s.query_maxrec_limit,
        sync_seconds=int(s.query_timeout_seconds),
        job_seconds=s.query_job_seconds,
        retention_seconds=int(s.query_job_retention_hours * 3600),
    )


# --- sync -------------------------------------------------------------------------------------


@router.api_route("/sync", methods=["GET", "POST"])
async def sync(request: Request) -> Response:
    state = _state(request)
    params = await parameters(request)
    try:
        query = query_request(
            params,
            default_maxrec=state.settings.query_maxrec,
            maxrec_limit=state.settings.query_maxrec_limit,
        )
    except ParameterError as exc:
        answer = error_answer(str(exc))
        return Response("".join(answer.body), status_code=answer.status, media_type=answer.mime)
    parts = await uploaded_parts(request, state.settings.query_upload_max_bytes)
    url = base_url(request)

    def run() -> tuple[Answer, str]:
        found = execute(
            state, query, url, timeout_seconds=state.settings.query_timeout_seconds, parts=parts
        )
        # One body, one write: the rows are in memory already (MAXREC bounds them), and a
        # stream of small chunks costs a delayed-ACK round trip per response on loopback TCP.
        # Written in the same worker thread as the query: one thread hop per request.
        return found, "".join(found.body)

    answer, body = await run_in_threadpool(run)
    return Response(body, status_code=answer.status, media_type=answer.mime)


# --- VOSI and examples ------------------------------------------------------------------------


@router.get("/availability")
def availability(request: Request) -> Response:
    up_since: datetime = request.app.state.up_since
    return Response(availability_xml(True, "the archive answers queries", up_since), media_type=XML)


@router.get("/capabilities")
def capabilities(request: Request) -> Response:
    state = _state(request)
    return Response(capabilities_xml(f"{base_url(request)}/tap", limits(state)), media_type=XML)


def _public_tables(state: ServiceState) -> list[PublicTable]:
    with state.query_engine.connect() as conn, conn.begin():
        return list(public_tables(conn, state.archive, now=state.now()))


@router.get("/tables")
def tables(request: Request, detail: str | None = None, only_tables: str | None = None) -> Response:
    """VOSI tables; ``only_tables=true`` (ESA TAP+, astroquery's load_tables) means detail=min."""
    found = _public_tables(_state(request))
    brief = (detail or "").lower() == "min" or (only_tables or "").lower() == "true"
    body = tableset_xml(found, detail=not brief)
    return Response(body, media_type=XML)


@router.get("/tables/{name}")
def table(request: Request, name: str) -> Response:
    for found in _public_tables(_state(request)):
        if found.table_name.lower() == name.lower():
            return Response(table_xml(found, root=True), media_type=XML)
    return PlainTextResponse(f"no public table {name}", status_code=404)


@router.get("/examples")
def examples() -> Response:
    return Response(examples_xhtml(), media_type="application/xhtml+xml")


# --- async (UWS) ------------------------------------------------------------------------------


def _job_url(request: Request, job_id: str) -> str:
    return f"{base_url(request)}/tap/async/{job_id}"


def _see(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _no_job(job_id: str) -> Response:
    return PlainTextResponse(f"no job {job_id}", status_code=404)


def _refused(exc: Exception) -> Response:
    return PlainTextResponse(str(exc), status_code=400)


@router.get("/async")
def job_list(request: Request) -> Response:
    runner = _runner(request)
    runner.reap()
    params = request.query_params
    try:
        after = datetime.fromisoformat(params["AFTER"]) if "AFTER" in params else None
        last = int(params["LAST"]) if "LAST" in params else None
        chosen = uws.select_jobs(
            runner.store.all(), phases=params.getlist("PHASE"), after=after, last=last
        )
    except ValueError as exc:
        return _refused(exc)
    return Response(uws.jobs_xml(chosen, f"{base_url(request)}/tap/async"), media_type=XML)


@router.post("/async")
async def create_job(request: Request) -> Response:
    runner = _runner(request)
    state = runner.state
    params = await parameters(request)
    phase = params.pop("phase", None)
    keep = timedelta(hours=state.settings.query_job_retention_hours)
    job = runner.store.create(
        params, now=state.now(), duration=state.settings.query_job_seconds, keep=keep
    )
    parts = await uploaded_parts(request, state.settings.query_upload_max_bytes)
    runner.store.save_parts(job.job_id, parts)
    if phase is not None and phase.upper() == "RUN":
        runner.run(job.job_id, base_url(request))
    return _see(_job_url(request, job.job_id))


@router.get("/async/{job_id}")
def job_document(request: Request, job_id: str) -> Response:
    runner = _runner(request)
    job = runner.store.get(job_id)
    if job is None:
        return _no_job(job_id)
    wait = request.query_params.get("WAIT")
    if wait is not None and job.phase.active:
        try:
            seconds = float(wait)
        except ValueError:
            return _refused(ValueError(f"WAIT={wait!r} is not a number"))
        seconds = MAX_WAIT_SECONDS if seconds < 0 else min(seconds, MAX_WAIT_SECONDS)
        runner.store.wait(job_id, job.phase, seconds)
        job = runner.store.get(job_id)
        if job is None:
            return _no_job(job_id)
    return Response(uws.job_xml(job, _job_url(request, job_id)), media_type=XML)


@router.delete("/async/{job_id}")
def delete_job(request: Request, job_id: str) -> Response:
    runner = _runner(request)
    if runner.store.get(job_id) is None:
        return _no_job(job_id)
    runner.update(job_id, lambda j: uws.abort(j, runner.state.now()))
    runner.store.delete(job_id)
    return _see(f"{base_url(request)}/tap/async")


@router.post("/async/{job_id}")
async def post_job(request: Request, job_id: str) -> Response:
    params = await parameters(request)
    if params.get("action", "").upper() == "DELETE":
        return delete_job(request, job_id)
    runner = _runner(request)
    try:
        phase = params.pop("phase", None)
        parts = await uploaded_parts(request, runner.state.settings.query_upload_max_bytes)
        if parts:
            runner.update(job_id, lambda j: uws.with_parameters(j, {}))  # PENDING only
            runner.store.save_parts(job_id, parts)
        if params:
            runner.update(job_id, lambda j: uws.with_parameters(j, params))
        if phase is not None:
            _change_phase(request, runner, job_id, phase)
    except KeyError:
        return _no_job(job_id)
    except (uws.PhaseError, ValueError) as exc:
        return _refused(exc)
    return _see(_job_url(request, job_id))


def _change_phase(request: Request, runner: JobRunner, job_id: str, phase: str) -> None:
    if phase.upper() == "RUN":
        runner.run(job_id, base_url(request))
    elif phase.upper() == "ABORT":
        runner.update(job_id, lambda j: uws.abort(j, runner.state.now()))
    else:
        raise ValueError(f"PHASE={phase!r}: use RUN or ABORT")


@router.get("/async/{job_id}/phase")
def get_phase(request: Request, job_id: str) -> Response:
    job = _runner(request).store.get(job_id)
    return _no_job(job_id) if job is None else PlainTextResponse(job.phase.value)


@router.post("/async/{job_id}/phase")
async def post_phase(request: Request, job_id: str) -> Response:
    params = await parameters(request)
    runner = _runner(request)
    try:
        _change_phase(request, runner, job_id, params.get("phase", ""))
    except KeyError:
        return _no_job(job_id)
    except (uws.PhaseError, ValueError) as exc:
        return _refused(exc)
    return _see(_job_url(request, job_id))


@router.get("/async/{job_id}/executionduration")
def get_duration(request: Request, job_id: str) -> Response:
    job = _runner(request).store.get(job_id)
    return _no_job(job_id) if job is None else PlainTextResponse(str(job.execution_duration))


@router.post("/async/{job_id}/executionduration")
async def post_duration(request: Request, job_id: str) -> Response:
    params = await parameters(request)
    runner = _runner(request)
    limit = runner.state.settings.query_job_seconds
    try:
        seconds = int(params.get("executionduration", ""))
        runner.update(job_id, lambda j: uws.with_execution_duration(j, seconds, limit))
    except KeyError:
        return _no_job(job_id)
    except ValueError as exc:  # PhaseError is a ValueError
        return _refused(exc)
    return _see(_job_url(request, job_id))


@router.get("/async/{job_id}/destruction")
def get_destruction(request: Request, job_id: str) -> Response:
    job = _runner(request).store.get(job_id)
    return _no_job(job_id) if job is None else PlainTextResponse(uws.iso(job.destruction))


@router.post("/async/{job_id}/destruction")
async def post_destruction(request: Request, job_id: str) -> Response:
    params = await parameters(request)
    runner = _runner(request)
    state = runner.state
    latest = state.now() + timedelta(hours=state.settings.query_job_retention_hours)
    try:
        when = datetime.fromisoformat(params.get("destruction", "").replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError("DESTRUCTION needs a time zone (e.g. a trailing Z)")
        runner.update(job_id, lambda j: uws.with_destruction(j, when, latest))
    except KeyError:
        return _no_job(job_id)
    except ValueError as exc:
        return _refused(exc)
    return _see(_job_url(request, job_id))


@router.get("/async/{job_id}/quote")
def get_quote(request: Request, job_id: str) -> Response:
    job = _runner(request).store.get(job_id)
    if job is None:
        return _no_job(job_id)
    return PlainTextResponse(uws.iso(job.quote) if job.quote else "")


@router.get("/async/{job_id}/owner")
def get_owner(request: Request, job_id: str) -> Response:
    job = _runner(request).store.get(job_id)
    return _no_job(job_id) if job is None else PlainTextResponse(job.owner or "")


@router.get("/async/{job_id}/parameters")
def get_parameters(request: Request, job_id: str) -> Response:
    job = _runner(request).store.get(job_id)
    return _no_job(job_id) if job is None else Response(uws.parameters_xml(job), media_type=XML)


@router.post("/async/{job_id}/parameters")
async def post_parameters(request: Request, job_id: str) -> Response:
    params = await parameters(request)
    runner = _runner(request)
    try:
        runner.update(job_id, lambda j: uws.with_parameters(j, params))
    except KeyError:
        return _no_job(job_id)
    except uws.PhaseError as exc:
        return _refused(exc)
    return _see(_job_url(request, job_id))


@router.get("/async/{job_id}/results")
def get_results(request: Request, job_id: str) -> Response:
    job = _runner(request).store.get(job_id)
    if job is None:
        return _no_job(job_id)
    return Response(uws.results_xml(job, _job_url(request, job_id)), media_type=XML)


@router.get("/async/{job_id}/results/{result_id}")
def get_result(request: Request, job_id: str, result_id: str) -> Response:
    runner = _runner(request)
    job = runner.store.get(job_id)
    if job is None:
        return _no_job(job_id)
    found = runner.result_file(job) if any(r.id == result_id for r in job.results) else None
    if found is None:
        return PlainTextResponse(f"job {job_id} has no result {result_id}", status_code=404)
    path, mime = found
    return Response(path.read_bytes(), media_type=mime)


@router.get("/async/{job_id}/error")
def get_error(request: Request, job_id: str) -> Response:
    runner = _runner(request)
    job = runner.store.get(job_id)
    if job is None:
        return _no_job(job_id)
    path = runner.store.result_path(job_id, "error.xml")
    if job.phase is not uws.Phase.ERROR or not path.is_file():
        return PlainTextResponse(f"job {job_id} has no error", status_code=404)
    return Response(path.read_bytes(), media_type="application/x-votable+xml")
