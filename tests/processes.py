"""Processes a test started: finding them however deep (by a marker in their environment),
and waiting on what they do, with limits generous enough for a loaded machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def processes_with_env(name: str, value: str) -> list[int]:
    """Pids of live processes whose environment has ``name=value`` (Linux /proc)."""
    marker = f"{name}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and marker in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what}")
