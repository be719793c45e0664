"""ADQL in, SQL out (or an error saying where): the translator, table-driven, no database."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlglot

from firstlight.domain.manifest import Column, DataType, TableDefinition
from firstlight.domain.sky import angular_separation_scalar, healpix_index
from firstlight.query.adql import AdqlError, translate_adql
from firstlight.query.public import (
    OBSCORE_COLUMNS,
    CatalogueSource,
    ObscoreSource,
    PublicTable,
    adql_name,
    catalogue_columns,
    plain_name,
    tap_schema_tables,
)

DEFINITION = TableDefinition(
    name="sources",
    columns=[
        Column(name="source_id", datatype=DataType.INT64, ucd="meta.id;meta.main"),
        Column(name="ra", datatype=DataType.FLOAT64, unit="deg", ucd="pos.eq.ra"),
        Column(name="dec", datatype=DataType.FLOAT64, unit="deg", ucd="pos.eq.dec"),
        Column(name="mag", datatype=DataType.FLOAT32, unit="mag"),
        Column(name="name", datatype=DataType.STRING),
    ],
    primary_key="source_id",
    ra="ra",
    dec="dec",
)


def _catalogue(schema: str, key: str, backend: str) -> PublicTable:
    # Where the rows are, as storage.backends puts them.
    if backend == "postgresql":
        source = CatalogueSource(key, key, "sources", "ra", "dec", None)
    else:
        source = CatalogueSource(key, None, f"cat_{key}__sources", "ra", "dec", "_hpx")
    return PublicTable(
        schema_name=schema,
        table_name=f"{schema}.sources",
        description="Sources",
        table_type="table",
        columns=catalogue_columns(DEFINITION),
        source=source,
    )


def _tables(backend: str) -> list[PublicTable]:
    obscore = PublicTable(
        schema_name="ivoa",
        table_name="ivoa.obscore",
        description="ObsCore",
        table_type="view",
        columns=OBSCORE_COLUMNS,
        source=ObscoreSource(("demo_dr2_v1",), datetime(2026, 11, 25, tzinfo=UTC)),
    )
    base = [
        obscore,
        _catalogue("demo", "demo_dr2_v1", backend),
        _catalogue("demo_dr1_v1", "demo_dr1_v1", backend),
    ]
    return base + tap_schema_tables(base)


TABLES = {backend: _tables(backend) for backend in ("postgresql", "sqlite", "oracle")}

CONE = (
    "SELECT TOP 10 source_id FROM demo.sources "
    "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150.0, 2.0, 0.1))"
)

# (ADQL, backend, fragments the SQL must hold, fragments it must not hold)
SHAPES = [
    (CONE, "postgresql", ["Q3C_JOIN(150.0, 2.0, sources.ra, sources.dec, 0.100000001)",
                          "Q3C_DIST(sources.ra, sources.dec, 150.0, 2.0) <= (0.1)",
                          "FROM demo_dr2_v1.sources AS sources", "LIMIT 10"], ["CONTAINS"]),
    (CONE, "sqlite", ["sources._hpx BETWEEN", "ANG_SEP_DEG(sources.ra, sources.dec, 150.0, 2.0)",
                      "FROM cat_demo_dr2_v1__sources AS sources"], ["CONTAINS", "Q3C"]),
    (CONE, "oracle", ['sources."_hpx" BETWEEN', "ASIN(SQRT(LEAST(", "FETCH FIRST 10 ROWS ONLY"],
     ["LIMIT", "ANG_SEP_DEG", "Q3C"]),
    ("SELECT source_id FROM demo_dr1_v1.sources", "postgresql",
     ["FROM demo_dr1_v1.sources"], ["demo_dr2"]),
    ("SELECT TOP 5 s.source_id, DISTANCE(POINT(s.ra, s.dec), POINT(10, 20)) AS d "
     "FROM demo.sources AS s ORDER BY d", "postgresql",
     ["Q3C_DIST(s.ra, s.dec, 10, 20) AS d", "ORDER BY d"], []),
    ("SELECT COUNT(*) FROM demo.sources WHERE DISTANCE(POINT(ra, dec), POINT(10, 20)) < 0.5",
     "postgresql", ["Q3C_JOIN(10, 20, sources.ra, sources.dec, 0.500000001)",
                    "Q3C_DIST(sources.ra, sources.dec, 10, 20) < 0.5"], []),
    ("SELECT COUNT(*) FROM demo.sources WHERE DISTANCE(ra, dec, 10, 20) < 0.5",
     "sqlite", ["_hpx BETWEEN", "ANG_SEP_DEG(sources.ra, sources.dec, 10, 20) < 0.5"], []),
    ("SELECT COUNT(*) FROM demo.sources WHERE CONTAINS(POINT(ra, dec), BOX(10, 20, 1, 2)) = 1",
     "postgresql", ["Q3C_POLY_QUERY(sources.ra, sources.dec, CAST(ARRAY[9.467911113762044, "
                    "19.0, 10.532088886237956, 19.0, 10.532088886237956, 21.0, 9.467911113762044, "
                    "21.0] AS DOUBLE PRECISION[]))"], []),  # ADQL 2.1: 1 deg wide on the sky
    # s_region, both ways round: pgsphere on PostgreSQL, the registered function on SQLite.
    ("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(150, 2, 0.5)) = 1",
     "postgresql", ["AS scircle) && CAST('<(150.0d,2.0d),0.5d>' AS scircle)", "AS spoly) &&"], []),
    ("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT(150, 2), s_region) = 1",
     "postgresql", ["SPOINT(RADIANS(150), RADIANS(2)) <@ CAST("], []),
    ("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(BOX(150, 2, 1, 1), s_region) = 1",
     "sqlite", ["ADQL_REGION_RELATE('CONTAINS', 'POLYGON ICRS 149.49", "obscore.s_region) = 1"],
     []),
    ("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(POINT(150, 2), s_region) = 1",
     "sqlite", ["ADQL_REGION_POINT(obscore.s_region, 150, 2)"], []),
    ("SELECT COUNT(*) FROM demo.sources WHERE CONTAINS(POINT(ra, dec), "
     "POLYGON(10, 20, 11, 20, 10.5, 21)) = 1", "sqlite", ["_hpx BETWEEN", ">= 0.0"],
     ["Q3C", "CASE WHEN"]),
    # Not convex: the crossing count in the gnomonic projection.
    ("SELECT COUNT(*) FROM demo.sources WHERE CONTAINS(POINT(ra, dec), "
     "POLYGON(10, 20, 12, 20, 12, 22, 11, 20.5, 10, 22)) = 1", "sqlite",
     ["_hpx BETWEEN", "CASE WHEN", "NULLIF("], ["Q3C"]),
    ("SELECT COUNT(*) FROM demo.sources WHERE CONTAINS(POINT(ra, dec), "
     "POLYGON(POINT(10, 20), POINT(11, 20), POINT(10.5, 21))) = 0", "postgresql",
     ["NOT (Q3C_POLY_QUERY("], []),
    ("SELECT COUNT(*) FROM demo.sources AS a, ivoa.obscore AS o "
     "WHERE INTERSECTS(POINT(a.ra, a.dec), CIRCLE(o.s_ra, o.s_dec, 0.1)) = 1", "postgresql",
     ["Q3C_JOIN(o.s_ra, o.s_dec, a.ra, a.dec, 0.100000001)",
      "Q3C_DIST(a.ra, a.dec, o.s_ra, o.s_dec) <= (0.1)", "FROM observations AS o"], []),
    ("SELECT obs_id FROM ivoa.obscore", "postgresql",
     ["o.release_key IN ('demo_dr2_v1')", "o.obs_release_date IS NULL",
      "CAST('2026-11-25T00:00:00+00:00' AS TIMESTAMPTZ)"], []),
    ("SELECT obs_id FROM ivoa.obscore", "sqlite",
     ["o.obs_release_date <= '2026-11-25 00:00:00.000000'", "o.healpix AS _hpx"], []),
    ("SELECT obs_id FROM ivoa.obscore", "oracle", ["TO_TIMESTAMP('2026-11-25 00:00:00.000000'"],
     []),
    ("SELECT TOP 3 * FROM demo.sources", "sqlite",
     ["sources.source_id AS source_id", "sources.name AS name", "LIMIT 3"], ["_hpx", "*"]),
    ("SELECT DISTINCT TOP 5 name FROM demo.sources ORDER BY name OFFSET 10", "oracle",
     ["SELECT DISTINCT", "OFFSET 10 ROWS FETCH FIRST 5 ROWS ONLY"], ["LIMIT"]),
    ("SELECT LOG(mag), LOG10(mag), MOD(source_id, 3), ROUND(ra, 2), TRUNCATE(dec, 1), "
     "RAND() FROM demo.sources", "postgresql",
     ["LN(sources.mag)", "LOG(sources.mag)", "MOD(sources.source_id, NULLIF(3, 0))",
      "CAST(ROUND(CAST(CAST(sources.ra AS TEXT) AS DECIMAL), CAST(2 AS INT)) AS DOUBLE PRECISION)",
      "CAST(TRUNC(CAST(CAST(sources.dec AS TEXT) AS DECIMAL), CAST(1 AS INT)) AS DOUBLE "
      "PRECISION)", "RANDOM()"], ["%"]),
    # Integer / integer is SQL's integer division; anything else is in double.
    ("SELECT source_id / 34359738368, 7 / 2, ra / 2, MOD(mag, 1), ROUND(mag, 1) "
     "FROM demo.sources", "postgresql",
     ["sources.source_id / NULLIF(34359738368, 0)", "7 / NULLIF(2, 0)",
      "CAST(sources.ra AS DOUBLE PRECISION) / NULLIF(2, 0)",
      "MOD(CAST(CAST(sources.mag AS TEXT) AS DECIMAL), NULLIF(CAST(CAST(1 AS TEXT)"], []),
    ("SELECT source_id / 2, ra / 2, MOD(mag, 1), ROUND(mag, 1) FROM demo.sources",
     "sqlite", ["sources.source_id / 2", "CAST(sources.ra AS REAL) / 2",
                "ADQL_MOD(sources.mag, 1, 1, 0)", "ADQL_ROUND(sources.mag, 1, 1)"], []),
    ("SELECT source_id / 2, ra / 2 FROM demo.sources", "oracle",
     ["TRUNC(sources.source_id / NULLIF(2, 0))", "sources.ra / NULLIF(2, 0)"], []),
    ("SELECT MOD(source_id, 3), TRUNCATE(dec, 1), RAND(), COT(ra) FROM demo.sources", "sqlite",
     ["sources.source_id % 3", "ADQL_TRUNCATE(sources.dec, 1, 0)", "CAST(RANDOM() AS REAL) /",
      "/ TAN(sources.ra)"], []),
    ("SELECT DEGREES(ra), RADIANS(dec), PI() FROM demo.sources", "oracle",
     ["57.29577951308232", "0.017453292519943295", "3.141592653589793"], ["DEGREES", "PI("]),
    ("SELECT a.source_id FROM demo.sources AS a JOIN demo.sources AS b "
     "ON a.source_id = b.source_id WHERE a.name LIKE 'x%' AND b.mag BETWEEN 1 AND 2 "
     "AND a.name IS NOT NULL AND a.source_id IN (1, 2) GROUP BY a.source_id "
     "HAVING COUNT(*) > 0", "postgresql",
     ["JOIN demo_dr2_v1.sources AS b ON a.source_id = b.source_id", "LIKE 'x%'",
      "BETWEEN 1 AND 2", "HAVING COUNT(*) > 0"], []),
    ("SELECT UPPER(name) || '!' AS u, COALESCE(mag, 0), CAST(mag AS DOUBLE PRECISION) "
     "FROM demo.sources WHERE name ILIKE 'a%'", "sqlite",
     ["UPPER(sources.name) || '!' AS u", "LOWER(sources.name) LIKE LOWER('a%')"], []),
    ("SELECT COORD1(POINT(ra, dec)), COORD2(POINT(ra, dec)) FROM demo.sources", "sqlite",
     ["(sources.ra)", "(sources.dec)"], ["COORD"]),
    ("SELECT table_name FROM tap_schema.tables", "oracle",
     ["FROM dual UNION ALL SELECT", "VARCHAR2(4000)"], ["LIMIT"]),
    ("SELECT \"size\", column_name FROM tap_schema.columns", "oracle", ['"size"'], []),
    ("SELECT name FROM demo.sources WHERE name = 'it''s; DROP TABLE x'", "postgresql",
     ["'it''s; DROP TABLE x'"], []),
    # Comments are the one part of the text sqlglot would carry over: dropped.
    ("SELECT name /* a */ FROM demo.sources -- */ DROP TABLE x; /*", "sqlite", ["FROM cat_"],
     ["DROP", "/*", "--"]),
    ('SELECT name AS "x"" FROM y; --" FROM demo.sources', "postgresql",
     ['AS "x"" FROM y; --"'], []),
]  # fmt: skip


@pytest.mark.parametrize(("adql", "backend", "present", "absent"), SHAPES)
def test_rendered_sql_has_the_expected_shape(
    adql: str, backend: str, present: list[str], absent: list[str]
) -> None:
    sql = translate_adql(adql, TABLES[backend], backend).sql
    for fragment in present:
        assert fragment in sql, f"{fragment!r} not in {sql}"
    for fragment in absent:
        assert fragment not in sql, f"{fragment!r} in {sql}"
    dialect = {"postgresql": "postgres", "sqlite": "sqlite", "oracle": "oracle"}[backend]
    assert sqlglot.parse_one(sql, read=dialect) is not None  # valid for the target


# (ADQL, message fragment, line, column)
ERRORS = [
    ("SELECT nope FROM demo.sources", "unknown column nope", 1, 8),
    ("SELECT s.nope\nFROM demo.sources AS s", "unknown column nope", 1, 10),
    ("SELECT ra FROM demo.nothing", "no public table demo.nothing", 1, 21),
    ("SELECT ra FROM demo_dr9_v1.sources", "no public table demo_dr9_v1.sources", 1, 28),
    ("SELECT ra FROM sources", "ambiguous", 1, 16),
    ("SELECT ra\nFROM demo.sources WHERE (ra", "syntax error", 2, 26),
    ("SELECT ra FROM demo.sources WHERE ra ==== 1", "syntax error", 1, 40),
    ("DELETE FROM demo.sources", "only SELECT", None, None),
    ("INSERT INTO demo.sources VALUES (1)", "only SELECT", None, None),
    ("DROP TABLE demo.sources", "only SELECT", None, None),
    ("SELECT 1 FROM demo.sources; DROP TABLE demo.sources", "one SELECT query", None, None),
    ("SELECT pg_sleep(10) FROM demo.sources", "unknown function PG_SLEEP", 1, 8),
    ("SELECT ra FROM demo.sources WHERE POINT(ra, dec) = 1", "cannot be a value", None, None),
    (
        "SELECT ra FROM demo.sources WHERE CONTAINS(POINT(ra, dec), POLYGON(1, 2, 3)) = 1",
        "at least three",
        None,
        None,
    ),
    (
        "SELECT ra FROM demo.sources WHERE CONTAINS(CIRCLE(1, 2, 3), POINT(ra, dec)) = 1",
        "not supported",
        None,
        None,
    ),
    ("SELECT ra FROM tap_schema.nothing", "no public table tap_schema.nothing", 1, 27),
    ("", "empty", None, None),
    # The grammar is ADQL's, and errors say so in its terms (issue 14 item 5).
    ("SELECT ra FROM demo.sources WHERE ra >", "expected an expression after '>'", 1, 38),
    ("SELECT ra FROM demo.sources WHERE dec >> 2", "the operator >> is not part of ADQL", 1, 35),
    ("SELEC TOP 5 ra FROM demo.sources", "a query starts with SELECT, found 'SELEC'", 1, 1),
    ("SELECT TOP 5 source_id, FROM demo.sources", "after ',', found 'FROM'", 1, 23),
    ("SELECT ra FROM demo.sources WHERE ra IN (1,)", "after ',', found ')'", 1, 43),
    ("SELECT name, COUNT(*) FROM demo.sources", "name must be in GROUP BY", 1, 8),
    ("SELECT mag, ra\nFROM demo.sources GROUP BY mag", "ra must be in GROUP BY", 1, 13),
    ("SELECT ra FROM demo.sources WHERE ra = 'abc", "unterminated string", None, None),
    ("SELECT CAST('postgres' AS regrole) FROM demo.sources", "CAST to regrole is not ADQL",
     1, 13),
    ("SELECT CAST(CAST('x' AS regclass) AS oid) FROM demo.sources", "is not ADQL", None, None),
    ("SELECT ra FROM demo.sources WHERE " + "(" * 60 + "ra > 1" + ")" * 60,
     "brackets nest deeper than 40", 1, 75),
    ("SELECT ra FROM demo.sources WHERE " + " OR ".join(f"ra = {i}" for i in range(1300)),
     "tokens; at most 5,000", None, None),
    ("SELECT ra FROM demo.sources WHERE ra = 1" + " " * 70_000, "characters long", None, None),
    # Geometry: ICRS only (never silently mixed), and what each shape takes.
    ("SELECT ra FROM demo.sources WHERE CONTAINS(POINT('GALACTIC', ra, dec), "
     "CIRCLE('ICRS', 1, 2, 3)) = 1", "coordinate system 'GALACTIC' is not served", 1, 50),
    ("SELECT ra FROM demo.sources WHERE CONTAINS(POINT('ICRS', ra), CIRCLE(1, 2, 3)) = 1",
     "POINT takes two coordinates", 1, 44),
    ("SELECT ra FROM demo.sources WHERE CONTAINS(POINT(ra, dec), CIRCLE(1, 2)) = 1",
     "CIRCLE takes a centre and a radius", None, None),
    ("SELECT ra FROM demo.sources WHERE CONTAINS(POINT(ra, dec), ra) = 1",
     "found the column ra", None, None),
    ("SELECT ra FROM demo.sources WHERE CONTAINS(POINT(ra, dec), BOX(0, 89.5, 1, 2)) = 1",
     "BOX reaches a pole", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("adql", "fragment", "line", "column"), ERRORS, ids=range(len(ERRORS)))
def test_bad_queries_say_what_and_where(
    adql: str, fragment: str, line: int | None, column: int | None
) -> None:
    with pytest.raises(AdqlError) as info:
        translate_adql(adql, TABLES["sqlite"], "sqlite")
    assert fragment in str(info.value)
    if line is not None:
        assert (info.value.line, info.value.column) == (line, column), str(info.value)


def test_maxrec_fetches_one_more_unless_top_is_smaller() -> None:
    q = "SELECT source_id FROM demo.sources"
    assert translate_adql(q, TABLES["sqlite"], "sqlite", maxrec=100).limit == 101
    assert translate_adql("SELECT TOP 7 source_id FROM demo.sources", TABLES["sqlite"], "sqlite",
                          maxrec=100).limit == 7  # fmt: skip
    assert translate_adql("SELECT TOP 700 source_id FROM demo.sources", TABLES["sqlite"], "sqlite",
                          maxrec=100).limit == 101  # fmt: skip
    assert translate_adql(q, TABLES["sqlite"], "sqlite").limit is None


def test_output_columns_keep_their_public_description() -> None:
    out = translate_adql(
        "SELECT s.ra AS alpha, mag, COUNT(*) AS n, ra + 1 FROM demo.sources AS s "
        "GROUP BY s.ra, mag",
        TABLES["postgresql"],
        "postgresql",
    ).columns
    assert [c.name for c in out][:3] == ["alpha", "mag", "n"]
    assert (out[0].unit, out[0].ucd, out[0].datatype) == ("deg", "pos.eq.ra", "double")
    assert out[1].datatype == "float"
    assert out[2].datatype == "long"
    assert out[3].datatype == ""  # computed: typed from its values when run


def test_computed_types_are_wide_enough_and_integer_where_sql_says() -> None:
    out = translate_adql(
        "SELECT SUM(mag), AVG(mag), SUM(source_id), source_id / 2, ra / 2, MOD(source_id, 2), "
        "MOD(ra, 2), ROUND(source_id, -2), ROUND(mag, 1), 7 / 2 FROM demo.sources "
        "GROUP BY source_id, ra, mag",
        TABLES["postgresql"],
        "postgresql",
    ).columns
    assert [c.datatype for c in out] == [
        "double", "double", "long", "long", "double", "long", "double", "long", "double", "long",
    ]  # fmt: skip


def test_embargoed_and_unknown_tables_fail_alike() -> None:
    """Promise 5: an error never tells an embargoed table from one that does not exist."""
    visible = [t for t in TABLES["sqlite"] if t.schema_name != "demo"]
    with pytest.raises(AdqlError) as hidden:
        translate_adql("SELECT ra FROM demo.sources", visible, "sqlite")
    with pytest.raises(AdqlError) as missing:
        translate_adql("SELECT ra FROM demo.sourcez", visible, "sqlite")
    assert str(hidden.value).replace("sources", "X") == str(missing.value).replace("sourcez", "X")


def _planar_inside(ra: float, dec: float, vertices: list[tuple[float, float]]) -> bool:
    """Ray casting in (ra, dec): close to great-circle edges for a polygon this small."""
    inside = False
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        if (y1 > dec) != (y2 > dec) and ra < x1 + (dec - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@pytest.mark.parametrize(
    "vertices",
    [
        [(150.0, 2.0), (150.6, 2.1), (150.3, 2.5)],  # convex: the edges' planes
        [(150.0, 2.0), (150.6, 2.0), (150.6, 2.6), (150.3, 2.2), (150.0, 2.6)],  # concave
    ],
)
def test_polygon_on_sqlite_selects_the_points_inside(vertices: list[tuple[float, float]]) -> None:
    """The HEALPix prefilter plus the exact test, run on SQLite against a reference."""
    rng = np.random.default_rng(7)
    ra, dec = rng.uniform(149.9, 150.7, 4000), rng.uniform(1.9, 2.7, 4000)
    hpx = healpix_index(ra, dec, 16)
    conn = sqlite3.connect(":memory:")
    conn.create_function("ang_sep_deg", 4, angular_separation_scalar, deterministic=True)
    conn.execute("CREATE TABLE cat_demo_dr2_v1__sources (source_id, ra, dec, mag, name, _hpx)")
    rows = zip(range(len(ra)), ra.tolist(), dec.tolist(), hpx.tolist(), strict=True)
    conn.executemany("INSERT INTO cat_demo_dr2_v1__sources VALUES (?, ?, ?, 0, '', ?)", rows)
    flat = ", ".join(f"{a}, {d}" for a, d in vertices)
    adql = f"SELECT source_id FROM demo.sources WHERE CONTAINS(POINT(ra, dec), POLYGON({flat})) = 1"
    found = {r[0] for r in conn.execute(translate_adql(adql, TABLES["sqlite"], "sqlite").sql)}
    conn.close()
    expected = {i for i in range(len(ra)) if _planar_inside(ra[i], dec[i], vertices)}
    assert len(expected) > 100
    # Great circles and straight lines differ by far less than this near the edges.
    assert len(found ^ expected) <= 2, sorted(found ^ expected)


def _sqlite_rows(adql: str, tables: list[PublicTable] | None = None) -> list[tuple[object, ...]]:
    """Rows of a query that reads TAP_SCHEMA only (its rows are literals in the SQL)."""
    conn = sqlite3.connect(":memory:")
    try:
        return conn.execute(
            translate_adql(adql, tables or TABLES["sqlite"], "sqlite").sql
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("name", "spelled"),
    [("size", '"size"'), ("SIZE", '"SIZE"'), ("arraysize", "arraysize"), ("ra", "ra"),
     ("value", '"value"'), ("point", '"point"'), ("2mass", '"2mass"'), ('a"b', '"a""b"')],
)  # fmt: skip
def test_reserved_words_and_irregular_names_are_delimited(name: str, spelled: str) -> None:
    assert adql_name(name) == spelled
    assert plain_name(spelled) == name


def test_tap_schema_lists_the_size_column_delimited() -> None:
    """TAP 1.1 section 4.3: TAP_SCHEMA.columns keeps TAP 1.0's "size", delimited."""
    listed = _sqlite_rows(
        "SELECT column_name, datatype, arraysize FROM tap_schema.columns "
        "WHERE table_name = 'tap_schema.columns' ORDER BY column_index"
    )
    names = [r[0] for r in listed]
    assert '"size"' in names
    assert "size" not in names
    assert "arraysize" in names
    assert listed[names.index('"size"')][1] == "int"


