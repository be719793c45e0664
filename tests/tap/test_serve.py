"""`firstlight serve` starts the service and prints its base URL."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_prints_its_url_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FIRSTLIGHT_DATA_DIR": str(tmp_path / "var")}
    firstlight = str(Path(sys.executable).with_name("firstlight"))
    proc = subprocess.Popen(
        [firstlight, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        assert f"query service  {url}" in first
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{url}/tap/availability", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the service did not answer"
                time.sleep(0.2)
        assert "<vosi:available>true</vosi:available>" in response.text
        tables = httpx.get(f"{url}/tap/tables").text
        assert "ivoa.obscore" in tables  # an empty archive still has ObsCore and TAP_SCHEMA
        assert httpx.get(f"{url}/no/such/page").status_code == 404
        # The access log: one line per request, method, path, status and milliseconds.
        access = tmp_path / "var" / "logs" / "access.log"
        deadline = time.monotonic() + 30
        while "/no/such/page" not in (access.read_text() if access.exists() else ""):
            assert time.monotonic() < deadline, "no access log line for the request"
            time.sleep(0.2)
        lines = access.read_text().splitlines()
        assert any(re.search(r" GET /tap/tables 200 \d+\.\d ms$", line) for line in lines), lines
        assert any(re.search(r" GET /no/such/page 404 \d+\.\d ms$", line) for line in lines)
        assert not any("/no/such/page" in line for line in proc_lines(proc))  # not on the console
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def proc_lines(proc: subprocess.Popen[str]) -> list[str]:
    """What the service printed after its first line (read once it has stopped)."""
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    return out.splitlines()
