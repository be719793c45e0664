"""The whole stack on one machine, as `firstlight up` runs it.

A Prefect server (its own SQLite database in the data directory unless
PREFECT_API_DATABASE_CONNECTION_URL says otherwise), a process serving every
deployment (flows/serve.py, polling for work every second), the automation
that reports failed runs, and the arrival watchers of the inbox folder and,
when configured, of the S3 inbox, and the query service for scientists (TAP,
cone search, DataLink; ``firstlight serve`` as a child process, on
``query_port`` or, when that is taken, a free one). Everything stops on
``stop()``: watchers first, so no arrival is announced to a server that is
going away.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from firstlight.config import Settings
from firstlight.events.prefect_sink import PrefectEventSink
from firstlight.events.watchers import Watchers
from flows.automations import REPORT_DEPLOYMENT, ensure_failure_automation
from flows.release_delivery import RELEASE_DEPLOYMENT

log = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackUrls:
    prefect_ui: str
    prefect_api: str
    inbox: Path
    query_service: str


def prefect_environment(settings: Settings, api_url: str) -> dict[str, str]:
    """What every process of the stack runs with: one server, one set of settings."""
    env = {**os.environ, **settings.as_environment()}
    env.setdefault("PREFECT_HOME", str((settings.data_dir / "prefect").resolve()))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    env["PREFECT_API_URL"] = api_url
    return env


class Stack:
    def __init__(self, settings: Settings, *, port: int) -> None:
        self.settings = settings
        self.port = port
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.env = prefect_environment(settings, self.api_url)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        self.watchers = Watchers(settings, PrefectEventSink(self.api_url))

    def start(self) -> StackUrls:
        self.settings.ensure_dirs()
        Path(self.env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
        prefect = str(Path(sys.executable).with_name("prefect"))
        self._spawn(
            "prefect-server",
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
        )
        self._wait_healthy(timeout=120)
        self._spawn("deployments", [sys.executable, "-m", "flows.serve"])
        self._wait_for_deployment(REPORT_DEPLOYMENT, timeout=120)
        self._wait_for_deployment(RELEASE_DEPLOYMENT, timeout=30)
        ensure_failure_automation(self.api_url, self.settings.failure_webhook_url)
        query_url = self._start_query_service()
        self.watchers.start()
        return StackUrls(
            prefect_ui=f"http://127.0.0.1:{self.port}",
            prefect_api=self.api_url,
            inbox=self.settings.inbox_dir.resolve(),
            query_service=query_url,
        )

    def stop(self) -> None:
        self.watchers.stop()
        if self._procs:
            self._drain(timeout=15)
        for proc in reversed(self._procs.values()):  # the runner before the server it talks to
            _terminate(proc)
        for fh in self._logs:
            fh.close()
        self._procs.clear()
        self._logs.clear()

    def __enter__(self) -> StackUrls:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- parts -----------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        logs = self.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        fh = (logs / f"{name}.log").open("ab")
        self._logs.append(fh)
        self._procs[name] = subprocess.Popen(
            argv, env=self.env, cwd=PROJECT_DIR, stdout=fh, stderr=subprocess.STDOUT
        )

    def _start_query_service(self, timeout: float = 60) -> str:
        host = self.settings.query_host
        port = _port_or_free(host, self.settings.query_port)
        firstlight = str(Path(sys.executable).with_name("firstlight"))
        self._spawn("query-service", [firstlight, "serve", "--host", host, "--port", str(port)])
        shown = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104 - naming, not binding
        url = f"http://{shown}:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{url}/tap/availability", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the query service on {url} did not answer in {timeout} s")

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"the Prefect server on port {self.port} did not answer in {timeout} s")

    def _wait_for_deployment(self, name: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            response = httpx.get(f"{self.api_url}/deployments/name/{name}", timeout=5)
            if response.status_code == 200:
                return str(response.json()["id"])
            time.sleep(0.5)
        raise TimeoutError(f"deployment {name} was not served within {timeout} s")

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                log_file = self.settings.data_dir / "logs" / f"{name}.log"
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_file}")

    def _drain(self, timeout: float) -> None:
        """Let flow runs in progress finish (bounded) rather than cancel them on the way out.

        Each run is a child process of the serving process: wait until it has none.
        """
        runner = self._procs.get("deployments")
        if runner is None or runner.poll() is not None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _children(runner.pid):
            time.sleep(0.2)


def _port_or_free(host: str, port: int) -> int:
    """``port`` when it can be bound on ``host`` (0 or taken: one the system picks, logged)."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            sock.bind((host, 0))
        chosen = int(sock.getsockname()[1])
    if port and chosen != port:
        log.warning("query port %s on %s is taken; the query service uses %s", port, host, chosen)
    return chosen


def _children(pid: int) -> list[int]:
    """Child process ids (Linux /proc); empty where that is not available."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