@pytest.mark.parametrize("backend", ["postgresql", "sqlite", "oracle"])
def test_delimited_size_column_is_queried_on_every_backend(backend: str) -> None:
    t = translate_adql(
        'SELECT c."size", "size" AS s2, arraysize FROM tap_schema.columns AS c '
        'WHERE "size" IS NULL',
        TABLES[backend],
        backend,
    )
    assert [c.name for c in t.columns] == ["size", "s2", "arraysize"]
    assert t.columns[0].datatype == "int"
    size = 'c."size"' if backend == "oracle" else "c.size"  # SIZE is reserved in Oracle only
    assert f"{size} AS " in t.sql
    assert f"AS {size.split('.')[1]}," in t.sql  # the subquery's own column
    dialect = {"postgresql": "postgres", "sqlite": "sqlite", "oracle": "oracle"}[backend]
    assert sqlglot.parse_one(t.sql, read=dialect) is not None


def test_delimited_size_column_runs_and_is_case_sensitive() -> None:
    every = _sqlite_rows("SELECT COUNT(*) FROM tap_schema.columns")[0][0]
    assert _sqlite_rows('SELECT COUNT("size") FROM tap_schema.columns') == [(0,)]  # all NULL
    assert _sqlite_rows('SELECT COUNT(*) FROM tap_schema.columns WHERE "size" IS NULL') == [
        (every,)
    ]
    with pytest.raises(AdqlError, match="unknown column SIZE"):
        translate_adql('SELECT "SIZE" FROM tap_schema.columns', TABLES["sqlite"], "sqlite")


