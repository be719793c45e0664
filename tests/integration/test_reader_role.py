"""The query service's PostgreSQL role reads what is public and nothing else, and writes nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from firstlight.config import Settings
from firstlight.domain.manifest import now_utc
from firstlight.query.adql.render import translate_adql
from firstlight.query.dialects import query_dialect
from firstlight.query.public import public_tables_now
from firstlight.query.tap import run_adql
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.storage.reader import grant_public_access, open_query_engine, query_url
from firstlight.storage.schema import observations
from tests.deliveries import generated
from tests.processes import wait_for
from tests.steps import release

LEDGER = ("deliveries", "findings", "stage_runs")


@pytest.fixture
def pg(pg_url: str, tmp_path: Path) -> Iterator[Context]:
    yield context_for(
        Settings(data_dir=tmp_path / "pg", database_url=pg_url, ingest_chunk_rows=700)
    )
    close_contexts()


@pytest.fixture
def reader(pg: Context, tmp_path: Path) -> Iterator[Engine]:
    release(pg, generated(tmp_path / "producer", rows=300))
    engine = open_query_engine(pg.settings)
    yield engine
    engine.dispose()


def _refused(engine: Engine, sql: str) -> str:
    with pytest.raises(ProgrammingError) as info, engine.begin() as conn:
        conn.execute(text(sql))
    return str(info.value.orig)


REFUSED = (
    "INSERT INTO current_releases (mission, release_key, switched_at) "
    "VALUES ('x', 'demo_dr1_v1', now())",
    "UPDATE releases SET state = 'staging'",
    "DELETE FROM observations",
    "DELETE FROM demo_dr1_v1.sources",
    "CREATE TABLE public.intruder (x int)",
    "CREATE TABLE demo_dr1_v1.intruder (x int)",
    "DROP VIEW demo.sources",
)


def test_reader_reads_what_is_public_and_nothing_else(pg: Context, reader: Engine) -> None:
    assert make_url(query_url(pg.settings)).username == pg.settings.query_role
    with reader.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == "firstlight_reader"
        assert conn.execute(text("SELECT count(*) FROM demo.sources")).scalar_one() == 300

    result = run_adql(
        pg.archive,
        "SELECT COUNT(*) FROM demo.sources AS s JOIN ivoa.obscore AS o "
        "ON 1 = CONTAINS(POINT(s.ra, s.dec), CIRCLE(o.s_ra, o.s_dec, 2))",
        maxrec=10,
        timeout_seconds=30,
        engine=reader,
    )
    assert result.rows[0][0] > 0
    for table in ("demo.sources", "demo_dr1_v1.sources", "tap_schema.columns"):
        rows = run_adql(
            pg.archive, f"SELECT * FROM {table}", maxrec=5, timeout_seconds=30, engine=reader
        ).rows
        assert len(rows) == 5, table

    for table in LEDGER:
        assert "permission denied" in _refused(reader, f"SELECT * FROM {table}"), table
    for sql in REFUSED:
        message = _refused(reader, sql)
        assert "permission denied" in message or "must be owner" in message, sql


def test_grants_follow_promotions(pg: Context, reader: Engine, tmp_path: Path) -> None:
    """A release promoted after the service started is readable by the role at once."""
    release(pg, generated(tmp_path / "v2", version="2", rows=200))
    rows = run_adql(
        pg.archive,
        "SELECT COUNT(*) FROM demo_dr1_v2.sources",
        maxrec=1,
        timeout_seconds=30,
        engine=reader,
    ).rows
    assert rows == [(200,)]


def test_sqlite_query_engine_is_read_only(ctx: Context, tmp_path: Path) -> None:
    release(ctx, generated(tmp_path / "producer", rows=100))
    engine = open_query_engine(ctx.settings)
    try:
        rows = run_adql(
            ctx.archive,
            "SELECT COUNT(*) FROM demo.sources WHERE DISTANCE(ra, dec, 150, 2) < 2",
            maxrec=1,
            timeout_seconds=30,
            engine=engine,
        ).rows
        assert rows == [(100,)]
        with pytest.raises(OperationalError, match="readonly"), engine.begin() as conn:
            conn.execute(text("DELETE FROM releases"))
    finally:
        engine.dispose()


def _blocked_by(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY (pg_blocking_pids(pid))"),
            {"pid": pid},
        ).scalar_one()
    return bool(waiting)


def test_grant_changes_at_once_wait_for_each_other(pg: Context) -> None:
    """Two promotions (of different missions) bring the grants up to date at the same moment:
    the second waits for the first, instead of failing with "tuple concurrently updated"."""
    engine, role = pg.archive.engine, pg.settings.query_role
    with engine.begin() as conn:
        grant_public_access(conn, role)  # the role exists from here on
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with engine.begin() as conn:
                grant_public_access(conn, role, create=False)
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    with engine.connect() as first:
        tx = first.begin()
        grant_public_access(first, role, create=False)
        pid = first.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        thread = threading.Thread(target=second)
        thread.start()
        wait_for("the second grant change waiting", lambda: _blocked_by(engine, pid), 120)
        tx.commit()
    thread.join(120)
    assert not thread.is_alive()
    assert not errors, errors


def test_reader_obscore_cone_uses_the_q3c_index(pg: Context, reader: Engine) -> None:
    """Under row security only LEAKPROOF conditions may run before the policy's: the cone's
    index condition (``q3c_ang2ipix`` between pixels) must be one (migration 0007), else the
    reader role scans every observation (500k rows: 2 to 3 s instead of under 1 ms)."""
    adql = (
        "SELECT obs_id FROM ivoa.obscore "
        "WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 150.0, 2.5, 0.1))"
    )
    with pg.archive.engine.begin() as conn:  # one release of 5,000 observations
        columns = [c.name for c in observations.columns if c.name not in {"id", "s_ra", "s_dec"}]
        unique = {"obs_id", "obs_publisher_did"}
        values = [f"{c} || '-' || g" if c in unique else c for c in columns]
        conn.exec_driver_sql(
            f"INSERT INTO observations ({', '.join(columns)}, s_ra, s_dec) "
            f"SELECT {', '.join(values)}, random() * 360, degrees(asin(2 * random() - 1)) "
            "FROM (SELECT * FROM observations LIMIT 1) o, generate_series(1, 5000) g"
        )
        conn.exec_driver_sql("ANALYZE observations")
    with reader.connect() as conn:
        tables = public_tables_now(conn, pg.archive, now=now_utc())
        sql = translate_adql(adql, tables, query_dialect("postgresql"), maxrec=10).sql
        plan = "\n".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "ix_observations_q3c" in plan, plan
