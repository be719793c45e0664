"""Checks on untrusted files run in a child under limits: a hostile file costs a finding."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from firstlight.checks.isolation import Limits, run_isolated
from firstlight.domain.findings import Finding
from firstlight.domain.progress import Progress

# The preloaded libraries (Great Expectations, pandas) take about 400 MiB of it.
LIMITS = Limits(memory_bytes=1024 * 2**20, seconds=5)


def finds_one(ctx: str) -> list[Finding]:
    return [Finding(check="demo.ok", reason=f"looked at {ctx}", file=ctx)]


def eats_memory(ctx: str) -> list[Finding]:
    hoard = [np.ones(64 * 2**20 // 8) for _ in range(64)]  # 4 GiB, far past the limit
    return [Finding(check="demo.never", reason=str(len(hoard)))]


def never_ends(ctx: str) -> list[Finding]:
    while True:
        time.sleep(0.05)


def breaks(ctx: str) -> list[Finding]:
    raise ValueError("a parser met bytes it never expected")


def test_findings_come_back_from_the_child() -> None:
    assert run_isolated(finds_one, "a.fits", LIMITS, file="a.fits") == finds_one("a.fits")


def test_memory_hog_is_stopped_with_a_finding() -> None:
    [finding] = run_isolated(eats_memory, "bomb.fits.gz", LIMITS, file="bomb.fits.gz")
    assert finding.check == "validate.limits" and finding.file == "bomb.fits.gz"
    assert "1024 MiB" in finding.reason


def test_endless_parse_is_stopped_with_a_finding() -> None:
    started = time.monotonic()
    [finding] = run_isolated(never_ends, "x", Limits(1024 * 2**20, seconds=1.0), file="x.vot")
    assert finding.check == "validate.limits" and "longer than 1 s" in finding.reason
    assert time.monotonic() - started < 10


def test_a_check_that_raises_is_a_finding_not_a_crash() -> None:
    [finding] = run_isolated(breaks, "x", LIMITS, file="x.csv")
    assert finding.check == "validate.crash" and "never expected" in finding.reason


@dataclass(frozen=True)
class Counted:
    """A context that takes a progress callback, as ``checks.validate.FileJob`` does."""

    rows: int
    progress: Progress | None = None

    def with_progress(self, progress: Progress | None) -> Counted:
        return replace(self, progress=progress)


def counts_rows(ctx: Counted) -> list[Finding]:
    for done in range(250, ctx.rows + 1, 250):
        if ctx.progress is not None:
            ctx.progress("t.fits checked", done, ctx.rows)
    return [Finding(check="demo.ok", reason="counted")]


def test_progress_comes_back_through_the_pipe_before_the_findings() -> None:
    heard: list[tuple[str, int, int | None]] = []

    found = run_isolated(
        counts_rows,
        Counted(1000),
        LIMITS,
        file="t.fits",
        progress=lambda what, done, total: heard.append((what, done, total)),
    )

    assert [f.check for f in found] == ["demo.ok"]
    assert heard == [("t.fits checked", n, 1000) for n in (250, 500, 750, 1000)]
    # Without a callback the child is not asked to report (and needs no with_progress).
    assert run_isolated(finds_one, "a.fits", LIMITS, file="a.fits") == finds_one("a.fits")


MAIN_SCRIPT = """
from pathlib import Path
import sys
with open(sys.argv[1] if __name__ == "__main__" else {log!r}, "a") as log:
    log.write(__name__ + "\\n")  # one line each time this script is run
if __name__ == "__main__":
    from firstlight.checks.isolation import Limits, run_isolated
    from tests.unit.test_isolation import finds_one
    for _ in range(3):
        run_isolated(finds_one, "x", Limits(memory_bytes=2**31, seconds=300), file="f")
"""


def test_children_do_not_run_the_main_script_again(tmp_path: Path) -> None:
    """The forkserver imports the starting script once; its children do not re-run it
    (Python 3.11 would, each time: firstlight's CLI cost 0.1-0.3 s per child)."""
    log = tmp_path / "runs.log"
    script = tmp_path / "main_script.py"
    script.write_text(MAIN_SCRIPT.format(log=str(log)))
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, str(script), str(log)],
        check=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    # The script itself, then once in the forkserver: not once more per child.
    assert log.read_text().splitlines() == ["__main__", "__mp_main__"]
