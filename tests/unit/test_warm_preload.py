"""The warm worker's forkserver preloads what every run and sandbox child needs."""

from __future__ import annotations

import subprocess
import sys


def test_the_preload_imports_great_expectations_prefect_and_the_flows() -> None:
    # In a fresh interpreter: importing the preload module must leave the heavy
    # libraries loaded, or each run (and each sandbox child) imports them again.
    code = (
        "import sys, firstlight.execution.preload\n"
        "needed = ['great_expectations', 'prefect.flow_engine', 'flows.release_delivery',"
        " 'sklearn.ensemble', 'firstlight.checks.delivery_expectations', 'astropy.io.fits']\n"
        "missing = [m for m in needed if m not in sys.modules]\n"
        "print(missing)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
