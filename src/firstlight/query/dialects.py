"""Everything the query layer does differently per database, one object per backend.

The translator (``query.adql``) and the runner (``query.tap``) ask a
``QueryDialect`` and never compare backend names: how a function that ADQL
defines is computed exactly there, how positions are tested and measured
(q3c on PostgreSQL, the HEALPix column plus an exact test elsewhere), how a
timestamp literal is spelt, how a read-only transaction with a time limit is
opened and what a timeout looks like. ``query_dialect`` maps the SQLAlchemy
dialect name to its object, once.

ROUND, TRUNCATE and MOD of non-integers work on the value's shortest decimal
representation (``domain.decimals`` defines them): PostgreSQL through its
text form cast to numeric (a real or double cast to numeric directly keeps 6
or 15 significant digits), SQLite through registered functions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import ClassVar

from sqlalchemy import Column, Connection, MetaData, Table
from sqlalchemy.engine import Dialect as SqlaDialect
from sqlglot import exp

from firstlight.domain.manifest import Column as ColumnDefinition
from firstlight.query.adql.geometry import HealpixSpatial, Indexed, Point, Q3cSpatial, Spatial
from firstlight.storage.backends.oracle import ORACLE_TYPES
from firstlight.storage.catalogues import SQL_TYPES

_SQLITE_PROGRESS_STEPS = 10_000  # VM instructions between two clock checks
_NOTICEABLE_S = 0.05  # translation time worth a round trip to shorten the database's limit
_RAD = math.pi / 180


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _cast(e: exp.Expr, to: str) -> exp.Expr:
    return exp.Cast(this=e, to=exp.DataType.build(to))


def _nonzero(e: exp.Expr) -> exp.Expr:
    """NULL for a zero divisor: every backend answers NULL, as SQLite does by itself."""
    return _fn("NULLIF", e, exp.convert(0))


class QueryDialect:
    """The SQLite-like defaults; each backend overrides what differs."""

    name: ClassVar[str]
    sqlglot: ClassVar[str]  # sqlglot's name for the dialect
    healpix: ClassVar[bool] = True  # positions indexed by the HEALPix column
    # Where a session's temporary tables (TAP_UPLOAD) are: named in full so no archive
    # table of the same name can stand in for one (None: a name no archive table can have).
    temporary_schema: ClassVar[str | None] = "temp"
    # Temporary tables are never auto-analysed; the planner needs their row count to
    # probe a catalogue's index once per uploaded row.
    analyse_temporary: ClassVar[bool] = False

    # -- rendering ---------------------------------------------------------------

    def preparer(self) -> SqlaDialect:
        """The SQLAlchemy dialect whose quoting created the archive's tables."""
        raise NotImplementedError

    def timestamp(self, when: datetime) -> exp.Expr:
        utc = when.astimezone(UTC)
        return exp.Literal.string(utc.replace(tzinfo=None).isoformat(" ", "microseconds"))

    def values_from(self) -> exp.From | None:
        """The FROM a SELECT of literals needs (Oracle's ``dual``), if any."""
        return None

    def temporary_table(self, name: str, columns: Sequence[ColumnDefinition]) -> Table:
        """A table only this session sees, for one query's upload (lower-cased columns)."""
        cols = [Column(c.name.lower(), SQL_TYPES[c.datatype]()) for c in columns]
        return Table(name, MetaData(), *cols, prefixes=["TEMPORARY"])

    def drop_temporary(self, conn: Connection, table: Table) -> None:
        table.drop(conn, checkfirst=True)

    def spatial(self, healpix_order: int, indexed: Mapping[str, Indexed]) -> Spatial:
        return HealpixSpatial(self.distance, healpix_order, indexed)

    def sphere_regions(self, conn: Connection) -> bool:
        """Whether ``observations`` holds s_region as pgsphere values too (migration 0006)."""
        return False

    # -- functions ADQL defines -------------------------------------------------

    def rounded(
        self, how: str, value: exp.Expr, digits: exp.Expr, *, single: bool, integer: bool
    ) -> exp.Expr:
        """ROUND or TRUNCATE (``how``) of ``value`` to ``digits`` decimals, exactly."""
        name = "ADQL_ROUND" if how == "ROUND" else "ADQL_TRUNCATE"
        return _fn(name, value, digits, exp.convert(int(single)))

    def mod(
        self, a: exp.Expr, b: exp.Expr, *, integer: bool, singles: tuple[bool, bool]
    ) -> exp.Expr:
        if integer:
            return exp.Mod(this=a, expression=b)  # exact on integers; NULL for 0
        return _fn("ADQL_MOD", a, b, exp.convert(int(singles[0])), exp.convert(int(singles[1])))

    def divide(self, a: exp.Expr, b: exp.Expr, *, integer: bool) -> exp.Expr:
        """SQL's division: integer / integer truncates; anything else in double."""
        if integer:
            return exp.Div(this=a, expression=b, typed=True)
        return exp.Div(this=_cast(a, "DOUBLE"), expression=b, typed=True)

    def sum_single(self, value: exp.Expr) -> exp.Expr:
        """SUM of a single-precision value, accumulated in double."""
        return exp.Sum(this=value)

    def log10(self, value: exp.Expr) -> exp.Expr | None:
        return None

    def rand(self) -> exp.Expr:
        return exp.paren(_fn("RANDOM") / exp.convert(2.0**64) + exp.convert(0.5))

    def cot(self, value: exp.Expr) -> exp.Expr | None:
        return exp.paren(exp.convert(1.0) / _fn("TAN", value))

    def scaled(self, value: exp.Expr, factor: float) -> exp.Expr | None:
        """DEGREES/RADIANS where the database lacks them (None: its own)."""
        return None

    def pi(self) -> exp.Expr | None:
        return None

    def distance(self, a: Point, b: Point) -> exp.Expr:
        """The angular distance in degrees between two points."""
        return _fn("ang_sep_deg", a.ra, a.dec, b.ra, b.dec)

    # -- running ---------------------------------------------------------------

    @contextmanager
    def read_only(self, conn: Connection, timeout_seconds: float) -> Iterator[None]:
        """One read-only transaction whose statements stop after ``timeout_seconds``."""
        raw = conn.connection.driver_connection
        deadline = time.monotonic() + timeout_seconds
        raw.set_progress_handler(  # type: ignore[union-attr]
            lambda: 1 if time.monotonic() > deadline else 0, _SQLITE_PROGRESS_STEPS
        )
        try:
            with conn.begin():
                # ADQL's LIKE is case-sensitive; SQLite's is not unless asked.
                conn.exec_driver_sql("PRAGMA case_sensitive_like = ON")
                conn.exec_driver_sql("PRAGMA query_only = ON")
                try:
                    yield
                finally:
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
                    conn.exec_driver_sql("PRAGMA case_sensitive_like = OFF")
        finally:
            raw.set_progress_handler(None, 0)  # type: ignore[union-attr]

    def is_timeout(self, exc: Exception) -> bool:
        return "interrupted" in str(exc)

    def limit_time(self, conn: Connection, seconds: float, spent: float) -> None:
        """``seconds`` left of the time limit after ``spent`` on reading and translating.

        SQLite's deadline was fixed when the transaction began: nothing to do.
        """

    def explain(self, exc: Exception) -> str:
        """A database error in ADQL's terms (its own words name tables and types it has)."""
        text = str(exc).lower()
        for fragment, message in _SQLITE_ERRORS:
            if fragment in text:
                return message
        return _GENERIC_ERROR


