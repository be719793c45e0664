"""Oracle as the archive, live: runs only when ``FIRSTLIGHT_TEST_ORACLE_URL`` is set.

No Oracle server exists on the project's machines, so here (and in CI) every test skips and
says why; ``tests/unit/test_oracle_statements.py`` checks every statement without a server.
Point the URL at Oracle Database Free (docs/oracle.md) to run these for real: migrate,
release, cone search, rollback, quarantine, each answered the same as on SQLite.

The suite owns the schema of the user in the URL: it drops the archive's tables there
before and after (use a user of its own, never one holding data).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, func, inspect, select, text

from firstlight.config import Settings
from firstlight.domain.findings import Report
from firstlight.domain.ledger import DeliveryState
from firstlight.domain.manifest import now_utc
from firstlight.query.cone import cone_search, cone_search_observations
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.services.quarantine import quarantine_delivery
from firstlight.storage.migrations import VERSION_TABLE
from firstlight.storage.schema import metadata
from tests.deliveries import duplicate_source_ids, generated
from tests.steps import release, release_or_quarantine, stage_release

URL_VARIABLE = "FIRSTLIGHT_TEST_ORACLE_URL"
SKIP_REASON = (
    f"{URL_VARIABLE} is not set: no Oracle server on this machine (expected here and in CI; "
    "the statements are checked offline by tests/unit/test_oracle_statements.py). "
    "To run: docs/oracle.md, e.g. "
    f"{URL_VARIABLE}=oracle+oracledb://firstlight:secret@host:1521/?service_name=FREEPDB1"
)
CONES = [(150.0, 2.0, 0.05), (150.3, 1.8, 0.2), (149.5, 2.5, 0.4), (150.0, 2.0, 1.2)]


def _drop_archive(engine: Engine) -> None:
    """Remove the archive's tables from the test user's schema (catalogues first)."""
    names = set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        for name in sorted(n for n in names if n.startswith("cat_")):
            Table(name, MetaData()).drop(conn)
        metadata.drop_all(conn, checkfirst=True)
        # SQLite's full-text table too: the suite's logic can be dry-run with a SQLite URL.
        for name in (VERSION_TABLE, "observations_fts"):
            if name in names:
                Table(name, MetaData()).drop(conn)


@pytest.fixture
def oracle_url() -> Iterator[str]:
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        pytest.skip(SKIP_REASON)
    engine = create_engine(url)
    try:
        _drop_archive(engine)
        yield url
    finally:
        close_contexts()
        _drop_archive(engine)
        engine.dispose()


@pytest.fixture
def ora(oracle_url: str, tmp_path: Path) -> Context:
    return context_for(
        Settings(data_dir=tmp_path / "oracle", database_url=oracle_url, ingest_chunk_rows=700)
    )


def _count(ctx: Context, table: str) -> int:
    with ctx.archive.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(Table(table, MetaData()))).scalar_one()
        )


def test_migrates_releases_and_answers_like_sqlite(
    ora: Context, ctx: Context, tmp_path: Path
) -> None:
    assert ora.archive.backend.name == "oracle"
    delivery = generated(tmp_path / "producer", rows=4000)
    started = now_utc()
    release(ora, delivery)
    release(ctx, delivery)

    [rel] = ora.archive.releases.list_releases("demo")
    assert rel.current and rel.promoted_at is not None
    assert started - timedelta(seconds=5) <= rel.promoted_at <= now_utc()  # UTC, both ways
    [tab] = ora.archive.releases.tables(rel.release_key)
    assert tab.row_count == 4000 and _count(ora, tab.physical_name) == 4000
    for ra, dec, radius in CONES:
        kw: dict[str, Any] = {"mission": "demo", "ra": ra, "dec": dec, "radius": radius}
        on_oracle = cone_search(ora.archive, limit=10**6, **kw).as_dicts()
        on_lite = cone_search(ctx.archive, limit=10**6, **kw).as_dicts()
        assert on_oracle, f"no rows in cone {ra, dec, radius}"
        assert [r["source_id"] for r in on_oracle] == [r["source_id"] for r in on_lite]
        for a, b in zip(on_oracle, on_lite, strict=True):
            assert a["distance"] == pytest.approx(b["distance"], abs=1e-9)
    obs_ora = cone_search_observations(ora.archive, mission="demo", ra=150, dec=2, radius=2)
    obs_lite = cone_search_observations(ctx.archive, mission="demo", ra=150, dec=2, radius=2)
    assert [r[0] for r in obs_ora.rows] == [r[0] for r in obs_lite.rows]


def test_catalogue_is_keyed_indexed_and_analysed(ora: Context, tmp_path: Path) -> None:
    release(ora, generated(tmp_path / "producer", rows=1000))
    [tab] = ora.archive.releases.tables("demo_dr1_v1")
    stored = ora.archive.engine.dialect.denormalize_name(tab.physical_name)
    with ora.archive.engine.connect() as conn:
        num_rows = conn.execute(
            text("SELECT num_rows FROM user_tables WHERE table_name = :t"), {"t": stored}
        ).scalar_one()
        indexes: dict[str, str] = dict(
            conn.execute(
                text("SELECT index_name, uniqueness FROM user_indexes WHERE table_name = :t"),
                {"t": stored},
            ).all()
        )
    assert num_rows == 1000  # DBMS_STATS ran
    assert sorted(indexes.values()) == ["NONUNIQUE", "UNIQUE"]  # source_id key, _hpx B-tree


def test_rollback_switches_back_whole(ora: Context, tmp_path: Path) -> None:
    release(ora, generated(tmp_path / "producer", version="1", rows=1000))
    release(ora, generated(tmp_path / "producer", version="2", rows=1500))

    undone, current = ora.archive.releases.rollback("demo")

    assert (undone, current) == ("demo_dr1_v2", "demo_dr1_v1")
    cone = cone_search(ora.archive, mission="demo", ra=150, dec=2, radius=2, limit=10**6)
    assert (cone.release_key, len(cone.rows)) == ("demo_dr1_v1", 1000)
    by_name = cone_search(
        ora.archive, mission="demo", ra=150, dec=2, radius=2, limit=10, release="demo_dr1_v2"
    )
    assert (by_name.release_key, len(by_name.rows), by_name.overflow) == ("demo_dr1_v2", 10, True)


def test_quarantine_leaves_nothing_behind(ora: Context, tmp_path: Path) -> None:
    bad = generated(tmp_path / "producer", version="1")
    duplicate_source_ids(bad)
    rejected = release_or_quarantine(ora, bad)
    entry = ora.archive.ledger.entry(rejected.delivery_pk)
    assert entry.state is DeliveryState.QUARANTINED
    findings = ora.archive.ledger.findings(rejected.delivery_pk)
    assert any(f.file and f.sample_rows for f in findings)  # "file" (quoted) and JSON columns

    staged = stage_release(ora, generated(tmp_path / "producer", version="2"))
    [tab] = ora.archive.releases.tables("demo_dr1_v2")
    quarantine_delivery(ora, staged, Report("promote", findings))  # discards the staging
    assert ora.archive.releases.get("demo_dr1_v2") is None
    assert tab.physical_name not in inspect(ora.archive.engine).get_table_names()
    assert ora.archive.releases.list_releases("demo") == []
