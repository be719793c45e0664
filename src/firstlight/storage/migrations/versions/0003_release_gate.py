"""release gate: delivery features, gate decisions, model versions, forecasts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

What the release gate records (docs/gate.md): each delivery's features per
attempt, the gate's decision, the versions of its anomaly model and the
time-to-data forecast made at arrival.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import firstlight.storage.schema

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, firstlight.storage.schema.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "delivery_features",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        _utc("recorded_at", nullable=False),
        sa.ForeignKeyConstraint(["delivery"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery", "attempt", name="uq_delivery_features"),
    )
    op.create_table(
        "gate_decisions",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("drift", sa.JSON(), nullable=False),
        sa.Column("anomaly_score", sa.Float(), nullable=True),
        sa.Column("anomaly_threshold", sa.Float(), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=True),
        _utc("held_at", nullable=True),
        _utc("decided_at", nullable=False),
        sa.ForeignKeyConstraint(["delivery"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery", "attempt", name="uq_gate_decisions"),
    )
    op.create_table(
        "gate_models",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _utc("trained_at", nullable=False),
        _utc("window_from", nullable=True),
        _utc("window_to", nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "ttd_forecasts",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("predicted_seconds", sa.Float(), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        _utc("made_at", nullable=False),
        sa.ForeignKeyConstraint(["delivery"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery", "attempt", name="uq_ttd_forecasts"),
    )


def downgrade() -> None:
    for table in ("ttd_forecasts", "gate_models", "gate_decisions", "delivery_features"):
        op.drop_table(table)
