"""sphere regions: s_region as pgsphere values with GiST indexes, where pgsphere installs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

PostgreSQL only (SQLite: the HEALPix prefilter and the exact test in the
service; Oracle: no-op). When the ``pg_sphere`` extension can be created
here, ``observations`` gets two generated columns, ``s_region_scircle`` and
``s_region_spoly``: the STC-S text read once, at insert, as pgsphere's
circle or polygon (NULL for the other kind and for text pgsphere refuses),
each with a GiST index. ADQL's CONTAINS/INTERSECTS/AREA on ``s_region`` then
use them instead of reading the text of every row at query time.

Where the extension is missing, or refuses to install (Debian's 1.2.0 on
PostgreSQL 15 unpatched: pgsphere issue #85), nothing changes here: the
query layer reads the text as before (and says, if pgsphere is absent
altogether, that region geometry is not available).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same reading of STC-S text as the query layer's (query.adql.geometry), once
# per row; text pgsphere refuses is NULL, so one odd region never fails an insert.
_FUNCTIONS = {
    "firstlight_scircle": (
        "scircle",
        "CIRCLE",
        r"regexp_replace(region, '^\s*CIRCLE\s+(ICRS\s+)?(\S+)\s+(\S+)\s+(\S+)\s*$', "
        r"'<(\2d,\3d),\4d>', 'i')",
    ),
    "firstlight_spoly": (
        "spoly",
        "POLYGON",
        r"'{' || regexp_replace(regexp_replace(regexp_replace(region, "
        r"'^\s*POLYGON\s+(ICRS\s+)?', '', 'i'), '(\S+)\s+(\S+)\s*', '(\1d,\2d),', 'g'), "
        r"',$', '') || '}'",
    ),
}
COLUMNS = {"s_region_scircle": "firstlight_scircle", "s_region_spoly": "firstlight_spoly"}


def _pgsphere_installed() -> bool:
    if op.get_context().as_sql:  # offline (``upgrade --sql``): the script assumes it
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
        return True
    bind = op.get_bind()
    if (
        bind.exec_driver_sql(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_sphere'"
        ).first()
        is None
    ):
        return False
    try:
        with bind.begin_nested():  # a failure rolls back to here, not the whole upgrade
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_sphere")
    except DBAPIError:
        return False
    return True


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql" or not _pgsphere_installed():
        return
    for name, (sql_type, kind, text_form) in _FUNCTIONS.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}(region text) RETURNS {sql_type} "
            "LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$ BEGIN "
            f"IF upper(ltrim(region)) NOT LIKE '{kind}%' THEN RETURN NULL; END IF; "
            f"RETURN CAST({text_form} AS {sql_type}); "
            "EXCEPTION WHEN others THEN RETURN NULL; END $$"
        )
    for column, function in COLUMNS.items():
        sql_type = _FUNCTIONS[function][0]
        op.execute(
            f"ALTER TABLE observations ADD COLUMN {column} {sql_type} "
            f"GENERATED ALWAYS AS ({function}(s_region)) STORED"
        )
        op.execute(f"CREATE INDEX ix_observations_{sql_type} ON observations USING GIST ({column})")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"ALTER TABLE observations DROP COLUMN IF EXISTS {column}")
    for name in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {name}(text)")
