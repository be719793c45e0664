"""reader row security: embargoed and staging rows are invisible to every role but the owner

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

PostgreSQL only (SQLite and Oracle: no-op). Row-level security on the archive
tables the query service's role reads, so the database itself, not only the
query code, hides what is not public at the moment (``now()``, the server's
clock): releases not promoted; and products, observations and catalogue
entries of those, or whose release date is ahead. The owner (who writes)
bypasses the policies; every other role sees through them. Mission views are
made ``security_invoker``: reading one needs the grant on the release table
under it (``storage.reader.grant_public_access`` grants only public ones).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROMOTED = "release_key IN (SELECT r.release_key FROM releases r WHERE r.promoted_at IS NOT NULL)"
POLICIES = {
    "releases": "promoted_at IS NOT NULL",
    "products": f"(release_date IS NULL OR release_date <= now()) AND {_PROMOTED}",
    "observations": f"(obs_release_date IS NULL OR obs_release_date <= now()) AND {_PROMOTED}",
    "release_tables": f"(release_date IS NULL OR release_date <= now()) AND {_PROMOTED}",
}
POLICY = "firstlight_public_rows"


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, condition in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {table} FOR SELECT TO PUBLIC USING ({condition})")
    # Views made before this revision ran with their owner's rights (any grant on a
    # view read the table under it, embargoed or not).
    op.execute(
        "DO $$ DECLARE v record; BEGIN "
        "FOR v IN SELECT schemaname, viewname FROM pg_views "
        "WHERE schemaname IN (SELECT mission FROM current_releases) LOOP "
        "EXECUTE format('ALTER VIEW %I.%I SET (security_invoker = true)', "
        "v.schemaname, v.viewname); END LOOP; END $$"
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table in POLICIES:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
