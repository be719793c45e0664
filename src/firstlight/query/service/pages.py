"""The service's pages for people: missions, releases, sky coverage, operations.

Server-rendered HTML (Jinja2 templates in ``templates/``, styles inline,
nothing from another host, no script needed) and the same data as JSON at
the same URL (``?format=json`` or ``Accept: application/json``):

- ``/``: missions (current release, releases, rows, files, last
  time-to-data) and the service's endpoints with pyvo/TOPCAT snippets;
- ``/missions/<mission>``: its promoted releases;
- ``/releases/<release_key>``: tables and columns, files, dates, embargo
  counts, the gate's decision, Data Docs, coverage (``moc.fits``,
  ``moc.json``, ``coverage.png`` below it);
- ``/operations``: time-to-data, forecasts, quarantine, held releases
  (``time-to-data.png``, ``reports/<id>``, ``data-docs/<id>/...``).

Handlers are thin: reads are in ``query.pages.catalog`` and
``query.pages.operations``, images in ``query.pages.drawing``.
"""

from __future__ import annotations

import io
import json
import mimetypes
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection

from firstlight.query.pages import catalog, operations
from firstlight.query.service.state import ServiceState
from firstlight.storage.coverage import CoverageStore
from firstlight.storage.visibility import PublicAt

router = APIRouter()
_TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(
    loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True
)
MOC_FITS = "application/fits"


def _filters() -> None:
    _env.filters["size"] = human_size
    _env.filters["seconds"] = human_seconds
    _env.filters["when"] = lambda d: "" if d is None else d.strftime("%Y-%m-%d %H:%M:%S UTC")


def human_size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


_filters()


def wants_json(request: Request) -> bool:
    if request.query_params.get("format", "").lower() == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _page(request: Request, template: str, data: Any, status: int = 200, **extra: Any) -> Response:
    if wants_json(request):
        return Response(_json(data), status_code=status, media_type="application/json")
    html = _env.get_template(template).render(
        data=data,
        root=_root(request),
        base_url=str(request.base_url).rstrip("/"),
        operations=_state(request).settings.pages_operations,
        **extra,
    )
    return HTMLResponse(html, status_code=status)


def _json(data: Any) -> bytes:
    """JSON of dataclasses, dicts and lists (datetimes as ISO 8601): json.dumps, not
    FastAPI's jsonable_encoder, which costs tens of ms on a release or the ledger."""
    return json.dumps(_plain(data), default=_default, separators=(",", ":")).encode()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _plain(data: Any) -> Any:
    if is_dataclass(data) and not isinstance(data, type):
        return asdict(data)
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def _not_found(request: Request, what: str) -> Response:
    return _page(request, "not_found.html", {"error": f"no {what}"}, status=404)


def _read(state: ServiceState) -> Connection:
    """A connection for the pages' reads (the archive's engine: the pages read the
    ledger's timings and the gate's decisions, which the query role may not)."""
    return state.archive.engine.connect()


# -- scientists' pages ---------------------------------------------------------------


def endpoints(request: Request) -> list[dict[str, str]]:
    base = str(request.base_url).rstrip("/")
    paths = {getattr(r, "path", "") for r in request.app.routes}
    found = [
        {"name": "TAP 1.1 (ADQL, sync and async)", "standard": "ivo://ivoa.net/std/TAP",
         "url": f"{base}/tap"},
        {"name": "Simple Cone Search", "standard": "ivo://ivoa.net/std/ConeSearch",
         "url": f"{base}/scs/<mission>/<table>?RA=&DEC=&SR="},
        {"name": "DataLink", "standard": "ivo://ivoa.net/std/DataLink",
         "url": f"{base}/datalink/links?ID=<obs_publisher_did>"},
    ]  # fmt: skip
    if any(p.startswith("/sia") for p in paths):
        found.insert(2, {"name": "Simple Image Access 2.0", "standard": "ivo://ivoa.net/std/SIA#query-2.0",
                         "url": f"{base}/sia/query"})  # fmt: skip
    return found