class SqliteQuery(QueryDialect):
    name = "sqlite"
    sqlglot = "sqlite"

    def preparer(self) -> SqlaDialect:
        from sqlalchemy.dialects.sqlite.base import SQLiteDialect

        return SQLiteDialect()


def _decimal_pg(value: exp.Expr) -> exp.Expr:
    """The shortest decimal of a real or double (its text form), as numeric."""
    return _cast(_cast(value, "TEXT"), "DECIMAL")


class PostgresQuery(QueryDialect):
    name = "postgresql"
    sqlglot = "postgres"
    healpix = False
    temporary_schema = "pg_temp"
    analyse_temporary = True

    def preparer(self) -> SqlaDialect:
        from sqlalchemy.dialects.postgresql.base import PGDialect

        return PGDialect()  # type: ignore[no-untyped-call]  # untyped upstream

    def timestamp(self, when: datetime) -> exp.Expr:
        return _cast(exp.Literal.string(when.astimezone(UTC).isoformat()), "TIMESTAMPTZ")

    def spatial(self, healpix_order: int, indexed: Mapping[str, Indexed]) -> Spatial:
        return Q3cSpatial(self.distance, healpix_order, indexed)

    def sphere_regions(self, conn: Connection) -> bool:
        # Decided once per database by its migrations: read once per URL.
        key = str(conn.engine.url)
        found = _SPHERE_REGIONS.get(key)
        if found is None:
            found = (
                conn.exec_driver_sql(
                    "SELECT 1 FROM information_schema.columns WHERE table_name = 'observations' "
                    "AND column_name = 's_region_spoly' AND table_schema = current_schema()"
                ).first()
                is not None
            )
            _SPHERE_REGIONS[key] = found
        return found

    def rounded(
        self, how: str, value: exp.Expr, digits: exp.Expr, *, single: bool, integer: bool
    ) -> exp.Expr:
        name = "ROUND" if how == "ROUND" else "TRUNC"
        places = _cast(digits, "INT")
        if integer:
            return _cast(_fn(name, _cast(value, "DECIMAL"), places), "BIGINT")
        return _cast(_fn(name, _decimal_pg(value), places), "DOUBLE")

    def mod(
        self, a: exp.Expr, b: exp.Expr, *, integer: bool, singles: tuple[bool, bool]
    ) -> exp.Expr:
        if integer:
            return _fn("MOD", a, _nonzero(b))
        return _cast(_fn("MOD", _decimal_pg(a), _nonzero(_decimal_pg(b))), "DOUBLE")

    def divide(self, a: exp.Expr, b: exp.Expr, *, integer: bool) -> exp.Expr:
        return super().divide(a, _nonzero(b), integer=integer)

    def sum_single(self, value: exp.Expr) -> exp.Expr:
        return exp.Sum(this=_cast(value, "DOUBLE"))

    def log10(self, value: exp.Expr) -> exp.Expr | None:
        return _fn("LOG", value)  # PostgreSQL's one-argument LOG is decimal

    def rand(self) -> exp.Expr:
        return exp.Rand()

    def cot(self, value: exp.Expr) -> exp.Expr | None:
        return None

    def distance(self, a: Point, b: Point) -> exp.Expr:
        return _fn("q3c_dist", a.ra, a.dec, b.ra, b.dec)

    @contextmanager
    def read_only(self, conn: Connection, timeout_seconds: float) -> Iterator[None]:
        ms = max(1, int(timeout_seconds * 1000))
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # One round trip for all three (no parameters: psycopg sends a simple query).
            # extra_float_digits = 1: floats as their shortest round-trip text, which
            # ROUND/TRUNCATE/MOD read.
            conn.exec_driver_sql(
                "SET TRANSACTION READ ONLY; "
                f"SET LOCAL statement_timeout = {ms}; SET LOCAL extra_float_digits = 1"
            )
            yield

    def is_timeout(self, exc: Exception) -> bool:
        text = str(exc)
        return "statement timeout" in text or "canceling statement" in text

    def limit_time(self, conn: Connection, seconds: float, spent: float) -> None:
        # A round trip only when reading and translating took a noticeable time.
        if spent < _NOTICEABLE_S:
            return
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")

    def explain(self, exc: Exception) -> str:
        state = str(getattr(exc, "sqlstate", "") or "")
        for prefix, message in _POSTGRES_ERRORS:
            if state.startswith(prefix):
                return message
        return _GENERIC_ERROR


