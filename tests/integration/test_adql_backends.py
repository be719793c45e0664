"""The same ADQL, the same rows: SQLite and PostgreSQL answer alike, Oracle's SQL compiles.

Also what is public: only promoted releases, embargoed catalogues and
observations invisible in results, counts and TAP_SCHEMA until their date
(``now`` is passed, no rebuild), MAXREC/OVERFLOW, time limits, and the q3c
index behind a PostgreSQL cone.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlalchemy import text

from firstlight.config import Settings
from firstlight.query.adql import AdqlError, translate_adql
from firstlight.query.public import public_tables
from firstlight.query.tap import QueryTimeout, run_adql
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.services.promotion import promote_release
from tests.deliveries import generated
from tests.steps import release, stage_release

ROWS = 1500
MAXREC = 100_000

# Each query orders its rows completely, so row lists compare one to one.
QUERIES = {
    "cone": "SELECT source_id FROM demo.sources WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
    "CIRCLE('ICRS', 150.0, 2.0, 0.2)) ORDER BY source_id",
    "nearest": "SELECT TOP 10 source_id, DISTANCE(POINT('ICRS', ra, dec), "
    "POINT('ICRS', 150.1, 2.1)) AS dist FROM demo.sources ORDER BY dist",
    "top": "SELECT TOP 5 source_id, ra, dec FROM demo.sources ORDER BY source_id DESC",
    "offset": "SELECT TOP 5 source_id FROM demo.sources ORDER BY source_id OFFSET 10",
    "join_obscore": "SELECT o.obs_id, COUNT(*) AS n FROM ivoa.obscore AS o "
    "JOIN demo.sources AS s ON 1 = CONTAINS(POINT(s.ra, s.dec), CIRCLE(o.s_ra, o.s_dec, 0.1)) "
    "GROUP BY o.obs_id ORDER BY o.obs_id",
    "group_by": "SELECT FLOOR(phot_g_mean_mag) AS mag, COUNT(*) AS n FROM demo.sources "
    "WHERE phot_g_mean_mag IS NOT NULL GROUP BY FLOOR(phot_g_mean_mag) HAVING COUNT(*) > 1 "
    "ORDER BY mag",
    "box": "SELECT COUNT(*) AS n FROM demo.sources "
    "WHERE CONTAINS(POINT(ra, dec), BOX(150.0, 2.0, 0.4, 0.3)) = 1",
    "polygon": "SELECT source_id FROM demo.sources WHERE 1 = CONTAINS(POINT(ra, dec), "
    "POLYGON(149.8, 1.8, 150.3, 1.9, 150.1, 2.3)) ORDER BY source_id",
    "distance_below": "SELECT source_id FROM demo.sources "
    "WHERE DISTANCE(POINT(ra, dec), POINT(149.7, 2.2)) < 0.15 ORDER BY source_id",
    "intersects": "SELECT COUNT(*) FROM demo.sources "
    "WHERE INTERSECTS(CIRCLE(150.2, 1.8, 0.3), POINT(ra, dec)) = 1",
    "math": "SELECT TOP 5 source_id, ROUND(ra, 3) AS r, TRUNCATE(dec, 2) AS t, "
    "SQRT(ABS(pmra)) AS s, LOG10(ABS(ra)) AS l10, LOG(ra) AS ln, POWER(dec, 2) AS p, "
    "MOD(source_id, 7) AS m, DEGREES(PI()) AS deg, RADIANS(180) AS rad, SIN(RADIANS(dec)) AS sn, "
    "ATAN2(dec, ra) AS a2, EXP(1) AS e, CEILING(ra) AS c, FLOOR(dec) AS f, ra / 2 AS half "
    "FROM demo.sources ORDER BY source_id",
    "release_qualified": "SELECT COUNT(*) AS n, MIN(source_id) AS lo, MAX(source_id) AS hi "
    "FROM demo_dr1_v1.sources",
    "self_join": "SELECT TOP 5 a.source_id, b.ra FROM demo.sources AS a "
    "JOIN demo.sources AS b ON a.source_id = b.source_id WHERE a.ra < 150 ORDER BY a.source_id",
    "predicates": "SELECT obs_id, dataproduct_type FROM ivoa.obscore WHERE obs_id LIKE 'images/%' "
    "AND dataproduct_type IN ('image', 'spectrum') AND s_dec BETWEEN -90 AND 90 "
    "AND target_name IS NOT NULL ORDER BY obs_id",
    "strings": "SELECT UPPER(obs_id) || '!' AS u, LOWER(dataproduct_type) AS d, "
    "COALESCE(s_resolution, -1) AS res FROM ivoa.obscore ORDER BY u",
    "aggregates": "SELECT COUNT(*) AS n, AVG(phot_g_mean_mag) AS g, SUM(parallax) AS p, "
    "MIN(ra) AS r FROM demo.sources",
    "distinct": "SELECT DISTINCT dataproduct_type FROM ivoa.obscore ORDER BY dataproduct_type",
    "coords": "SELECT TOP 3 COORD1(POINT(ra, dec)) AS c1, COORD2(POINT(ra, dec)) AS c2 "
    "FROM demo.sources ORDER BY c1",
    "tap_schema": "SELECT column_name, datatype, unit, ucd FROM tap_schema.columns "
    "WHERE table_name = 'demo.sources' ORDER BY column_index",
    "subquery": "SELECT COUNT(*) FROM demo.sources WHERE source_id IN "
    "(SELECT source_id FROM demo.sources WHERE dec > 2)",
}
EMPTY_ALLOWED: set[str] = set()


@pytest.fixture
def pg(pg_url: str, tmp_path: Path) -> Iterator[Context]:
    yield context_for(
        Settings(data_dir=tmp_path / "pg", database_url=pg_url, ingest_chunk_rows=700)
    )
    close_contexts()


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Context]:
    """A context on each backend (PostgreSQL skips without a server, fails in CI)."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    yield context_for(
        Settings(data_dir=tmp_path / request.param, database_url=url, ingest_chunk_rows=700)
    )
    close_contexts()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        # float32 columns: PostgreSQL returns the shortest decimal, SQLite the widened double.
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


