"""The anomaly model's lifecycle: train a candidate, judge it, install it or keep the old one.

Belongs here: ``retrain`` (labels come from the ledger: a delivery an operator
rejected at the gate is an anomaly; one that went public, by itself or
approved, is normal; one whose hold expired unanswered is left out), the
held-back window it is judged on, and ``rollback``. A candidate replaces the
current version only if its balanced error (mean of false-positive and miss
rates) on the newest ``gate_holdout_fraction`` of labelled history is no
worse than the current version's on the same window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firstlight.domain.anomaly import evaluate, fit
from firstlight.domain.features import VECTOR_NAMES
from firstlight.errors import NotFoundError
from firstlight.services.context import Context
from firstlight.services.gate import EXPIRED, REJECTED, load_model
from firstlight.storage.gate_records import GateRecords, LabelledFeatures, ModelRecord


@dataclass(frozen=True)
class RetrainOutcome:
    installed: bool
    version: int | None  # the candidate's version, when one was trained
    current: int | None  # the current version afterwards
    detail: str


def labelled(history: list[LabelledFeatures]) -> list[tuple[LabelledFeatures, bool]]:
    """Deliveries the gate scored, with their label (True: rejected by an operator)."""
    return [
        (h, h.decision == REJECTED)
        for h in history
        if len(h.features.gate_vector) == len(VECTOR_NAMES) and h.decision != EXPIRED
    ]


def retrain(ctx: Context) -> RetrainOutcome:
    records = GateRecords(ctx.archive.engine)
    settings = ctx.settings
    data = labelled(records.history())
    holdout_n = math.ceil(len(data) * settings.gate_holdout_fraction) if len(data) > 1 else 0
    train, holdout = data[: len(data) - holdout_n], data[len(data) - holdout_n :]
    normals = [h for h, rejected in train if not rejected]
    current = records.current_model()
    if len(normals) < settings.gate_min_history:
        return RetrainOutcome(
            False,
            None,
            current.version if current else None,
            f"{len(normals)} normal deliveries to learn from, {settings.gate_min_history} "
            "needed: the gate stays on rules"
            + (f" and model v{current.version}" if current else " only"),
        )
    candidate = fit(
        [h.features.gate_vector for h in normals],
        list(VECTOR_NAMES),
        forest_min_samples=settings.gate_forest_min_samples,
        margin=settings.gate_anomaly_margin,
    )
    vectors = [h.features.gate_vector for h, _ in holdout]
    labels = [rejected for _, rejected in holdout]
    mine = evaluate(candidate, vectors, labels)
    theirs = evaluate(load_model(ctx, current), vectors, labels) if current else None
    better = theirs is None or mine.balanced_error <= theirs.balanced_error
    version = records.add_model(
        kind=candidate.kind,
        state="candidate",
        window=(normals[0].arrived_at, normals[-1].arrived_at),
        samples=len(normals),
        metrics={
            "holdout": mine.to_json(),
            "current_on_holdout": theirs.to_json() if theirs else None,
            "current_version": current.version if current else None,
            "threshold": candidate.threshold,
            "training_rejected_left_out": sum(1 for _, r in train if r),
        },
        params=candidate.to_json(),
    )
    if better:
        records.set_current_model(version)
        detail = f"model v{version} ({candidate.kind}, {len(normals)} samples) installed"
    else:
        records.set_model_state(version, "rejected")
        assert current is not None
        detail = (
            f"model v{version} not installed: balanced error {mine.balanced_error:.3f} on the "
            f"held-back window against {theirs.balanced_error if theirs else 0:.3f} for "
            f"v{current.version}, which stays current"
        )
    return RetrainOutcome(
        better, version, version if better else current.version if current else None, detail
    )


def rollback(ctx: Context, version: int | None = None) -> ModelRecord:
    """Make ``version`` (default: the newest retired one) current again."""
    records = GateRecords(ctx.archive.engine)
    models = records.models()
    if version is None:
        current = records.current_model()
        retired = [
            m
            for m in models
            if m.state == "retired" and (current is None or m.version < current.version)
        ]
        if not retired:
            raise NotFoundError("no earlier model version to roll back to")
        version = retired[-1].version
    records.set_current_model(version)
    record = records.model(version)
    assert record is not None
    return record
