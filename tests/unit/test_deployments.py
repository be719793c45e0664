"""deployments/prefect.yaml and flows/deployments.py say the same thing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect.flows import load_flow_from_entrypoint

from firstlight.config import Settings
from flows.deployments import runner_deployments

ROOT = Path(__file__).resolve().parents[2]


def _yaml_deployments() -> dict[str, dict[str, Any]]:
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    return {d["name"]: d for d in spec["deployments"]}


def test_same_deployments_flows_triggers_and_schedules() -> None:
    declared = _yaml_deployments()
    served = {d.name: d for d in runner_deployments(Settings())}
    assert set(declared) == set(served)
    for name, yml in declared.items():
        path, _, function = yml["entrypoint"].partition(":")
        flow = load_flow_from_entrypoint(f"{ROOT / path}:{function}")
        runner = served[name]
        assert flow.name == runner.flow_name, name
        assert set(yml["tags"]) == set(runner.tags), name
        yaml_triggers = [
            (set(t["expect"]), t["match"], t["parameters"]) for t in yml.get("triggers", [])
        ]
        runner_triggers = [
            (set(t.expect), t.match.model_dump(), t.parameters) for t in runner.triggers
        ]
        assert yaml_triggers == runner_triggers, name
        yaml_intervals = [s["interval"] for s in yml.get("schedules", [])]
        runner_intervals = [s.schedule.interval.total_seconds() for s in runner.schedules or []]
        assert yaml_intervals == runner_intervals, name
        limit = runner.concurrency_options and runner.concurrency_limit
        yaml_limit = yml.get("concurrency_limit")
        assert (yaml_limit["limit"] if yaml_limit else None) == limit, name
        if yaml_limit:
            assert runner.concurrency_options is not None
            assert yaml_limit["collision_strategy"] == runner.concurrency_options.collision_strategy


def test_every_deployed_flow_is_one_a_warm_worker_can_find() -> None:
    from flows.deployments import FLOWS

    assert {d.flow_name for d in runner_deployments(Settings())} <= set(FLOWS)


def test_the_flow_has_a_task_for_every_release_step_in_the_one_order() -> None:
    from firstlight.services.pipeline import RELEASE_STEPS
    from tasks.steps import STEP_TASKS

    assert list(STEP_TASKS) == [step.stage for step in RELEASE_STEPS]
    assert [s.stage.value for s in RELEASE_STEPS] == [
        "verify",
        "validate",
        "ingest",
        "index",
        "gate",
        "promote",
    ]
