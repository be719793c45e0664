"""ObsCore's ``s_region`` in ADQL on SQLite and PostgreSQL, against numpy over the regions.

One release per backend for the module (a release takes most of a minute on a
loaded machine); each test reads it only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from firstlight.config import Settings
from firstlight.query.tap import run_adql
from firstlight.services.context import Context, close_contexts, context_for
from tests.deliveries import generated
from tests.postgres import database_from_template, pg_server_url
from tests.steps import release


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def regions_ctx(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Context]:
    """A released demo delivery (two image footprints, two circles) on each backend."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        ctx = context_for(Settings(data_dir=root / "archive"))
        release(ctx, generated(root / "producer", rows=200))
        yield ctx
        close_contexts()
        return
    template = request.getfixturevalue("pg_template")
    with database_from_template(pg_server_url(), template) as url:
        ctx = context_for(Settings(data_dir=root / "archive", database_url=url))
        release(ctx, generated(root / "producer", rows=200))
        yield ctx
        close_contexts()


def _query(ctx: Context, adql: str) -> list[tuple[object, ...]]:
    return run_adql(ctx.archive, adql, maxrec=1000, timeout_seconds=60).rows


def _numpy_centroid(region: str) -> tuple[float, float]:
    """The documented definition, computed independently: a circle's centre; else the
    normalised mean of the polygon's vertices as unit vectors."""
    words = region.split()
    numbers = np.array([float(w) for w in words[2:]])
    if words[0].upper() != "POLYGON":
        return float(numbers[0] % 360), float(numbers[1])
    ra, dec = np.radians(numbers[0::2]), np.radians(numbers[1::2])
    v = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).sum(axis=1)
    v /= np.linalg.norm(v)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360), float(np.degrees(np.arcsin(v[2])))


def test_centroid_of_s_region_is_the_numpy_centroid_as_a_dali_point(
    regions_ctx: Context,
) -> None:
    result = run_adql(
        regions_ctx.archive,
        "SELECT obs_id, s_region, CENTROID(s_region) AS c, COORD1(CENTROID(s_region)) AS c1, "
        "COORD2(CENTROID(s_region)) AS c2 FROM ivoa.obscore ORDER BY obs_id",
        maxrec=100,
        timeout_seconds=60,
    )
    point = result.columns[2]
    assert (point.datatype, point.arraysize, point.xtype) == ("double", "2", "point")
    kinds = {str(r[1]).split()[0] for r in result.rows}
    assert kinds == {"POLYGON", "CIRCLE"}, kinds  # both kinds of region are exercised
    for obs_id, region, centre, c1, c2 in result.rows:
        expected = _numpy_centroid(str(region))
        assert isinstance(centre, list), obs_id
        np.testing.assert_allclose(centre, expected, rtol=0, atol=1e-9, err_msg=str(obs_id))
        assert (c1, c2) == tuple(centre), obs_id


def test_centroid_filters_and_measures_like_a_point(regions_ctx: Context) -> None:
    rows = _query(regions_ctx, "SELECT obs_id, s_region FROM ivoa.obscore ORDER BY obs_id")
    target_id, target_region = rows[0]
    ra, dec = _numpy_centroid(str(target_region))
    # A radius-0 circle on the centroid finds exactly that observation (inclusive bound,
    # the centroids of the others are elsewhere).
    found = _query(
        regions_ctx,
        f"SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(CENTROID(s_region), "
        f"CIRCLE({ra + 1e-12!r}, {dec!r}, 1e-9)) = 1",
    )
    assert found == [(target_id,)]
    distances = _query(
        regions_ctx,
        f"SELECT obs_id, DISTANCE(CENTROID(s_region), POINT({ra!r}, {dec!r})) AS d "
        "FROM ivoa.obscore ORDER BY d",
    )
    assert distances[0][0] == target_id
    assert float(distances[0][1]) < 1e-9  # type: ignore[arg-type]
    assert float(distances[1][1]) > 1e-3  # type: ignore[arg-type]


def test_centroid_of_constant_shapes(regions_ctx: Context) -> None:
    (row,) = _query(
        regions_ctx,
        "SELECT CENTROID(CIRCLE(370, -20, 1)) AS c, CENTROID(POLYGON(359, 0, 1, 0, 1, 1, 359, 1)) "
        "AS p, CENTROID(BOX(10, 20, 2, 2)) AS b FROM ivoa.obscore WHERE obs_id LIKE 'images/%01%'",
    )
    np.testing.assert_allclose(row[0], [10.0, -20.0], atol=1e-12)
    polygon = _numpy_centroid("POLYGON ICRS 359 0 1 0 1 1 359 1")
    assert abs((row[1][0] - polygon[0] + 180) % 360 - 180) < 1e-9  # type: ignore[index]
    np.testing.assert_allclose(row[1][1], polygon[1], atol=1e-9)  # type: ignore[index]
    w = 1 / np.cos(np.radians(20))  # ADQL 2.1's BOX: its width is an angle on the sky
    box = _numpy_centroid(f"POLYGON ICRS {10 - w} 19 {10 + w} 19 {10 + w} 21 {10 - w} 21")
    np.testing.assert_allclose(row[2], box, atol=1e-9)


