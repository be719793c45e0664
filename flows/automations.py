"""The automations of firstlight, created through the API.

Failed runs reported (``ensure_failure_automation``), held runs announced
(``ensure_held_automation``: a release suspended or paused at the gate for an
operator) and silent runs marked Crashed. `firstlight up` creates them; with a
work pool set up from deployments/prefect.yaml, `firstlight automations` does
it once. The parameters are read from the state-change event itself (its
resource names the run, its payload carries the validated state).
"""

from __future__ import annotations

from typing import Any

import httpx

FAILED_RUNS_AUTOMATION = "firstlight-failed-runs"
CRASHED_RUNS_AUTOMATION = "firstlight-silent-runs-crashed"
HELD_RUNS_AUTOMATION = "firstlight-held-runs"
REPORT_DEPLOYMENT = "report-failure/report-failure"
REPORT_HELD_DEPLOYMENT = "report-held/report-held"


def ensure_failure_automation(api_url: str, webhook_url: str | None = None) -> str:
    """(Re)create the automation; failed runs tagged firstlight start report-failure.

    Returns the automation's id. Requires the report-failure deployment.
    """
    deployment = httpx.get(f"{api_url}/deployments/name/{REPORT_DEPLOYMENT}", timeout=10)
    deployment.raise_for_status()
    report_id = deployment.json()["id"]
    actions: list[dict[str, Any]] = [
        {
            "type": "run-deployment",
            "source": "selected",
            "deployment_id": report_id,
            "parameters": {
                "flow_run_id": "{{ event.resource.id }}",
                "flow_run_name": "{{ event.resource.name }}",
                "message": "{{ event.payload.validated_state.message }}",
            },
        }
    ]
    if webhook_url:
        actions.append(
            _webhook_action(
                webhook_url,
                "firstlight-failures",
                '{"flow_run": "{{ event.resource.name }}", '
                '"message": {{ event.payload.validated_state.message | tojson }}}',
            )
        )
    automation = {
        "name": FAILED_RUNS_AUTOMATION,
        "description": "Report every failed firstlight flow run.",
        "enabled": True,
        "trigger": {
            "type": "event",
            "posture": "Reactive",
            "expect": ["prefect.flow-run.Failed"],
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.id": "prefect.tag.firstlight"},
            "threshold": 1,
            "within": 0,
        },
        "actions": actions,
    }
    return _replace(api_url, automation)


def ensure_held_automation(api_url: str, webhook_url: str | None = None) -> str:
    """(Re)create the automation announcing a firstlight run held at the gate.

    A run suspended (on a work pool) or paused (ad hoc) starts report-held,
    whose WARNING line names the delivery and the commands that decide it,
    and calls the webhook when one is configured. Returns the automation's id.
    """
    deployment = httpx.get(f"{api_url}/deployments/name/{REPORT_HELD_DEPLOYMENT}", timeout=10)
    deployment.raise_for_status()
    actions: list[dict[str, Any]] = [
        {
            "type": "run-deployment",
            "source": "selected",
            "deployment_id": deployment.json()["id"],
            "parameters": {
                "flow_run_id": "{{ event.resource.id }}",
                "flow_run_name": "{{ event.resource.name }}",
            },
        }
    ]
    if webhook_url:
        actions.append(
            _webhook_action(
                webhook_url,
                "firstlight-held",
                '{"flow_run": "{{ event.resource.name }}", "held": true, '
                '"decide": "firstlight gate approve|reject {{ event.resource.name }} '
                '--reason ... --operator ..."}',
            )
        )
    automation = {
        "name": HELD_RUNS_AUTOMATION,
        "description": "Announce every firstlight release held at the gate for an operator.",
        "enabled": True,
        "trigger": {
            "type": "event",
            "posture": "Reactive",
            "expect": ["prefect.flow-run.Suspended", "prefect.flow-run.Paused"],
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.id": "prefect.tag.firstlight"},
            "threshold": 1,
            "within": 0,
        },
        "actions": actions,
    }
    return _replace(api_url, automation)


def _replace(api_url: str, automation: dict[str, Any]) -> str:
    """Delete the automations of this name, create this one; its id."""
    found = httpx.post(f"{api_url}/automations/filter", json={}, timeout=10)
    found.raise_for_status()
    for old in found.json():
        if old.get("name") == automation["name"]:
            httpx.delete(f"{api_url}/automations/{old['id']}", timeout=10).raise_for_status()
    created = httpx.post(f"{api_url}/automations/", json=automation, timeout=10)
    created.raise_for_status()
    return str(created.json()["id"])


def _webhook_action(url: str, block_name: str, payload: str) -> dict[str, Any]:
    # Saved through the client: this process's PREFECT_API_URL must name the same server.
    from prefect.blocks.webhook import Webhook

    block_id = Webhook(url=url, method="POST").save(block_name, overwrite=True)
    return {"type": "call-webhook", "block_document_id": str(block_id), "payload": payload}


def ensure_crashed_runs_automation(api_url: str, heartbeat_seconds: int) -> str:
    """(Re)create the automation marking Crashed a run whose heartbeats stopped.

    Prefect's own recipe for runs whose process vanished (a worker killed, a
    machine gone): a proactive trigger per flow run expecting the next
    heartbeat or a final state within three heartbeat periods. A suspended run
    (held at the gate, its process gone on purpose) is not silent.
    """
    automation = {
        "name": CRASHED_RUNS_AUTOMATION,
        "description": "Mark Crashed a firstlight run whose process stopped sending heartbeats.",
        "enabled": True,
        "trigger": {
            "type": "event",
            "posture": "Proactive",
            "after": ["prefect.flow-run.heartbeat"],
            "expect": [
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
                "prefect.flow-run.Suspended",
                "prefect.flow-run.Paused",
            ],
            "for_each": ["prefect.resource.id"],
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "threshold": 1,
            "within": 3 * heartbeat_seconds,
        },
        "actions": [
            {
                "type": "change-flow-run-state",
                "state": "CRASHED",
                "message": "its process stopped sending heartbeats (worker killed or lost)",
            }
        ],
    }
    return _replace(api_url, automation)
