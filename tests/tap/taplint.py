"""Running STILTS taplint against a service and reading its verdict.

taplint always exits 0, even when the service is missing: the verdict is its
closing ``Totals: Errors: N; Warnings: M`` line. A missing ``stilts`` skips
the test on a laptop and fails it under CI=true (scripts/setup-stilts.sh).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

import pytest

TOTALS = re.compile(r"^Totals: Errors: (\d+); Warnings: (\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Verdict:
    errors: int
    warnings: int
    report: str

    def lines(self, kind: str) -> list[str]:
        """The report's lines of one kind: "E" errors, "W" warnings."""
        return [line for line in self.report.splitlines() if line.startswith(f"{kind}-")]


def stilts() -> str:
    found = shutil.which("stilts")
    if found is None:
        reason = "stilts is not installed (make stilts-setup, or apt-get install stilts)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    return found


def taplint(tap_url: str, *, timeout: float = 600) -> Verdict:
    proc = subprocess.run(
        [stilts(), "taplint", f"tapurl={tap_url}", "report=EW", "maxrepeat=3"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    report = proc.stdout + proc.stderr
    found = TOTALS.search(report)
    assert found is not None, f"taplint printed no Totals line:\n{report[-3000:]}"
    return Verdict(int(found.group(1)), int(found.group(2)), report)
