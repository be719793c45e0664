"""A real S3 (and SQS) for tests: a moto server on loopback, started once a session.

What belongs here: starting and stopping the server, and making clients for it. The fixture
itself is registered in `tests/conftest.py`. moto is a dev dependency, so the server is always
there: a server that does not start is a failure, never a skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

REGION = "us-east-1"
START_TIMEOUT_S = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


@contextmanager
def moto_server() -> Iterator[str]:
    """Run `moto_server` from this venv on a free loopback port; yield its endpoint URL."""
    executable = Path(sys.executable).with_name("moto_server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Its request log goes to a file: a pipe nobody reads fills up (64 KiB) and then
    # blocks the server on its next log line, hanging every S3 call of the session.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _answers(url):
                if proc.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise RuntimeError(f"moto_server exited with {proc.returncode}: {err[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto_server did not answer on {url} in {START_TIMEOUT_S} s"
                    )
                time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def client(service: str, endpoint_url: str) -> Any:
    """A boto3 client for the test server (credentials from the environment's dummies)."""
    return boto3.client(service, endpoint_url=endpoint_url, region_name=REGION)