# Shapes around the delivered footprints (two image boxes near (150.28, 1.79) and
# (149.68, 2.20), a spectrum's and a light curve's circles), both ways round.
PREDICATES = {
    "INTERSECTS(s_region, CIRCLE(150.28, 1.79, 0.01))": "CIRCLE ICRS 150.28 1.79 0.01",
    "INTERSECTS(CIRCLE(149.7, 2.2, 0.05), s_region)": "CIRCLE ICRS 149.7 2.2 0.05",
    "CONTAINS(s_region, CIRCLE(150.0, 2.0, 1.0))": "CIRCLE ICRS 150.0 2.0 1.0",
    "CONTAINS(CIRCLE(150.28, 1.79, 0.001), s_region)": "CIRCLE ICRS 150.28 1.79 0.001",
    "CONTAINS(s_region, POLYGON(149, 0.5, 151, 0.5, 151, 2.3, 149, 2.3))": (
        "POLYGON ICRS 149 0.5 151 0.5 151 2.3 149 2.3"
    ),
    "INTERSECTS(s_region, BOX(150.39, 2.46, 0.01, 0.01))": None,
    "CONTAINS(POINT(150.28, 1.79), s_region)": "POSITION ICRS 150.28 1.79",
    "INTERSECTS(s_region, POINT(149.65, 2.2))": "POSITION ICRS 149.65 2.2",
}


def test_s_region_predicates_both_ways_round_match_the_regions(regions_ctx: Context) -> None:
    """Each backend's answer (pgsphere's stored values on PostgreSQL, the service's own
    geometry on SQLite) equals the exact relation of the delivered regions."""
    from firstlight.domain.regions import parse_stcs, relate

    rows = _query(regions_ctx, "SELECT obs_id, s_region FROM ivoa.obscore ORDER BY obs_id")
    regions = {str(obs_id): parse_stcs(str(text)) for obs_id, text in rows}
    w = 0.01 / np.cos(np.radians(2.46))
    box = (
        f"POLYGON ICRS {150.39 - w} 2.455 {150.39 + w} 2.455 {150.39 + w} 2.465 {150.39 - w} 2.465"
    )
    for predicate, shape in PREDICATES.items():
        other = parse_stcs(shape or box)
        region_first = predicate.split("(", 1)[1].startswith("s_region")
        kind = predicate.split("(")[0]
        expected = {
            obs_id
            for obs_id, region in regions.items()
            if (relate(kind, region, other) if region_first else relate(kind, other, region))
        }
        found = {
            str(r[0])
            for r in _query(regions_ctx, f"SELECT obs_id FROM ivoa.obscore WHERE {predicate} = 1")
        }
        assert found == expected, predicate
        assert expected, f"{predicate}: a case that finds nothing proves little"
        negated = {
            str(r[0])
            for r in _query(regions_ctx, f"SELECT obs_id FROM ivoa.obscore WHERE {predicate} = 0")
        }
        assert negated == set(regions) - expected, predicate


def test_postgresql_reads_s_region_through_pgsphere_gist_indexes(
    regions_ctx: Context,
) -> None:
    if regions_ctx.archive.engine.dialect.name != "postgresql":
        pytest.skip("pgsphere is PostgreSQL's")
    from sqlalchemy import text

    from firstlight.domain.manifest import now_utc
    from firstlight.query.adql import translate_adql
    from firstlight.query.public import public_tables

    adql = "SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(150, 2, 1)) = 1"
    with regions_ctx.archive.engine.connect() as conn, conn.begin() as transaction:
        sql = translate_adql(adql, public_tables(conn, regions_ctx.archive, now=now_utc()),
                             "postgresql").sql  # fmt: skip
        # Four rows, and the release's own indexes win: whether the GiST indexes can
        # serve the predicate as rendered, without a sequential scan.
        condition = sql.split(") AS obscore WHERE ", 1)[1]
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        probe = (
            "EXPLAIN SELECT 1 FROM (SELECT s_region_scircle AS _scircle, s_region_spoly AS "
            f"_spoly FROM observations) AS obscore WHERE {condition}"
        )
        plan = "\n".join(str(r[0]) for r in conn.execute(text(probe)))
        transaction.rollback()
    assert "ix_observations_spoly" in plan and "ix_observations_scircle" in plan, plan
    assert "regexp" not in sql.lower()  # the stored values, not the text of every row


def test_postgresql_without_pgsphere_migrates_and_says_why_regions_fail(
    pg_template: str, tmp_path: Path
) -> None:
    """Migration 0006 leaves the archive as it was where pg_sphere cannot be created."""
    from firstlight.query.adql import AdqlError
    from tests.postgres import database_refusing_pgsphere

    with database_refusing_pgsphere(pg_server_url()) as url:
        ctx = context_for(Settings(data_dir=tmp_path / "archive", database_url=url))
        try:
            release(ctx, generated(tmp_path / "producer", rows=100))
            assert _query(ctx, "SELECT COUNT(*) FROM ivoa.obscore") == [(4,)]
            with ctx.archive.engine.connect() as conn:
                columns = {
                    str(r[0])
                    for r in conn.exec_driver_sql(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = 'observations'"
                    )
                }
            assert "s_region" in columns and "s_region_spoly" not in columns
            with pytest.raises(AdqlError, match="lacks pgsphere"):
                _query(ctx, "SELECT obs_id FROM ivoa.obscore WHERE "
                       "INTERSECTS(s_region, CIRCLE(150, 2, 1)) = 1")  # fmt: skip
        finally:
            close_contexts()
