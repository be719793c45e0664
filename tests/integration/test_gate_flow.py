"""A held release under Prefect: the run pauses, the operator's answer decides."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run
from typer.testing import CliRunner

from firstlight.cli import app
from firstlight.config import Settings
from firstlight.domain.findings import DeliveryRejected
from firstlight.domain.ledger import Decision, DeliveryState
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.services.gate import APPROVED, EXPIRED, REJECTED, assess_release
from firstlight.services.promotion import promote_release
from firstlight.services.verification import admit_delivery
from firstlight.storage.gate_records import GateRecords
from flows.release_delivery import ReleaseOutcome, release_delivery
from tests.gate_history import drifted_tenfold, normal, stage

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_api")]


@pytest.fixture
def gate_ctx(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("FIRSTLIGHT_GATE_POLL_SECONDS", "1")
    yield context_for(Settings())
    close_contexts()


def _history(ctx: Context, inbox: Path) -> None:
    for n in range(1, 4):
        ticket = stage(ctx, normal(inbox, n))
        assess_release(ctx, ticket)
        promote_release(ctx, ticket)


class _Run(threading.Thread):
    """The flow in a thread of its own, as a runner would run it in a process."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.outcome: ReleaseOutcome | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.outcome = release_delivery(str(self.path))
        except BaseException as exc:
            self.error = exc


def _paused_run(timeout: float = 600) -> UUID:
    paused = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
    )
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(flow_run_filter=paused)
            if runs:
                [run] = runs
                return run.id
            time.sleep(0.5)
    raise AssertionError("no flow run paused")


@pytest.mark.parametrize("approve", [True, False])
def test_held_release_waits_for_the_operator(
    gate_ctx: Context, settings: Settings, approve: bool
) -> None:
    ctx = gate_ctx
    _history(ctx, settings.inbox_dir)
    path = drifted_tenfold(settings.inbox_dir, 10)
    run = _Run(path)
    run.start()
    run_id = _paused_run()

    # While it waits: a duplicate arrival is skipped, other deliveries still release.
    entry = ctx.archive.ledger.find("survey", "survey-0010", _sha(ctx, path))
    assert entry is not None and entry.state is DeliveryState.PROCESSING
    assert admit_delivery(ctx, path).decision is Decision.SKIP
    later = stage(ctx, normal(settings.inbox_dir, 11))
    assert not assess_release(ctx, later).held
    promote_release(ctx, later)
    other = stage(ctx, normal(settings.inbox_dir, 1, mission="other"))
    assess_release(ctx, other)
    promote_release(ctx, other)

    # The form decides nothing by default: Submit without a decision or a name is refused.
    for incomplete in ({}, {"reason": "fine", "operator": "ana"}, {"decision": "approve"}):
        with pytest.raises(RuntimeError, match="Cannot resume"):
            resume_flow_run(run_id, run_input=incomplete)
    blank = {"decision": "approve", "reason": "fine", "operator": "  "}
    with pytest.raises(RuntimeError, match="Cannot resume"):
        resume_flow_run(run_id, run_input=blank)
    assert ctx.archive.ledger.entry(entry.delivery_pk).state is DeliveryState.PROCESSING

    # `firstlight held` lists it as waiting in this run.
    listed = CliRunner().invoke(app, ["held", "--json"])
    [held] = json.loads(listed.output)
    assert held["label"] == "survey/survey-0010" and held["flow_run_id"] == str(run_id)
    if approve:  # from a shell: the same input, sent to the waiting run
        result = CliRunner().invoke(
            app,
            [
                "gate",
                "approve",
                "survey/survey-0010",
                "--reason",
                "looked at it",
                "--operator",
                "ana",
            ],
        )
        assert result.exit_code == 0, result.output
    else:  # from the form
        resume_flow_run(
            run_id, run_input={"decision": "reject", "reason": "looked at it", "operator": "ana"}
        )
    run.join(timeout=300)
    assert not run.is_alive()
    entry = ctx.archive.ledger.entry(entry.delivery_pk)
    record = GateRecords(ctx.archive.engine).decision(entry.delivery_pk, entry.attempts)
    assert record is not None and record.decided_by == "operator:ana"
    assert "looked at it" in (record.reason or "")
    if approve:
        assert run.outcome is not None and run.outcome.status == "released", run.error
        assert entry.state is DeliveryState.RELEASED and record.decision == APPROVED
        releases = {r.release_key: r for r in ctx.archive.releases.list_releases("survey")}
        assert "survey_dr1_v10" in releases  # public by name, but v11 (newer, promoted
        [current] = [r for r in releases.values() if r.current]  # while it was held) stays
        assert current.release_key == "survey_dr1_v11"  # current: releases only move forward
    else:
        assert isinstance(run.error, DeliveryRejected)
        assert entry.state is DeliveryState.QUARANTINED and record.decision == REJECTED
        assert "looked at it" in (entry.reason or "")
        assert ctx.archive.releases.get("survey_dr1_v10") is None  # staging discarded


def test_unanswered_hold_is_quarantined_when_the_wait_runs_out(
    gate_ctx: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRSTLIGHT_GATE_PAUSE_SECONDS", "3")
    ctx = gate_ctx
    _history(ctx, settings.inbox_dir)
    path = drifted_tenfold(settings.inbox_dir, 10)
    with pytest.raises(DeliveryRejected, match="no operator decision within 3 s"):
        release_delivery(str(path))
    [entry] = [e for e in ctx.archive.ledger.entries("survey") if e.delivery_id == "survey-0010"]
    assert entry.state is DeliveryState.QUARANTINED and entry.quarantine_path
    record = GateRecords(ctx.archive.engine).decision(entry.delivery_pk, entry.attempts)
    assert record is not None and record.decision == EXPIRED and record.decided_by == "timeout"


def _sha(ctx: Context, path: Path) -> str:
    from firstlight.checks.verify import read_manifest

    return read_manifest(path)[1]


def test_retrain_deployment_flow_installs_a_first_model(
    gate_ctx: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.retrain_gate_model import retrain_gate_model

    monkeypatch.setenv("FIRSTLIGHT_GATE_MIN_HISTORY", "2")
    _history(gate_ctx, settings.inbox_dir)
    detail = retrain_gate_model()
    assert "model v1" in detail and "installed" in detail
    current = GateRecords(gate_ctx.archive.engine).current_model()
    assert current is not None and current.samples == 2  # one of three held back


def test_a_decision_for_a_run_that_no_longer_exists_is_left_to_the_caller() -> None:
    from uuid import uuid4

    from flows.release_delivery import GateDecision, resume_held_run

    answer = GateDecision(decision="approve", reason="fine", operator="ana")
    assert resume_held_run(str(uuid4()), answer) is False