def test_catalogue_column_named_like_a_reserved_word_is_delimited_and_queryable() -> None:
    definition = DEFINITION.model_copy(
        update={"columns": [*DEFINITION.columns, Column(name="Value", datatype=DataType.FLOAT64)]}
    )
    table = _catalogue("demo", "demo_dr2_v1", "sqlite")
    table = PublicTable(
        schema_name=table.schema_name,
        table_name=table.table_name,
        description=table.description,
        table_type=table.table_type,
        columns=catalogue_columns(definition),
        source=table.source,
    )
    assert [c.name for c in table.columns][-1] == '"value"'
    tables = [table, *tap_schema_tables([table])]
    described = _sqlite_rows(
        "SELECT column_name FROM tap_schema.columns WHERE table_name = 'demo.sources'", tables
    )
    assert ('"value"',) in described
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE cat_demo_dr2_v1__sources (source_id, ra, dec, mag, name, value)")
    conn.execute("INSERT INTO cat_demo_dr2_v1__sources VALUES (1, 0, 0, 0, 'a', 2.5)")
    t = translate_adql('SELECT "value" FROM demo.sources WHERE "value" > 1', tables, "sqlite")
    assert conn.execute(t.sql).fetchall() == [(2.5,)]
    conn.close()
    assert [c.name for c in t.columns] == ["value"]


