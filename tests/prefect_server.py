"""A real Prefect server for tests: its own process, home and SQLite database, on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.s3 import _free_port

BIN = Path(sys.executable).parent


@contextmanager
def prefect_server(home: Path, **extra_env: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(API URL, the environment that talks to it); waits for health with a generous limit."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **extra_env,
    }
    log = (home / "server.log").open("ab")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited with {proc.returncode}; see {home}/server.log")
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not answer within 180 s")
        yield api, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
