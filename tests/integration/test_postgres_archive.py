"""PostgreSQL as the archive: the same releases as SQLite, isolated, indexed, switchable."""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sqlalchemy import select, text

from firstlight.config import Settings
from firstlight.domain.ledger import DeliveryState
from firstlight.query.cone import cone_search, cone_search_observations
from firstlight.query.search import search_observations
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.storage.backends.skyorder import q3c_ipix
from firstlight.storage.schema import observations
from tests.deliveries import duplicate_source_ids, generated
from tests.steps import release, release_or_quarantine


@pytest.fixture
def pg(pg_url: str, tmp_path: Path) -> Iterator[Context]:
    # Sorted runs of 1,200 rows: a catalogue of more spills runs and merges them.
    yield context_for(
        Settings(
            data_dir=tmp_path / "pg",
            database_url=pg_url,
            ingest_chunk_rows=700,
            pg_sort_run_rows=1200,
        )
    )
    close_contexts()


def _scalar(ctx: Context, sql: str) -> object:
    with ctx.archive.engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


CONES = [(150.0, 2.0, 0.05), (150.3, 1.8, 0.2), (149.5, 2.5, 0.4), (150.0, 2.0, 1.2)]


def test_same_delivery_same_answers_as_sqlite(pg: Context, ctx: Context, tmp_path: Path) -> None:
    delivery = generated(tmp_path / "producer", rows=4000)
    release(pg, delivery)
    release(ctx, delivery)

    for ra, dec, radius in CONES:
        on_pg = cone_search(pg.archive, mission="demo", ra=ra, dec=dec, radius=radius, limit=10**6)
        on_lite = cone_search(
            ctx.archive, mission="demo", ra=ra, dec=dec, radius=radius, limit=10**6
        )
        ids_pg = [row["source_id"] for row in on_pg.as_dicts()]
        ids_lite = [row["source_id"] for row in on_lite.as_dicts()]
        assert ids_pg, f"no rows in cone {ra, dec, radius}"
        assert sorted(ids_pg) == sorted(ids_lite)
        for a, b in zip(on_pg.as_dicts(), on_lite.as_dicts(), strict=True):
            assert a["distance"] == pytest.approx(b["distance"], abs=1e-9)
    obs_pg = cone_search_observations(pg.archive, mission="demo", ra=150, dec=2, radius=2)
    obs_lite = cone_search_observations(ctx.archive, mission="demo", ra=150, dec=2, radius=2)
    assert [r[0] for r in obs_pg.rows] == [r[0] for r in obs_lite.rows]
    assert len(obs_pg.rows) == 4
    for words in ("field", "demo spec", "imager", "photometer var", "nothing"):
        found_pg = search_observations(pg.archive, mission="demo", text=words)
        found_lite = search_observations(ctx.archive, mission="demo", text=words)
        # Same rows but for access_url: each archive has its own public store.
        assert [r[:-1] for r in found_pg.rows] == [r[:-1] for r in found_lite.rows], words
    assert len(search_observations(pg.archive, mission="demo", text="field").rows) == 2


def test_full_text_search_uses_the_gin_index(pg: Context) -> None:
    from firstlight.storage import fulltext

    with pg.archive.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")  # tiny table: make the choice visible
        query = select(observations.c.id).where(fulltext.postgres_match("field"))
        plan = " ".join(str(r[0]) for r in conn.execute(text("EXPLAIN " + _sql(query, conn))))
    assert "ix_observations_text" in plan