class OracleQuery(QueryDialect):
    name = "oracle"
    sqlglot = "oracle"
    temporary_schema = None  # private temporary tables are the session's, unqualified

    def preparer(self) -> SqlaDialect:
        from sqlalchemy.dialects.oracle.base import OracleDialect

        return OracleDialect()

    def timestamp(self, when: datetime) -> exp.Expr:
        naive = when.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        fmt = exp.Literal.string("YYYY-MM-DD HH24:MI:SS.FF6")
        return _fn("TO_TIMESTAMP", exp.Literal.string(naive), fmt)

    def values_from(self) -> exp.From | None:
        return exp.From(this=exp.Table(this=exp.to_identifier("dual")))

    def temporary_table(self, name: str, columns: Sequence[ColumnDefinition]) -> Table:
        # A private temporary table (18c and later): its definition and rows are the
        # session's own, kept across the commit that ends the upload's insert. Its name
        # must carry the ORA$PTT_ prefix, which no other table may have.
        cols = [Column(c.name.lower(), ORACLE_TYPES[c.datatype]()) for c in columns]
        return Table(
            f"ora$ptt_{name}",
            MetaData(),
            *cols,
            prefixes=["PRIVATE TEMPORARY"],
            oracle_on_commit="PRESERVE DEFINITION",
        )

    def drop_temporary(self, conn: Connection, table: Table) -> None:
        table.drop(conn)  # never in ALL_TABLES, so no checkfirst; made just before

    def rounded(
        self, how: str, value: exp.Expr, digits: exp.Expr, *, single: bool, integer: bool
    ) -> exp.Expr:
        name = "ROUND" if how == "ROUND" else "TRUNC"
        if integer:
            return _fn(name, value, digits)
        # TO_CHAR of a BINARY_DOUBLE is its shortest decimal; NUMBER rounds it exactly.
        decimal = _fn("TO_NUMBER", _fn("TO_CHAR", value))
        return _cast(_fn(name, decimal, digits), "DOUBLE")

    def mod(
        self, a: exp.Expr, b: exp.Expr, *, integer: bool, singles: tuple[bool, bool]
    ) -> exp.Expr:
        if integer:
            return _fn("MOD", a, _nonzero(b))
        x, y = (_fn("TO_NUMBER", _fn("TO_CHAR", v)) for v in (a, b))
        return _cast(_fn("MOD", x, _nonzero(y)), "DOUBLE")

    def divide(self, a: exp.Expr, b: exp.Expr, *, integer: bool) -> exp.Expr:
        quotient = exp.Div(this=a, expression=_nonzero(b), typed=True)
        return _fn("TRUNC", quotient) if integer else quotient

    def rand(self) -> exp.Expr:
        return exp.Rand()

    def scaled(self, value: exp.Expr, factor: float) -> exp.Expr | None:
        return exp.paren(exp.paren(value) * exp.convert(factor))

    def pi(self) -> exp.Expr | None:
        return exp.convert(math.pi)

    def distance(self, a: Point, b: Point) -> exp.Expr:
        return _haversine(a, b)

    @contextmanager
    def read_only(self, conn: Connection, timeout_seconds: float) -> Iterator[None]:
        raw = conn.connection.driver_connection
        previous = raw.call_timeout  # type: ignore[union-attr]
        raw.call_timeout = max(1, int(timeout_seconds * 1000))  # type: ignore[union-attr]
        try:
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield
        finally:
            raw.call_timeout = previous  # type: ignore[union-attr]

    def is_timeout(self, exc: Exception) -> bool:
        text = str(exc)
        return "DPI-1067" in text or "ORA-03156" in text

    def limit_time(self, conn: Connection, seconds: float, spent: float) -> None:
        raw = conn.connection.driver_connection
        raw.call_timeout = max(1, int(seconds * 1000))  # type: ignore[union-attr]

    def explain(self, exc: Exception) -> str:
        text = str(exc)
        for code, message in _ORACLE_ERRORS:
            if code in text:
                return message
        return _GENERIC_ERROR