# TAP 1.1 section 4: the foreign keys TAP_SCHEMA must declare about itself.
TAP_SCHEMA_LINKS = {
    ("tap_schema.tables", "schema_name", "tap_schema.schemas", "schema_name"),
    ("tap_schema.columns", "table_name", "tap_schema.tables", "table_name"),
    ("tap_schema.keys", "from_table", "tap_schema.tables", "table_name"),
    ("tap_schema.keys", "target_table", "tap_schema.tables", "table_name"),
    ("tap_schema.key_columns", "key_id", "tap_schema.keys", "key_id"),
}


def test_tap_schema_declares_its_own_foreign_keys() -> None:
    links = _sqlite_rows(
        "SELECT k.from_table, c.from_column, k.target_table, c.target_column "
        "FROM tap_schema.keys AS k JOIN tap_schema.key_columns AS c ON k.key_id = c.key_id"
    )
    assert set(links) >= TAP_SCHEMA_LINKS
    assert len(links) == len(set(links))
    key_ids = [r[0] for r in _sqlite_rows("SELECT key_id FROM tap_schema.keys")]
    assert len(key_ids) == len(set(key_ids))
    # /tables renders the same keys from the tables themselves.
    declared = {
        (t.table_name, f, k.target_table, to)
        for t in TABLES["sqlite"]
        for k in t.keys
        for f, to in k.columns
    }
    assert declared == set(links)


