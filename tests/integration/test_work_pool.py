"""deployments/prefect.yaml deploys for real: `prefect deploy` against a running server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from firstlight.events.arrival import EVENT_ARRIVED
from tests.prefect_server import prefect_server

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    home = tmp_path_factory.mktemp("prefect-home")
    with prefect_server(home, FIRSTLIGHT_PROJECT_DIR=str(ROOT)) as (api, env):
        yield api, env


def test_prefect_deploy_creates_every_deployment_with_its_trigger_and_schedule(
    server: tuple[str, dict[str, str]],
) -> None:
    api, env = server
    prefect = str(BIN / "prefect")
    subprocess.run(
        [prefect, "work-pool", "create", "firstlight", "--type", "process"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [prefect, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )

    deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()
    by_name = {d["name"]: d for d in deployments}
    assert set(by_name) == {
        "release-delivery",
        "release-embargoed",
        "reconcile-inbox",
        "rebuild-indexes",
        "report-failure",
        "report-held",
        "retrain-gate-model",
        "probe",
    }
    assert {d["work_pool_name"] for d in deployments} == {"firstlight"}
    intervals = {
        name: [s["schedule"]["interval"] for s in d["schedules"]] for name, d in by_name.items()
    }
    assert intervals["release-embargoed"] == [3600.0] and intervals["reconcile-inbox"] == [60.0]
    assert intervals["retrain-gate-model"] == [86400.0]
    automations = httpx.post(f"{api}/automations/filter", json={}, timeout=10).json()
    [trigger] = [a for a in automations if a["name"] == "delivery-arrived"]
    assert trigger["trigger"]["expect"] == [EVENT_ARRIVED]
    [action] = trigger["actions"]
    assert action["deployment_id"] == by_name["release-delivery"]["id"]
    assert action["parameters"]["delivery_path"] == "{{ event.payload.location }}"