_GENERIC_ERROR = "the query could not be evaluated (the operators have the details)"
_TYPES = (
    "an operator or function was given values of a type it does not take "
    "(e.g. text compared with a number)"
)
_CONVERSION = "a value cannot be converted to the type asked for (check CASTs and literals)"
_RANGE = "a value is out of range for its type"
_DOMAIN = "a function was given a value outside its domain (e.g. LOG of a negative number)"
# SQLSTATE classes and codes (PostgreSQL appendix A), most specific first.
_POSTGRES_ERRORS = (
    ("22012", "division by zero"),
    ("2201E", _DOMAIN), ("2201F", _DOMAIN), ("22003", _RANGE), ("22008", _RANGE),
    ("22P02", _CONVERSION), ("22007", _CONVERSION), ("22", _CONVERSION),
    ("42883", _TYPES), ("42804", _TYPES), ("42P18", _TYPES), ("42725", _TYPES),
    ("54", "the query is too complex for the database"),
    ("53", "the database has not the resources for this query now; try a smaller one"),
    ("42501", "the query reads something that is not public"),
    ("42704", "geometry on s_region is not available here (the database lacks pgsphere)"),
)  # fmt: skip
_SQLITE_ERRORS = (
    ("integer overflow", _RANGE),
    ("misuse of aggregate", "an aggregate function is used where ADQL does not allow it"),
    ("wrong number of arguments", "a function was given the wrong number of arguments"),
    ("too many terms", "the query is too complex for the database"),
    ("expression tree is too large", "the query is too complex for the database"),
)
_ORACLE_ERRORS = (
    ("ORA-01476", "division by zero"),
    ("ORA-01722", _CONVERSION),
    ("ORA-01426", _RANGE),
    ("ORA-00932", _TYPES),
)


