"""On a schedule: retrain the release gate's anomaly model from the ledger.

A candidate trained on the labelled history replaces the current version only
if it does no worse on the held-back window (``services.gate_model``).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from firstlight.analytics.gate_model import retrain
from firstlight.services.context import context_for


@flow(name="retrain-gate-model")
def retrain_gate_model() -> str:
    outcome = retrain(context_for())
    get_run_logger().info("%s", outcome.detail)
    create_markdown_artifact(
        key="gate-model",
        markdown=f"## Gate model retraining\n\n{outcome.detail}\n",
        description="Retraining of the release gate's anomaly model",
    )
    return outcome.detail
