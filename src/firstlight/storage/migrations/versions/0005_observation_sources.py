"""observation sources: where each ObsCore column of each product came from

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

The ObsCore step reads each column from a header keyword, one of its
alternatives, the manifest's observation fields or nothing (issue 16); the
ledger keeps which, per delivery attempt and product.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import firstlight.storage.schema

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "observation_sources",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("delivery", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column(
            "recorded_at",
            firstlight.storage.schema.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["delivery"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_observation_sources_delivery"), "observation_sources", ["delivery"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_observation_sources_delivery"), table_name="observation_sources")
    op.drop_table("observation_sources")
