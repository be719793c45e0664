"""Alembic migrations of the archive's own tables (``storage.schema``).

``upgrade(engine)`` brings any backend to the latest revision; it runs on
every ``open_archive`` and is safe when several processes start at once
(the write lock on SQLite, an advisory lock on PostgreSQL). The repository's
``alembic.ini`` runs the same migrations from the command line against
``FIRSTLIGHT_DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from firstlight.storage.db import for_writing

VERSION_TABLE = "firstlight_alembic_version"
_HERE = Path(__file__).resolve().parent
_PG_LOCK_KEY = 0x66697273  # "firs": serialises concurrent upgrades of one database


# Objects the migrations create that the metadata does not describe on purpose:
# backend-specific search structures, and the per-release catalogue tables.
BACKEND_SPECIFIC = frozenset(
    {
        "observations_fts", "ix_observations_q3c", "ix_observations_text",
        # pgsphere's regions (0006), where the extension installs.
        "s_region_scircle", "s_region_spoly", "ix_observations_scircle", "ix_observations_spoly",
    }
)  # fmt: skip


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """What autogenerate and the drift test compare: the archive's own tables only."""
    if name is None:
        return True
    if name in BACKEND_SPECIFIC or name.startswith("observations_fts_"):
        return False
    return not (type_ == "table" and name.startswith("cat_"))


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    return cfg


def upgrade(engine: Engine) -> None:
    with for_writing(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