def test_same_adql_same_rows_on_sqlite_and_postgresql(
    ctx: Context, pg: Context, tmp_path: Path
) -> None:
    delivery = generated(tmp_path / "producer", rows=ROWS)
    release(ctx, delivery)
    release(pg, delivery)
    for name, adql in QUERIES.items():
        lite = run_adql(ctx.archive, adql, maxrec=MAXREC, timeout_seconds=30)
        post = run_adql(pg.archive, adql, maxrec=MAXREC, timeout_seconds=30)
        assert lite.rows or name in EMPTY_ALLOWED, f"{name}: no rows"
        assert [c.name for c in lite.columns] == [c.name for c in post.columns], name
        assert [c.datatype for c in lite.columns] == [c.datatype for c in post.columns], name
        assert len(lite.rows) == len(post.rows), f"{name}: {len(lite.rows)} vs {len(post.rows)}"
        for i, (a, b) in enumerate(zip(lite.rows, post.rows, strict=True)):
            assert all(_same(x, y) for x, y in zip(a, b, strict=True)), f"{name} row {i}: {a} {b}"
    # Spatial answers are not trivially everything or nothing.
    cone = run_adql(ctx.archive, QUERIES["cone"], maxrec=MAXREC, timeout_seconds=30)
    assert 0 < len(cone.rows) < ROWS


def test_oracle_rendering_compiles_for_every_query(ctx: Context, tmp_path: Path) -> None:
    release(ctx, generated(tmp_path / "producer", rows=300))
    with ctx.archive.engine.connect() as conn:
        tables = public_tables(conn, ctx.archive, now=datetime.now(UTC))
    for name, adql in QUERIES.items():
        sql = translate_adql(adql, tables, "oracle", maxrec=1000).sql
        sqlglot.parse_one(sql, read="oracle")  # well-formed Oracle SQL
        assert " LIMIT " not in sql and "FETCH FIRST" in sql, name
        for sqlite_only in ("ANG_SEP_DEG", "RANDOM(", "DEGREES(", "PI()", "Q3C"):
            assert sqlite_only not in sql.upper(), f"{name}: {sqlite_only} in {sql}"


def test_cone_on_postgresql_uses_the_q3c_index(pg: Context, tmp_path: Path) -> None:
    release(pg, generated(tmp_path / "producer", rows=4000))
    with pg.archive.engine.connect() as conn:
        tables = public_tables(conn, pg.archive, now=datetime.now(UTC))
        sql = translate_adql(QUERIES["cone"], tables, "postgresql").sql
        plan = "\n".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {sql}")))
    assert "Index" in plan and "_q3c" in plan, plan


def _embargo_catalogue(delivery: Path, until: datetime) -> None:
    """Give the catalogue file a release date (the producer's manifest says so)."""
    manifest_path = delivery / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        if entry["product_type"] == "catalogue":
            entry["release_date"] = until.isoformat()
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def _count(ctx: Context, adql: str, now: datetime) -> int:
    rows = run_adql(ctx.archive, adql, maxrec=10, timeout_seconds=30, now=now).rows
    return int(rows[0][0])


