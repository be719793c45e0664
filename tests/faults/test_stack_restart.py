"""`firstlight up` stopped in the middle of a release, then started again, as an operator would.

The stack is stopped (SIGTERM's path: ``Stack.stop``) while a delivery's run is
validating, or ingesting: the run must end Crashed, its delivery's claim given up,
no process of the stack left; the restarted stack must release the delivery by
itself, once, with nothing left over after it stops again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from firstlight.config import Settings
from firstlight.domain.ledger import DeliveryState
from firstlight.services.context import close_contexts, context_for
from firstlight.stack import Stack, port_or_free
from firstlight.storage.schema import releases
from tests.deliveries import generated
from tests.processes import processes_with_env, wait_for

pytestmark = pytest.mark.timeout(1500)


def running_task(api: str, step: str) -> bool:
    body = {
        "task_runs": {
            "name": {"like_": f"{step}-"},
            "state": {"type": {"any_": ["RUNNING"]}},
        }
    }
    response = httpx.post(f"{api}/task_runs/filter", json=body, timeout=10)
    return response.status_code == 200 and bool(response.json())


def release_runs(api: str, path: Path) -> list[dict[str, Any]]:
    runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).json()
    return [r for r in runs if r["parameters"].get("delivery_path") == str(path)]


@pytest.mark.parametrize(
    "step",
    [
        "validate",
        pytest.param("ingest", marks=pytest.mark.faults),  # `make faults`: the same, later
    ],
)
def test_stack_stopped_mid_step_then_restarted_releases_the_delivery_once(
    tmp_path: Path, step: str
) -> None:
    settings = Settings(
        data_dir=tmp_path / "var",
        watch_poll_seconds=0.2,
        inbox_settle_seconds=2,
        reconcile_interval_seconds=5,
        claim_lease_seconds=6,
        query_port=0,
        stop_grace_seconds=30,
    )
    marker = str(settings.data_dir.resolve())
    stack = Stack(settings, port=port_or_free("127.0.0.1", 0))
    stack.start()
    try:
        path = generated(settings.inbox_dir, rows=300_000)
        wait_for(f"the run to be in {step}", lambda: running_task(stack.api_url, step), 600)
        before = {r["id"] for r in release_runs(stack.api_url, path)}
        admitted = context_for(settings).archive.ledger.latest_at(str(path))
        assert admitted is not None
        claimant = context_for(settings).archive.ledger.claim(admitted.delivery_pk)[0]
        close_contexts()
    finally:
        stack.stop()

    assert processes_with_env("FIRSTLIGHT_DATA_DIR", marker) == []
    ctx = context_for(settings)
    entry = ctx.archive.ledger.latest_at(str(path))
    assert entry is not None and entry.state is DeliveryState.PROCESSING
    assert ctx.archive.ledger.claim(entry.delivery_pk)[0] is not None
    assert [e.delivery_pk for e in ctx.archive.ledger.lapsed()] == [entry.delivery_pk]
    close_contexts()

    again = Stack(settings, port=port_or_free("127.0.0.1", 0))  # its database kept in var/
    again.start()
    try:
        # The run cut short ended Crashed, and no run from before the stop is left Running.
        runs = {r["id"]: r["state_name"] for r in release_runs(again.api_url, path)}
        assert runs[str(claimant)] == "Crashed", runs
        assert "Running" not in [state for run, state in runs.items() if run in before], runs
        ctx = context_for(settings)
        entry = wait_for(
            "the delivery released after the restart",
            lambda: (e := ctx.archive.ledger.latest_at(str(path))) and e.state.terminal and e,
            600,
        )
        assert entry.state is DeliveryState.RELEASED, entry.reason
        assert entry.attempts == 2
        with ctx.archive.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(releases)).scalar_one() == 1
    finally:
        again.stop()
        close_contexts()
    assert processes_with_env("FIRSTLIGHT_DATA_DIR", marker) == []
