"""The query service as one FastAPI application, built from ``Settings``.

``create_app`` wires the state (archive, read-only query engine, stores,
clock) and the async job runner once, and mounts the routers: TAP (with
VOSI and examples), Simple Cone Search, SIA 2.0, DataLink and file downloads,
and the pages for people (``pages``: missions, releases, coverage, operations).
``serve`` runs it with uvicorn (``firstlight serve``, ``firstlight up``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from firstlight.config import Settings
from firstlight.query.service import datalink, pages, scs, sia, tap
from firstlight.query.service.access_log import AccessLog
from firstlight.query.service.jobs import JobRunner, JobStore
from firstlight.query.service.state import Clock, open_state


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    state = open_state(settings, clock)
    runner = JobRunner(state, JobStore(settings.query_jobs_dir))
    runner.recover()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runner.shutdown()
            state.close()

    app = FastAPI(title="firstlight query service", lifespan=lifespan, docs_url="/docs")
    app.add_middleware(AccessLog)
    app.state.service = state
    app.state.jobs = runner
    app.state.up_since = state.now()
    app.include_router(tap.router)
    app.include_router(scs.router)
    app.include_router(datalink.router)
    app.include_router(sia.router)
    app.include_router(pages.router)

    @app.get("/tap", response_class=HTMLResponse)
    def tap_root() -> str:
        return (
            "<html><body><h1>TAP service</h1><p>Point pyvo, astroquery or TOPCAT here. "
            '<a href="tap/capabilities">capabilities</a>, <a href="tap/tables">tables</a>, '
            '<a href="tap/examples">examples</a>. <a href="/">All missions</a>.</p></body></html>'
        )

    return app


def base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - naming, not binding
    return f"http://{shown}:{port}"


def server(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    app: FastAPI | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the app (not started); ``log_level`` warning keeps consoles quiet."""
    config = uvicorn.Config(
        app or create_app(settings),
        host=host or settings.query_host,
        port=port if port is not None else settings.query_port,
        log_level="warning",
        access_log=False,
    )
    return uvicorn.Server(config)


class ServiceThread:
    """The service on a background thread of this process (``firstlight up``, tests)."""

    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.run, name="query-service", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = timeout
        step = 0.05
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the query service stopped while starting (port taken?)")
            if deadline <= 0:
                raise TimeoutError(f"the query service did not start within {timeout} s")
            self.thread.join(step)
            deadline -= step

    @property
    def url(self) -> str:
        """The base URL it listens on (the port the system gave, when asked for port 0)."""
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return base_url(str(host), int(port))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
