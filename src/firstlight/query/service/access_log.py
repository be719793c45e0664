"""The query service's access log: one line per request (client, method, path, status, ms).

An ASGI middleware, not Starlette's ``BaseHTTPMiddleware`` (which buffers
streamed responses such as large VOTables). The logger is ``firstlight.access``;
``log_to_file`` sends it to ``<data dir>/logs/access.log`` (`firstlight serve`
does). Only the path is logged: query strings carry whole ADQL queries.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("firstlight.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client: Any = scope.get("client")
            log.info(
                "%s %s %s %d %.1f ms",
                client[0] if client else "-",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )


def log_to_file(path: Path) -> None:
    """Append the access log to ``path`` (once per file, however often called)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = str(path.resolve())
    if any(getattr(h, "baseFilename", None) == target for h in log.handlers):
        return
    handler = logging.FileHandler(target)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # not also on the console of whoever runs the service