def snippets(base: str, table: str | None) -> dict[str, str]:
    """Text for people to copy: the TAP URL and a first query."""
    adql = f"SELECT TOP 10 * FROM {table or 'ivoa.obscore'}"  # noqa: S608 - shown, not run
    return {
        "pyvo": (
            "import pyvo\n"
            f'tap = pyvo.dal.TAPService("{base}/tap")\n'
            f'rows = tap.search("{adql}").to_table()\n'
            "print(rows)"
        ),
        "topcat": (
            "TOPCAT: VO > Table Access Protocol (TAP) Query, TAP URL:\n"
            f"  {base}/tap\n"
            "or from a shell, with STILTS:\n"
            f'  stilts tapquery tapurl={base}/tap adql="{adql}"'
        ),
    }


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    state = _state(request)
    at = PublicAt(state.now())
    with _read(state) as conn:
        found = catalog.missions(conn, at)
    example = None
    base = str(request.base_url).rstrip("/")
    data = {
        "missions": found,
        "endpoints": endpoints(request),
        "snippets": snippets(base, example),
        "now": at.now,
    }
    return _page(request, "home.html", data)


@router.get("/missions/{mission}", response_class=HTMLResponse)
def mission_page(request: Request, mission: str) -> Response:
    state = _state(request)
    at = PublicAt(state.now())
    with _read(state) as conn:
        found = catalog.mission_releases(conn, mission, at)
    if not found:
        return _not_found(request, f"mission {mission!r} with a public release")
    current = next((r for r in found if r.current), None)
    data = {"mission": mission, "current": current, "releases": found, "now": at.now}
    return _page(request, "mission.html", data)


@router.get("/releases/{release_key}", response_class=HTMLResponse)
def release_page(request: Request, release_key: str) -> Response:
    state = _state(request)
    at = PublicAt(state.now())
    with _read(state) as conn:
        detail = catalog.release_detail(conn, release_key, at)
    if detail is None:
        return _not_found(request, f"public release {release_key!r}")
    store = CoverageStore(state.settings.coverage_dir)
    coverage: dict[str, Any] = {"recorded": store.recorded(release_key)}
    if coverage["recorded"]:
        moc = store.load(release_key, at.now)
        coverage["sky_fraction"] = None if moc is None else float(moc.sky_fraction)
        coverage["order"] = state.settings.coverage_order
        for name in ("moc.fits", "moc.json", "coverage.png"):
            coverage[name.replace(".", "_")] = f"{_root(request)}/releases/{release_key}/{name}"
    table = detail.tables[0].adql_names[0] if detail.tables else None
    base = str(request.base_url).rstrip("/")
    data = {
        "release": detail,
        "coverage": coverage,
        "snippets": snippets(base, table),
        "data_docs": (
            f"{_root(request)}/releases/{release_key}/data-docs/index.html"
            if detail.data_docs
            else None
        ),
        "now": at.now,
    }
    return _page(request, "release.html", data)


def _coverage(request: Request, release_key: str) -> tuple[ServiceState, Any] | None:
    state = _state(request)
    at = PublicAt(state.now())
    with _read(state) as conn:
        if catalog.release_detail(conn, release_key, at) is None:
            return None
    try:
        moc = CoverageStore(state.settings.coverage_dir).load(release_key, at.now)
    except ValueError:
        return None
    return None if moc is None else (state, moc)


@router.get("/releases/{release_key}/moc.fits")
def moc_fits(request: Request, release_key: str) -> Response:
    found = _coverage(request, release_key)
    if found is None:
        return _not_found(request, f"coverage of {release_key!r}")
    # NUNIQ with MOC 1.1's keywords: the form Aladin, TOPCAT/STILTS and mocpy all read.
    keywords = {"PIXTYPE": "HEALPIX", "MOCID": f"{release_key}", "ORIGIN": "firstlight"}
    buf = io.BytesIO()
    found[1].serialize(format="fits", v1_compatible=True, optional_kw_dict=keywords).writeto(buf)
    return Response(
        buf.getvalue(),
        media_type=MOC_FITS,
        headers={"Content-Disposition": f'inline; filename="{release_key}-moc.fits"'},
    )


@router.get("/releases/{release_key}/moc.json")
def moc_json(request: Request, release_key: str) -> Response:
    found = _coverage(request, release_key)
    if found is None:
        return _not_found(request, f"coverage of {release_key!r}")
    return JSONResponse(found[1].serialize(format="json"))