def _haversine(a: Point, b: Point) -> exp.Expr:
    """Degrees between two points, in plain SQL (the haversine: stable at small angles)."""

    def rad(e: exp.Expr) -> exp.Expr:
        return exp.Mul(this=exp.paren(e.copy()), expression=exp.convert(_RAD))

    def half_sin_sq(x: exp.Expr, y: exp.Expr) -> exp.Expr:
        diff = exp.paren(exp.Sub(this=rad(y), expression=rad(x)))
        sine = _fn("SIN", exp.Div(this=diff, expression=exp.convert(2)))
        return exp.Pow(this=sine, expression=exp.convert(2))

    cosines = exp.Mul(this=_fn("COS", rad(a.dec)), expression=_fn("COS", rad(b.dec)))
    h = exp.Add(
        this=half_sin_sq(a.dec, b.dec),
        expression=exp.Mul(this=cosines, expression=half_sin_sq(a.ra, b.ra)),
    )
    angle = _fn("ASIN", _fn("SQRT", _fn("LEAST", h, exp.convert(1.0))))
    return exp.Mul(this=angle, expression=exp.convert(2 / _RAD))


_SPHERE_REGIONS: dict[str, bool] = {}
_DIALECTS: dict[str, QueryDialect] = {
    d.name: d for d in (PostgresQuery(), SqliteQuery(), OracleQuery())
}


@cache
def query_dialect(name: str) -> QueryDialect:
    """The query dialect of a SQLAlchemy dialect name (postgresql, sqlite, oracle)."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"no ADQL rendering for the {name!r} database") from None