def test_every_key_points_at_listed_tables_and_columns() -> None:
    listed = set(_sqlite_rows("SELECT table_name, column_name FROM tap_schema.columns"))
    links = _sqlite_rows(
        "SELECT k.from_table, c.from_column, k.target_table, c.target_column "
        "FROM tap_schema.keys AS k JOIN tap_schema.key_columns AS c ON k.key_id = c.key_id"
    )
    assert links
    for from_table, from_column, target_table, target_column in links:
        assert (from_table, from_column) in listed
        assert (target_table, target_column) in listed


def test_s_region_on_sqlite_matches_the_regions_both_ways_round() -> None:
    """The registered functions answer CONTAINS/INTERSECTS over STC-S text exactly."""
    from firstlight.storage.db import register_functions

    conn = sqlite3.connect(":memory:")
    register_functions(conn)
    regions = {
        "box": "POLYGON ICRS 149 1 151 1 151 3 149 3",
        "cap": "CIRCLE ICRS 150 2 0.5",
        "far": "CIRCLE ICRS 10 -40 1",
    }
    cases = {
        "CONTAINS(POINT(150.9, 2.9), s_region)": {"box"},
        "INTERSECTS(s_region, POINT(150.2, 2.2))": {"box", "cap"},
        "CONTAINS(s_region, CIRCLE(150, 2, 1.5))": {"box", "cap"},
        "CONTAINS(CIRCLE(150, 2, 0.3), s_region)": {"box", "cap"},
        "CONTAINS(CIRCLE(150, 2, 1.5), s_region)": set(),
        "INTERSECTS(CIRCLE(151.5, 2, 0.51), s_region)": {"box"},
        "INTERSECTS(s_region, POLYGON(9, -41, 11, -41, 10, -38))": {"far"},
    }
    for predicate, expected in cases.items():
        adql = f"SELECT obs_id FROM ivoa.obscore WHERE {predicate} = 1"
        sql = translate_adql(adql, TABLES["sqlite"], "sqlite").sql
        # The rows themselves, not the archive's: the subquery stands for ObsCore.
        inner = sql.split(" AS obscore WHERE ")[1]
        values = " UNION ALL ".join(
            f"SELECT '{k}' AS obs_id, '{v}' AS s_region" for k, v in regions.items()
        )
        found = {
            r[0]
            for r in conn.execute(f"SELECT obscore.obs_id FROM ({values}) AS obscore WHERE {inner}")
        }
        assert found == expected, predicate
    conn.close()


