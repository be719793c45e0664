"""Every ADQL function the service declares, on SQLite and PostgreSQL, against numpy.

One released catalogue, the same queries on both backends, and for each the
answer a careful computation over the delivered FITS values gives: numpy in
double for transcendental functions, Python's decimal on each value's
shortest representation (float32's for single-precision columns) for ROUND,
TRUNCATE and MOD, exact integers for integer division, ``math.fsum`` for
sums. Independent of the translator's own definitions (``domain.decimals``).
Oracle's rendering of the same queries is checked to parse.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlglot
from astropy.io import fits

from firstlight.config import Settings
from firstlight.query.adql import translate_adql
from firstlight.query.public import public_tables
from firstlight.query.tap import run_adql
from firstlight.services.context import Context, close_contexts, context_for
from tests.deliveries import generated
from tests.steps import release

ROWS = 1500
Cat = dict[str, Any]  # column name -> numpy array of the FITS values (NaN: NULL)


def _shortest(value: Any) -> Decimal:
    """The shortest decimal that reads back as ``value`` in its own precision."""
    return Decimal(np.format_float_positional(value, unique=True, trim="-"))


def _round(value: Any, digits: int, how: str = ROUND_HALF_UP) -> float | None:
    if np.isnan(value):
        return None
    return float(_shortest(value).quantize(Decimal(1).scaleb(-digits), rounding=how))


def _mod(value: Any, divisor: int) -> float | None:
    if np.isnan(value):
        return None
    return float(_shortest(value) % Decimal(divisor))  # sign of the dividend, as SQL's MOD


def _nullable(values: Any) -> list[Any]:
    return [None if np.isnan(v) else float(v) for v in values]


def _double(column: str) -> Callable[[Cat], Any]:
    return lambda cat: np.asarray(cat[column], dtype=np.float64)


def _each(adql_expr: str, ref: Callable[[Cat], list[Any]], tol: float = 0.0) -> tuple[Any, ...]:
    query = f"SELECT source_id, {adql_expr} AS v FROM demo.sources ORDER BY source_id"
    return query, lambda cat: sorted(zip(cat["source_id"].tolist(), ref(cat), strict=True)), tol


def _scalar(adql: str, ref: Callable[[Cat], Any] | None, tol: float = 0.0) -> tuple[Any, ...]:
    return adql, None if ref is None else (lambda cat: [(ref(cat),)]), tol


def _vector(f: Callable[[Any], Any], column: str) -> Callable[[Cat], list[Any]]:
    def ref(cat: Cat) -> list[Any]:
        with np.errstate(all="ignore"):
            return _nullable(f(_double(column)(cat)))

    return ref


MAG, PLX, RA, DEC = "phot_g_mean_mag", "parallax", "ra", "dec"
REL = 1e-13  # libm and numpy may differ in the last bit of a transcendental function

# name -> (ADQL, reference over the FITS values, relative tolerance; 0 = exact)
CASES: dict[str, tuple[Any, ...]] = {
    # Exact decimal rounding of the stored value's shortest representation.
    "round_float32": _each(f"ROUND({MAG}, 1)", lambda c: [_round(v, 1) for v in c[MAG]]),
    "truncate_float32": _each(
        f"TRUNCATE({MAG}, 1)", lambda c: [_round(v, 1, ROUND_DOWN) for v in c[MAG]]
    ),
    "round_float32_3": _each(f"ROUND({PLX}, 3)", lambda c: [_round(v, 3) for v in c[PLX]]),
    "round_double_13": _each(f"ROUND({RA}, 13)", lambda c: [_round(v, 13) for v in c[RA]]),
    "truncate_double_negative": _each(
        f"TRUNCATE({DEC}, 4)", lambda c: [_round(v, 4, ROUND_DOWN) for v in c[DEC]]
    ),
    "round_no_digits": _each(f"ROUND({MAG})", lambda c: [_round(v, 0) for v in c[MAG]]),
    "mod_float32": _each(f"MOD({MAG}, 1)", lambda c: [_mod(v, 1) for v in c[MAG]]),
    "mod_double": _each(f"MOD({RA}, 7)", lambda c: [_mod(v, 7) for v in c[RA]]),
    "mod_integer": _each("MOD(source_id, 7)", lambda c: [int(v) % 7 for v in c["source_id"]]),
    "count_round_equal": _scalar(
        f"SELECT COUNT(*) FROM demo.sources WHERE ROUND({MAG}, 1) = 21.0",
        lambda c: sum(1 for v in c[MAG] if _round(v, 1) == 21.0),
    ),
    # SQL's integer division, exact above 2**53.
    "healpix_from_source_id": _each(
        "source_id / 34359738368", lambda c: [int(v) // 2**35 for v in c["source_id"]]
    ),
    "half_source_id": _each("source_id / 2", lambda c: [int(v) // 2 for v in c["source_id"]]),
    "double_division": _each(f"{RA} / 2", _vector(lambda x: x / 2, RA)),
    # Aggregates: wide enough for their values.
    "sum_float32": _scalar(
        f"SELECT SUM({MAG}) FROM demo.sources",
        lambda c: math.fsum(v for v in _double(MAG)(c) if not np.isnan(v)),
        1e-12,
    ),
    "avg_float32": _scalar(
        f"SELECT AVG({PLX}) FROM demo.sources",
        lambda c: float(np.nanmean(_double(PLX)(c))),
        1e-12,
    ),
    "sum_integer": _scalar(
        "SELECT SUM(source_id / 34359738368) FROM demo.sources",
        lambda c: sum(int(v) // 2**35 for v in c["source_id"]),
    ),
    "min_max_count": _scalar(f"SELECT MIN({MAG}), MAX({RA}), COUNT({PLX}) FROM demo.sources", None),
    # Mathematical functions, in double.
    "abs_float32": _each(
        f"ABS({PLX})", lambda c: [None if np.isnan(v) else np.float32(abs(v)) for v in c[PLX]]
    ),
    "sqrt": _each(f"SQRT(ABS({PLX}))", _vector(lambda x: np.sqrt(np.abs(x)), PLX), REL),
    "power": _each(f"POWER({DEC}, 2)", _vector(lambda x: x**2, DEC), REL),
    "exp": _each(f"EXP({MAG} / 10)", _vector(lambda x: np.exp(x / 10), MAG), REL),
    "log": _each(f"LOG({MAG})", _vector(np.log, MAG), REL),
    "log10": _each(f"LOG10({MAG})", _vector(np.log10, MAG), REL),
    "sin": _each(f"SIN({RA})", _vector(np.sin, RA), REL),
    "cos": _each(f"COS({RA})", _vector(np.cos, RA), REL),
    "tan": _each(f"TAN({DEC})", _vector(np.tan, DEC), REL),
    "cot": _each(f"COT({DEC})", _vector(lambda x: 1 / np.tan(x), DEC), REL),
    "asin": _each(f"ASIN({DEC} / 90)", _vector(lambda x: np.arcsin(x / 90), DEC), REL),
    "acos": _each(f"ACOS({DEC} / 90)", _vector(lambda x: np.arccos(x / 90), DEC), REL),
    "atan": _each(f"ATAN({DEC})", _vector(np.arctan, DEC), REL),
    "atan2": _each(
        f"ATAN2({DEC}, {RA})",
        lambda c: _nullable(np.arctan2(_double(DEC)(c), _double(RA)(c))),
        REL,
    ),
    "degrees": _each(f"DEGREES({DEC})", _vector(np.degrees, DEC), REL),
    "radians": _each(f"RADIANS({RA})", _vector(np.radians, RA), REL),
    "pi": _scalar("SELECT PI() FROM demo.sources WHERE source_id = 0", None),
    "ceiling": _each(f"CEILING({MAG})", _vector(np.ceil, MAG)),
    "floor": _each(f"FLOOR({DEC})", _vector(np.floor, DEC)),
    "rand_range": _scalar(
        "SELECT COUNT(*) FROM demo.sources WHERE RAND() >= 0 AND RAND() < 1", lambda c: ROWS
    ),
    # Geometry.
    "coord1_coord2": _each(
        f"COORD1(POINT({RA}, {DEC})) + COORD2(POINT({RA}, {DEC}))",
        lambda c: _nullable(_double(RA)(c) + _double(DEC)(c)),
    ),
    "distance": _each(
        f"DISTANCE(POINT({RA}, {DEC}), POINT(150.0, 2.0))",
        lambda c: _nullable(_separation(_double(RA)(c), _double(DEC)(c), 150.0, 2.0)),
        1e-9,
    ),
}


def _separation(ra: Any, dec: Any, ra0: float, dec0: float) -> Any:
    r, d, r0, d0 = (np.radians(x) for x in (ra, dec, ra0, dec0))
    h = np.sin((d - d0) / 2) ** 2 + np.cos(d) * np.cos(d0) * np.sin((r - r0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.minimum(h, 1.0))))


def _fits_catalogue(delivery: Path) -> Cat:
    manifest = json.loads((delivery / "manifest.json").read_text())
    path = next(f["path"] for f in manifest["files"] if f["product_type"] == "catalogue")
    with fits.open(delivery / path) as hdus:
        data = hdus[1].data
        return {name.lower(): np.array(data[name]) for name in data.columns.names}


@pytest.fixture
def released(ctx: Context, pg_url: str, tmp_path: Path) -> Iterator[tuple[Cat, dict[str, Any]]]:
    delivery = generated(tmp_path / "producer", rows=ROWS)
    pg = context_for(Settings(data_dir=tmp_path / "pg", database_url=pg_url, ingest_chunk_rows=700))
    release(ctx, delivery)
    release(pg, delivery)
    yield _fits_catalogue(delivery), {"sqlite": ctx.archive, "postgresql": pg.archive}
    close_contexts()


def _same(got: Any, want: Any, tol: float) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, int) and not isinstance(want, bool):
        return isinstance(got, int) and got == want
    if isinstance(want, np.float32):  # a float32 result: its value, however it is carried
        return bool(np.float32(got) == want)
    if tol == 0.0:
        return float(got) == float(want)
    return math.isclose(float(got), float(want), rel_tol=tol, abs_tol=tol)


def test_every_declared_function_matches_numpy_on_both_backends(
    ctx: Context, released: tuple[Cat, dict[str, Any]]
) -> None:
    """One release on each backend (the slow part), every check against it."""
    cat, archives = released
    _functions_match_numpy(cat, archives)
    for backend, archive in archives.items():
        _literals_and_zero_radius(cat, archive, backend)
        _declared_types(archive)
    with ctx.archive.engine.connect() as conn:
        tables = public_tables(conn, ctx.archive, now=datetime.now(UTC))
    for name, (adql, _, _) in CASES.items():
        sql = translate_adql(adql, tables, "oracle", maxrec=1000).sql
        assert sqlglot.parse_one(sql, read="oracle") is not None, name


def _functions_match_numpy(cat: Cat, archives: dict[str, Any]) -> None:
    wrong: list[str] = []
    answers: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for name, (adql, reference, tol) in CASES.items():
        for backend, archive in archives.items():
            rows = run_adql(archive, adql, maxrec=10 * ROWS, timeout_seconds=60).rows
            answers.setdefault(name, {})[backend] = rows
            if reference is None:
                continue
            expected = reference(cat)
            if len(rows) != len(expected):
                wrong.append(f"{name} on {backend}: {len(rows)} rows, {len(expected)} expected")
                continue
            for got, want in zip(rows, expected, strict=True):
                if not all(_same(g, w, tol) for g, w in zip(got, want, strict=True)):
                    wrong.append(f"{name} on {backend}: {got} where numpy says {want}")
                    break
    assert not wrong, "\n".join(wrong)
    # The ones without a numpy reference: both backends alike.
    for name in ("min_max_count", "pi"):
        assert answers[name]["sqlite"] == answers[name]["postgresql"], name
    assert answers["count_round_equal"]["sqlite"][0][0] > 0  # the case is not vacuous
    mag32 = cat[MAG][~np.isnan(cat[MAG])]
    assert answers["min_max_count"]["sqlite"][0][0] == float(mag32.min())


def _literals_and_zero_radius(cat: Cat, archive: Any, backend: str) -> None:
    one = "SELECT TOP 1 7 / 2, -7 / 2, 7.0 / 2, PI(), MOD(-7, 3) FROM demo.sources"
    rows = run_adql(archive, one, maxrec=10, timeout_seconds=30).rows
    assert rows == [(3, -3, 3.5, math.pi, -1)], backend
    for i in (0, ROWS // 2, ROWS - 1):
        ra, dec, sid = float(cat[RA][i]), float(cat[DEC][i]), int(cat["source_id"][i])
        for form in (
            f"CONTAINS(POINT(ra, dec), CIRCLE({ra!r}, {dec!r}, 0)) = 1",
            f"DISTANCE(POINT(ra, dec), POINT({ra!r}, {dec!r})) <= 0",
        ):
            adql = f"SELECT source_id FROM demo.sources WHERE {form}"
            found = run_adql(archive, adql, maxrec=10, timeout_seconds=30).rows
            assert found == [(sid,)], f"{backend}: {form}"


def _declared_types(archive: Any) -> None:
    adql = (
        f"SELECT SUM({MAG}) AS s, AVG({MAG}) AS a, SUM(source_id / 34359738368) AS n, "
        "source_id / 2 AS h FROM demo.sources GROUP BY source_id"
    )
    columns = run_adql(archive, adql, maxrec=1, timeout_seconds=30).columns
    assert [c.datatype for c in columns] == ["double", "double", "long", "long"]