def _sql(query: object, conn: object) -> str:
    return str(query.compile(conn, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


def test_each_release_has_its_schema_and_views_follow_current(pg: Context, tmp_path: Path) -> None:
    release(pg, generated(tmp_path / "producer", version="1", rows=1000))
    release(pg, generated(tmp_path / "producer", version="2", rows=1500))

    assert _scalar(pg, "SELECT count(*) FROM demo_dr1_v1.sources") == 1000
    assert _scalar(pg, "SELECT count(*) FROM demo_dr1_v2.sources") == 1500
    assert _scalar(pg, "SELECT count(*) FROM demo.sources") == 1500

    undone, current = pg.archive.releases.rollback("demo")

    assert (undone, current) == ("demo_dr1_v2", "demo_dr1_v1")
    assert _scalar(pg, "SELECT count(*) FROM demo.sources") == 1000
    cone = cone_search(pg.archive, mission="demo", ra=150, dec=2, radius=2, limit=10**6)
    assert (cone.release_key, len(cone.rows)) == ("demo_dr1_v1", 1000)
    by_name = cone_search(
        pg.archive, mission="demo", ra=150, dec=2, radius=2, limit=10**6, release="demo_dr1_v2"
    )
    assert len(by_name.rows) == 1500


def test_catalogue_is_keyed_indexed_and_clustered(pg: Context, tmp_path: Path) -> None:
    release(pg, generated(tmp_path / "producer", rows=5000))
    # Stored in q3c order by the loader (four sorted runs merged), not by CLUSTER.
    steps_back = _scalar(
        pg,
        "SELECT count(*) FROM (SELECT q3c_ang2ipix(ra, dec) < lag(q3c_ang2ipix(ra, dec)) "
        "OVER (ORDER BY ctid) AS back FROM demo_dr1_v1.sources) s WHERE back",
    )
    assert steps_back == 0
    assert _scalar(pg, "SELECT count(DISTINCT source_id) FROM demo_dr1_v1.sources") == 5000
    indexes = {
        row[0]: (row[1], row[2])
        for row in pg.archive.engine.connect().execute(
            text(
                "SELECT c.relname, i.indisunique, i.indisclustered FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = 'demo_dr1_v1.sources'::regclass"
            )
        )
    }
    assert indexes == {"ux_sources": (True, False), "ix_sources_q3c": (False, True)}
    plan = "\n".join(
        str(r[0])
        for r in pg.archive.engine.connect().execute(
            text(
                "EXPLAIN SELECT * FROM demo_dr1_v1.sources "
                "WHERE q3c_radial_query(ra, dec, 150.0, 2.0, 0.01)"
            )
        )
    )
    assert "ix_sources_q3c" in plan


def test_loader_pixel_is_q3c_pixel(pg_url: str) -> None:
    rng = np.random.default_rng(7)
    ra = np.concatenate([rng.uniform(0, 360, 20_000), [0, 45, 90, 180, 315, 360, 400, -30]])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000))), [0] * 6, [89, -89]])
    with psycopg.connect(pg_url.replace("postgresql+psycopg:", "postgresql:")) as conn:
        rows = conn.execute(
            "SELECT q3c_ang2ipix(r, d) FROM unnest(%s::float8[], %s::float8[]) "
            "WITH ORDINALITY u(r, d, i) ORDER BY i",
            (ra.tolist(), dec.tolist()),
        ).fetchall()
    server = np.array([r[0] for r in rows], dtype=np.int64)

    ours = q3c_ipix(ra, dec)

    # The loader only orders rows: a rare position one quantisation step off is harmless.
    assert np.count_nonzero(ours != server) <= len(ra) // 1000
    assert np.array_equal(ours >> 60, server >> 60)  # the same cube face, always


def test_large_catalogue_is_partitioned_by_sky(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "pg", database_url=pg_url, pg_partition_rows=2000, pg_partitions=6
    )
    small_parts = context_for(settings)
    try:
        release(small_parts, generated(tmp_path / "producer", rows=3000))
        parts = _scalar(
            small_parts,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'demo_dr1_v1.sources'::regclass",
        )
        assert parts == 7  # six pixel ranges and one for rows without a position
        cone = cone_search(
            small_parts.archive, mission="demo", ra=150, dec=2, radius=2, limit=10**6
        )
        assert len(cone.rows) == 3000
        with small_parts.archive.engine.connect() as conn:
            plan = " ".join(
                str(r[0])
                for r in conn.execute(
                    text(
                        "EXPLAIN SELECT * FROM demo_dr1_v1.sources "
                        "WHERE q3c_radial_query(ra, dec, 150.0, 2.0, 0.05)"
                    )
                )
            )
        scanned = set(re.findall(r"sources_p\d+", plan))
        assert len(scanned) == 1, f"a small cone should touch one partition, plan: {scanned}"
    finally:
        close_contexts()


def test_failed_delivery_leaves_no_schema(pg: Context, tmp_path: Path) -> None:
    delivery = generated(tmp_path / "producer", rows=800)
    duplicate_source_ids(delivery)

    release_or_quarantine(pg, delivery)

    [entry] = pg.archive.ledger.entries()
    assert entry.state is DeliveryState.QUARANTINED
    assert _scalar(pg, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'demo%'") == 0
    assert _scalar(pg, "SELECT count(*) FROM releases") == 0
    assert _scalar(pg, "SELECT count(*) FROM products") == 0
    assert _scalar(pg, "SELECT count(*) FROM findings WHERE check_name = 'table.key_unique'") == 1


def _race(url: str, data_dir: str, delivery: str, start: object, results: object) -> None:
    settings = Settings(data_dir=Path(data_dir), database_url=url or None)
    ctx = context_for(settings)
    start.wait()  # type: ignore[attr-defined]
    ticket = release_or_quarantine(ctx, Path(delivery))
    results.put(ticket.decision.value)  # type: ignore[attr-defined]
    close_contexts()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_arrivals_of_one_delivery_make_one_release(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else ""
    delivery = generated(tmp_path / "producer", rows=3000)
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Event(), spawn.Queue()
    racers = [
        spawn.Process(
            target=_race, args=(url, str(tmp_path / "var"), str(delivery), start, results)
        )
        for _ in range(3)
    ]
    for p in racers:
        p.start()
    start.set()
    for p in racers:
        p.join(120)
        assert p.exitcode == 0
    decisions = sorted(results.get(timeout=5) for _ in racers)

    assert decisions == ["proceed", "skip", "skip"]
    ctx = context_for(Settings(data_dir=tmp_path / "var", database_url=url or None))
    try:
        assert [r.release_key for r in ctx.archive.releases.list_releases()] == ["demo_dr1_v1"]
        [entry] = ctx.archive.ledger.entries()
        assert entry.state is DeliveryState.RELEASED and entry.attempts == 1
        assert _scalar(ctx, "SELECT count(*) FROM products") == 5
    finally:
        close_contexts()