def test_geometry_values_in_the_select_list_are_dali_arrays() -> None:
    t = translate_adql(
        "SELECT POINT(ra, dec) AS p, CIRCLE(ra, dec, 0.1) AS c, POLYGON(1, 2, 3, 4, 5, 6) AS g, "
        "COORDSYS(POINT(ra, dec)) AS s, AREA(CIRCLE(0, 0, 1)) AS a FROM demo.sources",
        TABLES["postgresql"],
        "postgresql",
    )
    described = [(c.name, c.datatype, c.arraysize, c.xtype) for c in t.columns]
    assert described == [
        ("p", "double", "2", "point"), ("c", "double", "3", "circle"),
        ("g", "double", "*", "polygon"), ("s", "char", "*", None), ("a", "double", None, None),
    ]  # fmt: skip
    assert t.widths == (2, 3, 6, 1, 1)
    assert "'ICRS' AS s" in t.sql
    assert "3.14151290574" in t.sql  # 2 pi (1 - cos 1 deg) in square degrees


def _documented_errors() -> list[tuple[str, str]]:
    """The rows of docs/querying.md's error table that the translator itself decides."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "querying.md").read_text()
    table = doc.split("## Errors you can meet", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 3 and cells[0].startswith("`SELECT") and "..." not in cells[0]:
            rows.append((cells[0].strip("`"), cells[1].strip("`")))
    return rows


@pytest.mark.parametrize(("adql", "said"), _documented_errors())
def test_the_documented_errors_are_what_users_get(adql: str, said: str) -> None:
    with pytest.raises(AdqlError) as info:
        translate_adql(adql, TABLES["sqlite"], "sqlite")
    assert said in str(info.value)
    assert info.value.line is not None or "at most" in said


_DECLARED_EXAMPLES = {
    "POINT": "SELECT POINT(ra, dec) AS p FROM demo.sources",
    "CIRCLE": "SELECT CIRCLE(ra, dec, 1) AS c FROM demo.sources",
    "BOX": "SELECT ra FROM demo.sources WHERE CONTAINS(POINT(ra, dec), BOX(1, 2, 3, 4)) = 1",
    "POLYGON": "SELECT POLYGON(1, 2, 3, 4, 5, 6) AS g FROM demo.sources",
    "CONTAINS": "SELECT ra FROM demo.sources WHERE CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) = 1",
    "INTERSECTS": "SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 1",
    "DISTANCE": "SELECT DISTANCE(POINT(ra, dec), POINT(1, 2)) AS d FROM demo.sources",
    "CENTROID": "SELECT CENTROID(s_region) AS c FROM ivoa.obscore",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_declared_geometry_function_translates(backend: str) -> None:
    """What capabilities declare (TAPRegExt adqlgeo) translates on each running backend."""
    from firstlight.query.service.vosi import GEOMETRY_FUNCTIONS

    assert set(GEOMETRY_FUNCTIONS) == set(_DECLARED_EXAMPLES)
    for name, adql in _DECLARED_EXAMPLES.items():
        assert translate_adql(adql, TABLES[backend], backend).sql, name
