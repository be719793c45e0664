"""Debian's chromium, headless, driven by Playwright for Python, for the browser tests.

Playwright's own browser download is not used: ``executable_path`` names the
system chromium (FIRSTLIGHT_CHROMIUM, default /usr/bin/chromium; scripts/
setup-chromium.sh installs it). Missing: the test skips on a laptop and fails
under CI=true. Screenshots go to ``var/test-artifacts/pages/`` at the root of
the source tree (FIRSTLIGHT_TEST_ARTIFACTS moves them), kept after the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import in_ci

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("FIRSTLIGHT_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        reason = f"chromium is not installed at {path} (make browser-setup)"
        if in_ci():
            pytest.fail(f"{reason} [CI=true: the browser tests may not skip]", pytrace=False)
        pytest.skip(reason)
    return path


def artifacts_dir() -> Path:
    where = Path(os.environ.get("FIRSTLIGHT_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
    path = where / "pages"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def browser() -> Iterator[Any]:
    """A headless chromium (a Playwright ``Browser``), closed afterwards."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()
