"""The whole stack on one machine, as `firstlight up` runs it.

A Prefect server (its own SQLite database in the data directory unless
PREFECT_API_DATABASE_CONNECTION_URL says otherwise; ``--no-server`` uses the
one PREFECT_API_URL names), the deployments registered on the work pool,
``Settings.workers`` warm workers (`firstlight worker`, each its own process
tree) pulling from it, the automations (failed runs reported, silent runs
marked Crashed, held runs announced), the arrival watchers of the inbox folder and, when
configured, of the S3 inbox, and the query service for scientists
(``firstlight serve`` on ``query_port`` or, when taken, a free one).

The parts are joined only by the network, so each can run elsewhere
(docs/scaling.md). One line per arrival, run start, release, rejection and
hold goes to ``logs/activity.log`` (events/activity.py). Every child dies
with this process (a parent-death signal), so even ``kill -9`` of `up`
leaves nothing running. ``supervise()`` restarts a worker that died and
reports any other dead part (the caller exits non-zero). ``stop()``:
watchers first (nothing announced to a server going away), then workers
(their runs in progress are marked Crashed and give their claims up), then
the rest.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from firstlight.config import Settings
from firstlight.events.activity import LoggedSink, RunFollower, activity, log_to_file
from firstlight.events.prefect_sink import PrefectEventSink
from firstlight.events.watchers import Watchers
from firstlight.execution.warm_processes import die_with_parent
from flows.automations import (
    REPORT_DEPLOYMENT,
    ensure_crashed_runs_automation,
    ensure_failure_automation,
    ensure_held_automation,
)
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
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "1")  # a run starts within ~1 s of its event
    env["PREFECT_API_URL"] = api_url
    return env


class Stack:
    def __init__(self, settings: Settings, *, port: int, server: bool = True) -> None:
        self.settings = settings
        self.port = port
        self.own_server = server
        self.api_url = (
            f"http://127.0.0.1:{port}/api"
            if server
            else os.environ.get("PREFECT_API_URL", f"http://127.0.0.1:{port}/api").rstrip("/")
        )
        self.env = prefect_environment(settings, self.api_url)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._argv: dict[str, list[str]] = {}
        self._logs: list[IO[bytes]] = []
        self.watchers = Watchers(settings, LoggedSink(PrefectEventSink(self.api_url)))
        self.follower = RunFollower(self.api_url)
        self._activity_log: logging.Handler | None = None

    def start(self) -> StackUrls:
        self.settings.ensure_dirs()
        self._activity_log = log_to_file(self.settings.data_dir / "logs" / "activity.log")
        Path(self.env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
        if self.own_server:
            prefect = str(Path(sys.executable).with_name("prefect"))
            self._spawn(
                "prefect-server",
                [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            )
        self._wait_healthy(timeout=180)
        firstlight = str(Path(sys.executable).with_name("firstlight"))
        # Pool and deployments first, so workers find work the moment they start.
        self._run_once("deploy", [firstlight, "deploy"], timeout=180)
        for n in range(self.settings.workers):
            name = f"worker-{n + 1}"
            self._spawn(name, [firstlight, "worker", "--name", f"{socket.gethostname()}-{name}"])
        self._wait_for_deployment(REPORT_DEPLOYMENT, timeout=60)
        self._wait_for_deployment(RELEASE_DEPLOYMENT, timeout=60)
        ensure_failure_automation(self.api_url, self.settings.failure_webhook_url)
        ensure_held_automation(self.api_url, self.settings.failure_webhook_url)
        ensure_crashed_runs_automation(self.api_url, self.settings.heartbeat_seconds)
        query_url = self._start_query_service()
        self.follower.start()
        self.watchers.start()
        return StackUrls(
            prefect_ui=self.api_url.removesuffix("/api"),
            prefect_api=self.api_url,
            inbox=self.settings.inbox_dir.resolve(),
            query_service=query_url,
        )

    def supervise(self) -> str | None:
        """Restart dead workers; None while the rest is alive, else what died."""
        for name, proc in list(self._procs.items()):
            if proc.poll() is None:
                continue
            if name.startswith("worker-"):
                log.warning("%s exited with %s; restarting it", name, proc.returncode)
                self._spawn(name, self._argv[name])
                continue
            log_file = self.settings.data_dir / "logs" / f"{name}.log"
            return f"{name} exited with {proc.returncode} (see {log_file})"
        return None

    def stop(self) -> None:
        self.watchers.stop()
        self.follower.stop()
        workers = [p for n, p in self._procs.items() if n.startswith("worker-")]
        for proc in workers:  # runs in progress are marked Crashed, claims given up
            if proc.poll() is None:
                proc.terminate()
        for proc in workers:
            _wait_or_kill(proc, self.settings.stop_grace_seconds + 15)
        for proc in reversed(self._procs.values()):  # the query service, then the server
            _terminate(proc)
        for fh in self._logs:
            fh.close()
        self._procs.clear()
        self._logs.clear()
        if self._activity_log is not None:
            activity.removeHandler(self._activity_log)
            self._activity_log.close()
            self._activity_log = None

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
        self._argv[name] = argv
        self._procs[name] = subprocess.Popen(
            argv,
            env=self.env,
            cwd=PROJECT_DIR,
            stdout=fh,
            stderr=subprocess.STDOUT,
            # Its own session: a terminal's Ctrl-C reaches `up` alone, which stops the
            # parts in order (workers before the server their runs report to).
            start_new_session=True,
            preexec_fn=_die_with_stack,  # noqa: PLW1509 - only a prctl call, no locks taken
        )

    def _run_once(self, name: str, argv: list[str], timeout: float) -> None:
        logs = self.settings.data_dir / "logs"
        with (logs / f"{name}.log").open("ab") as fh:
            done = subprocess.run(
                argv,
                env=self.env,
                cwd=PROJECT_DIR,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed with {done.returncode}; see {logs / name}.log")

    def _start_query_service(self, timeout: float = 60) -> str:
        host = self.settings.query_host
        port = port_or_free(host, self.settings.query_port)
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


def port_or_free(host: str, port: int) -> int:
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


def _die_with_stack() -> None:
    die_with_parent(signal.SIGTERM)


def _wait_or_kill(proc: subprocess.Popen[bytes], grace: float) -> None:
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