@router.get("/releases/{release_key}/coverage.png")
def coverage_png(request: Request, release_key: str) -> Response:
    from firstlight.query.pages.drawing import cached_png, sky_map

    state = _state(request)
    store = CoverageStore(state.settings.coverage_dir)
    found = _coverage(request, release_key)
    if found is None:
        return _not_found(request, f"coverage of {release_key!r}")
    groups = store.public_groups(release_key, state.now())
    key = {"release": release_key, "groups": groups, "v": 1}
    path = cached_png(
        state.settings.pages_cache_dir, "sky", key, lambda: sky_map(found[1], release_key)
    )
    return FileResponse(path, media_type="image/png")


@router.get("/releases/{release_key}/data-docs/{path:path}")
def release_data_docs(request: Request, release_key: str, path: str) -> Response:
    state = _state(request)
    with _read(state) as conn:
        detail = catalog.release_detail(conn, release_key, PublicAt(state.now()))
    if detail is None or detail.data_docs is None:
        return _not_found(request, f"validation report of {release_key!r}")
    return _site_file(Path(detail.data_docs).parent, path) or _not_found(request, "such file")


def _site_file(site: Path, path: str) -> Response | None:
    """A file of a Data Docs site, never one outside it."""
    target = (site / (path or "index.html")).resolve()
    if not target.is_relative_to(site.resolve()) or not target.is_file():
        return None
    mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=mime)


# -- operators' page -------------------------------------------------------------------


def prefect_ui(state: ServiceState) -> str:
    s = state.settings
    return (s.prefect_ui_url or f"http://127.0.0.1:{s.prefect_port}").rstrip("/")


def _operations_cache(request: Request) -> operations.OperationsCache:
    """One per app (an app reads one archive), made on first use."""
    cache = getattr(request.app.state, "operations_cache", None)
    if cache is None:
        cache = request.app.state.operations_cache = operations.OperationsCache()
    assert isinstance(cache, operations.OperationsCache)
    return cache


def _operations_off(request: Request) -> Response | None:
    if _state(request).settings.pages_operations:
        return None
    return _not_found(request, "operations page on this service (FIRSTLIGHT_PAGES_OPERATIONS)")


@router.get("/operations", response_class=HTMLResponse)
def operations_page(request: Request) -> Response:
    if (off := _operations_off(request)) is not None:
        return off
    state = _state(request)
    with _read(state) as conn:
        ops = _operations_cache(request).get(conn, limit=state.settings.pages_history)
    data = {
        "operations": ops,
        "prefect_ui": prefect_ui(state),
        "plot": f"{_root(request)}/operations/time-to-data.png",
        "now": state.now(),
    }
    return _page(request, "operations.html", data)


@router.get("/operations/time-to-data.png")
def operations_plot(request: Request) -> Response:
    from firstlight.query.pages.drawing import cached_png, time_to_data_plot

    if (off := _operations_off(request)) is not None:
        return off
    state = _state(request)
    with _read(state) as conn:
        ops = operations.operations(conn, limit=state.settings.pages_history)
    key = {"ops": _plain(ops.deliveries), "weeks": _plain(ops.weeks), "v": 1}
    path = cached_png(state.settings.pages_cache_dir, "ttd", key, lambda: time_to_data_plot(ops))
    return FileResponse(path, media_type="image/png")


@router.get("/operations/reports/{delivery_pk}")
def quarantine_report(request: Request, delivery_pk: int) -> Response:
    if (off := _operations_off(request)) is not None:
        return off
    state = _state(request)
    with _read(state) as conn:
        found = operations.report(conn, delivery_pk)
    if found is None:
        return _not_found(request, f"report for delivery {delivery_pk}")
    return Response(_json(found), media_type="application/json")


@router.get(operations.DATA_DOCS_ROUTE + "{path:path}")
def operations_data_docs(request: Request, delivery_pk: int, path: str) -> Response:
    if (off := _operations_off(request)) is not None:
        return off
    state = _state(request)
    with _read(state) as conn:
        site = operations.data_docs(conn, delivery_pk)
    if site is None:
        return _not_found(request, f"validation report for delivery {delivery_pk}")
    return _site_file(Path(site).parent, path) or _not_found(request, "such file")
