"""The gate's form in the Prefect UI, in a real browser: nothing decided by an untouched Submit.

A run pauses with ``GateDecision`` (as a held release does) on a real Prefect
server; headless chromium opens it, clicks Resume, reads the form and
submits it untouched. Screenshots: var/test-artifacts/pages/gate-form*.png.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.browser import artifacts_dir, browser
from tests.prefect_server import prefect_server
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
WHY = "ten times the usual rows: a different selection, a duplicated upload, or a grown survey"


def held_run() -> None:
    """The run the browser looks at (in its own process: PREFECT_API_URL is the test server's)."""
    from prefect import flow, pause_flow_run

    from firstlight.domain.drift import DriftFinding
    from firstlight.services.gate import GateAssessment
    from flows.release_delivery import GateDecision

    findings = [DriftFinding("row_count", "sources", 10.4, 3.0, WHY)]
    assessment = GateAssessment(
        1, 1, "survey/survey-0010", "held", "rules", "1 drift finding(s): row_count sources",
        findings, None, None, None, "survey_dr1_v3",
    )  # fmt: skip
    form = GateDecision.with_initial_data(description=assessment.form_description())

    @flow(name="release-delivery", flow_run_name="survey/survey-0010")
    def paused() -> None:
        pause_flow_run(wait_for_input=form, timeout=600, poll_interval=2, key="gate-1")

    paused()


def test_the_form_requires_a_decision_a_reason_and_a_name(tmp_path: Path) -> None:
    shots = artifacts_dir()
    with prefect_server(tmp_path) as (api, env):
        run_process = subprocess.Popen(
            [sys.executable, "-c", "from tests.integration.test_gate_form_browser import "
             "held_run; held_run()"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            run = wait_for(
                "a paused run",
                lambda: next(
                    (
                        r
                        for r in httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
                        if r["state_type"] == "PAUSED"
                    ),
                    None,
                ),
                300,
            )
            with browser() as chromium:
                page = chromium.new_page(viewport={"width": 1400, "height": 1000})
                ui = api.removesuffix("/api")
                page.goto(f"{ui}/runs/flow-run/{run['id']}", wait_until="networkidle")
                page.get_by_role("button", name="Resume").first.click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_text("Operator", exact=True).wait_for(timeout=60_000)
                page.screenshot(path=str(shots / "gate-form.png"))
                text = dialog.inner_text()
                assert "survey/survey-0010 is held" in text
                assert "row_count sources: 10.4 (threshold 3)" in text
                assert "(Optional)" not in text  # every field is required
                dialog.get_by_role("button", name="Submit").click()
                dialog.get_by_text("'operator' is a required property").wait_for(timeout=60_000)
                page.screenshot(path=str(shots / "gate-form-untouched-submit.png"))
                text = dialog.inner_text()
                for field in ("decision", "reason", "operator"):
                    assert f"'{field}' is a required property" in text
            time.sleep(2)  # anything Submit could have started would show by now
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=10).json()
            assert state["state_type"] == "PAUSED"  # nothing decided
        finally:
            run_process.terminate()
            run_process.wait(timeout=30)
