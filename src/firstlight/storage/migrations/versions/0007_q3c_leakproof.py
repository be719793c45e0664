"""q3c_ang2ipix LEAKPROOF: the ObsCore cone keeps its q3c index under row-level security

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

PostgreSQL only (SQLite and Oracle: no-op). Under row-level security (0004) the
planner may evaluate, before the policy's own conditions, only a LEAKPROOF
condition of the reader's query; ``q3c_ang2ipix`` is not marked so by q3c, so
the index condition of a cone on ``observations`` (``q3c_ang2ipix(s_ra, s_dec)``
between two pixels) ran after the policy, row by row: a sequential scan
(500k rows: 2 to 3 s instead of under 1 ms). It is leakproof in fact: it only
computes a pixel number from its two arguments, with no side effect and no
error for any input (NaN or infinite coordinates give NULL), so a hidden row's
values cannot escape through it.

Only a superuser may mark a function LEAKPROOF: an owner that is not one skips
this (docs/databases.md says what to run once as a superuser). Note that
``ALTER EXTENSION q3c UPDATE`` may reset the mark.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IF_SUPERUSER = (
    "DO $$ BEGIN "
    "IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
    "AND to_regprocedure('q3c_ang2ipix(double precision, double precision)') IS NOT NULL "
    "THEN ALTER FUNCTION q3c_ang2ipix(double precision, double precision) {mark}; "
    "END IF; END $$"
)


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_IF_SUPERUSER.format(mark="LEAKPROOF"))


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_IF_SUPERUSER.format(mark="NOT LEAKPROOF"))
