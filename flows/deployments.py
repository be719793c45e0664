"""The deployments of firstlight: one definition, on the work pool of the warm workers.

`firstlight up` (and `firstlight deploy`) registers them on the work pool
(``Settings.work_pool``) that `firstlight worker` processes pull from;
deployments/prefect.yaml says the same for `prefect deploy`; a test keeps the
two in agreement (names, entrypoints, triggers, schedules). ``FLOWS`` is how a
warm worker finds a run's flow: by name, among those its forkserver preloaded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from firstlight.config import Settings
from firstlight.events.arrival import EVENT_ARRIVED
from flows.probe import EVENT_PROBE, probe
from flows.rebuild_indexes import rebuild_indexes
from flows.reconcile_inbox import reconcile_inbox
from flows.release_delivery import DEPLOYMENT, release_delivery
from flows.release_embargoed import release_embargoed
from flows.report_failure import report_failure
from flows.report_held import report_held
from flows.retrain_gate_model import retrain_gate_model

TAGS = ["firstlight"]

FLOWS: dict[str, Flow[..., Any]] = {
    f.name: f
    for f in (
        release_delivery,
        release_embargoed,
        reconcile_inbox,
        rebuild_indexes,
        report_failure,
        report_held,
        retrain_gate_model,
        probe,
    )
}


def one_at_a_time() -> ConcurrencyLimitConfig:
    """Scheduled housekeeping never piles up: a run due while one is going is cancelled."""
    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def arrival_trigger() -> DeploymentEventTrigger:
    """Every `firstlight.delivery.arrived` event starts one release run with its location."""
    return DeploymentEventTrigger(
        name="delivery-arrived",
        expect={EVENT_ARRIVED},
        match={"prefect.resource.id": "firstlight.delivery.*"},
        parameters={
            "delivery_path": "{{ event.payload.location }}",
            "landed_at": "{{ event.payload.landed_at }}",
            "mission": "{{ event.payload.mission }}",
            "delivery_id": "{{ event.payload.delivery_id }}",
            "manifest_sha256": "{{ event.payload.manifest_sha256 }}",
        },
    )


def probe_trigger() -> DeploymentEventTrigger:
    """Every `firstlight.probe` event starts an empty run (bench/stack.py's floor)."""
    return DeploymentEventTrigger(
        name="probe",
        expect={EVENT_PROBE},
        match={"prefect.resource.id": "firstlight.probe.*"},
        parameters={"probe_id": "{{ event.resource.id }}"},
    )


def runner_deployments(settings: Settings) -> list[RunnerDeployment]:
    made = [
        release_delivery.to_deployment(name=DEPLOYMENT, triggers=[arrival_trigger()], tags=TAGS),
        release_embargoed.to_deployment(
            name="release-embargoed",
            interval=timedelta(seconds=settings.embargo_interval_seconds),
            concurrency_limit=one_at_a_time(),
            tags=TAGS,
        ),
        reconcile_inbox.to_deployment(
            name="reconcile-inbox",
            interval=timedelta(seconds=settings.reconcile_interval_seconds),
            concurrency_limit=one_at_a_time(),
            tags=TAGS,
        ),
        rebuild_indexes.to_deployment(name="rebuild-indexes", tags=TAGS),
        report_failure.to_deployment(name="report-failure", tags=TAGS),
        report_held.to_deployment(name="report-held", tags=TAGS),
        probe.to_deployment(name="probe", triggers=[probe_trigger()], tags=TAGS),
        retrain_gate_model.to_deployment(
            name="retrain-gate-model",
            interval=timedelta(seconds=settings.gate_retrain_interval_seconds),
            concurrency_limit=one_at_a_time(),
            tags=TAGS,
        ),
    ]
    # Called outside an event loop, Prefect's to_deployment answers synchronously.
    if not all(isinstance(d, RunnerDeployment) for d in made):
        raise RuntimeError("runner_deployments() was called inside an event loop")
    return [d for d in made if isinstance(d, RunnerDeployment)]


def deploy_to_pool(settings: Settings) -> list[str]:
    """Register every deployment on the work pool (idempotent); their ids."""
    return [
        str(deployment.apply(work_pool_name=settings.work_pool))
        for deployment in runner_deployments(settings)
    ]