def test_embargo_hides_rows_counts_and_metadata_until_its_date(
    archive_ctx: Context, tmp_path: Path
) -> None:
    until = datetime.now(UTC) + timedelta(days=30)
    delivery = generated(tmp_path / "producer", rows=400, embargo_until=until)
    _embargo_catalogue(delivery, until)
    release(archive_ctx, delivery)
    before, after = datetime.now(UTC), until + timedelta(seconds=1)

    # Before: the embargoed observations and the catalogue are nowhere.
    assert _count(archive_ctx, "SELECT COUNT(*) FROM ivoa.obscore", before) == 2
    types = run_adql(
        archive_ctx.archive,
        "SELECT DISTINCT dataproduct_type FROM ivoa.obscore",
        maxrec=10,
        timeout_seconds=30,
        now=before,
    ).rows
    assert types == [("image",)]
    for name in ("demo.sources", "demo_dr1_v1.sources"):
        with pytest.raises(AdqlError, match=re.escape(f"no public table {name}")):
            run_adql(archive_ctx.archive, f"SELECT * FROM {name}", maxrec=10, timeout_seconds=30)
    listed = "SELECT COUNT(*) FROM tap_schema.tables WHERE table_name LIKE 'demo%'"
    assert _count(archive_ctx, listed, before) == 0
    described = "SELECT COUNT(*) FROM tap_schema.columns WHERE table_name LIKE 'demo%'"
    assert _count(archive_ctx, described, before) == 0

    # After its date: visible, without any rebuild.
    assert _count(archive_ctx, "SELECT COUNT(*) FROM ivoa.obscore", after) == 4
    assert _count(archive_ctx, "SELECT COUNT(*) FROM demo.sources", after) == 400
    assert _count(archive_ctx, listed, after) == 2  # demo.sources, demo_dr1_v1.sources
    assert _count(archive_ctx, described, after) > 0


def test_only_promoted_releases_are_visible(archive_ctx: Context, tmp_path: Path) -> None:
    release(archive_ctx, generated(tmp_path / "v1", version="1", rows=300))
    ticket = stage_release(archive_ctx, generated(tmp_path / "v2", version="2", rows=200))
    now = datetime.now(UTC)
    assert _count(archive_ctx, "SELECT COUNT(*) FROM demo.sources", now) == 300
    with pytest.raises(AdqlError, match=r"no public table demo_dr1_v2\.sources"):
        run_adql(archive_ctx.archive, "SELECT * FROM demo_dr1_v2.sources", maxrec=1,
                 timeout_seconds=30)  # fmt: skip
    staged = "SELECT COUNT(*) FROM tap_schema.schemas WHERE schema_name = 'demo_dr1_v2'"
    assert _count(archive_ctx, staged, now) == 0

    promote_release(archive_ctx, ticket)
    now = datetime.now(UTC)
    assert _count(archive_ctx, "SELECT COUNT(*) FROM demo.sources", now) == 200
    assert _count(archive_ctx, "SELECT COUNT(*) FROM demo_dr1_v2.sources", now) == 200
    assert _count(archive_ctx, "SELECT COUNT(*) FROM demo_dr1_v1.sources", now) == 300
    assert _count(archive_ctx, staged, now) == 1


def test_maxrec_overflow_and_time_limit(archive_ctx: Context, tmp_path: Path) -> None:
    release(archive_ctx, generated(tmp_path / "producer", rows=300))
    q = "SELECT source_id FROM demo.sources ORDER BY source_id"
    capped = run_adql(archive_ctx.archive, q, maxrec=5, timeout_seconds=30)
    assert (len(capped.rows), capped.overflow) == (5, True)
    exact = run_adql(archive_ctx.archive, q, maxrec=300, timeout_seconds=30)
    assert (len(exact.rows), exact.overflow) == (300, False)
    top = "SELECT TOP 5 source_id FROM demo.sources ORDER BY source_id"
    assert run_adql(archive_ctx.archive, top, maxrec=5, timeout_seconds=30).overflow is False
    assert run_adql(archive_ctx.archive, top, maxrec=3, timeout_seconds=30).overflow is True

    slow = "SELECT COUNT(*) FROM demo.sources AS a, demo.sources AS b, demo.sources AS c"
    with pytest.raises(QueryTimeout):
        run_adql(archive_ctx.archive, slow, maxrec=1, timeout_seconds=0.2)
    # The connection is fine afterwards.
    assert _count(archive_ctx, "SELECT COUNT(*) FROM demo.sources", datetime.now(UTC)) == 300
