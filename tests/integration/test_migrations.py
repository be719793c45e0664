"""Alembic migrations and the table definitions stay one: no drift, on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, inspect

from firstlight.storage.db import make_engine
from firstlight.storage.migrations import VERSION_TABLE, include_object
from firstlight.storage.schema import metadata

ROOT = Path(__file__).resolve().parents[2]


def _alembic_upgrade_head(url: str) -> None:
    """`alembic upgrade head` from the repository, as an operator runs it."""
    alembic = Path(sys.executable).with_name("alembic")
    subprocess.run(
        [str(alembic), "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "FIRSTLIGHT_DATABASE_URL": url},
        capture_output=True,
    )


def _drift(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn, warnings.catch_warnings():
            # pgsphere's types (0006's region columns, left out by include_object) are
            # unknown to SQLAlchemy's reflection.
            warnings.filterwarnings("ignore", "Did not recognize type '(scircle|spoly)'")
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_object": include_object,
                    "compare_type": True,
                    "version_table": VERSION_TABLE,
                },
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_upgrade_head_matches_the_models(database_url: str) -> None:
    _alembic_upgrade_head(database_url)
    assert _drift(database_url) == []
    engine = make_engine(database_url)
    try:
        assert VERSION_TABLE in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_drift_is_detected(database_url: str) -> None:
    """The check above can fail: a column the migrations lack shows up."""
    _alembic_upgrade_head(database_url)
    extra = Column("colour", Integer)
    metadata.tables["releases"].append_column(extra)
    try:
        diff = _drift(database_url)
    finally:
        metadata.tables["releases"]._columns.remove(extra)
    assert any(op[0] == "add_column" and op[3].name == "colour" for op in diff)
