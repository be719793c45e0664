"""Every statement the Oracle path issues, compiled for Oracle and checked: no server needed.

The Oracle path is ``storage/backends/oracle.py``, the backend-neutral SQLAlchemy Core of
``storage/`` and ``query/``, and the Alembic migration. Its statements come from:

1. A delivery's life run through the library steps on SQLite with an ``OracleBackend``
   (its table types, array-DML loader and cone SQL; only its PL/SQL statistics call is
   recorded instead of run): two releases, a repeated arrival, a rollback, cone searches,
   a rejected delivery quarantined twice, a staged release quarantined (so discarded) and
   the ledger's reads. A ``before_execute`` listener records each ClauseElement with its
   parameters. Driver SQL (strings) on this run is SQLite's own session set-up and
   reflection; a test fails if anything else arrives that way, unseen by these checks.
2. The migration, rendered by Alembic in offline mode (``upgrade head --sql``) for Oracle.
3. A catalogue with every data type and awkward column names, through ``OracleBackend``
   on a mock Oracle engine: table DDL, index DDL, the array-DML insert, DBMS_STATS.

Each statement is compiled for two Oracle versions: 19c, the oldest one supported (no SQL
booleans; SQLAlchemy stores JSON in BLOB), and 23ai, which Oracle Database Free runs.

Decisions the checks encode (docs/oracle.md): identifiers up to 128 bytes (Oracle 12.2 and
later; catalogue names are up to 63 characters by design, so the old 30 cannot hold);
every word Oracle documents as reserved is quoted where it names something; no boolean
expression in a select list before 23ai (boolean columns are SMALLINT there and compare
as ``= 1``); no LOB (CLOB, BLOB, JSON) in a key, an index, a comparison or an ORDER BY;
``FETCH FIRST`` rather than LIMIT; named binds only.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import numpy as np
import pytest
from alembic import command
from sqlalchemy import (
    Boolean,
    ColumnClause,
    Connection,
    Dialect,
    Engine,
    Index,
    Label,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    create_mock_engine,
    event,
)
from sqlalchemy.engine.interfaces import Compiled
from sqlalchemy.exc import CompileError
from sqlalchemy.schema import CreateIndex, CreateTable, DropTable
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.elements import (
    BinaryExpression,
    ClauseElement,
    RollbackToSavepointClause,
    SavepointClause,
    TextClause,
)
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Select

from firstlight.config import Settings
from firstlight.domain.findings import Finding, Report
from firstlight.domain.ledger import DeliveryState
from firstlight.domain.manifest import Column as ColumnDef
from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.query.cone import ConeResult, cone_search, cone_search_observations
from firstlight.services.context import close_contexts, context_for
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.verification import admit_delivery
from firstlight.storage.archive import Archive
from firstlight.storage.backends.oracle import GATHER_STATS, OracleBackend
from firstlight.storage.catalogues import HEALPIX_COLUMN
from firstlight.storage.db import make_engine
from firstlight.storage.ledger import Ledger
from firstlight.storage.migrations import alembic_config
from firstlight.storage.releases import ReleaseStore
from firstlight.storage.schema import metadata
from tests.deliveries import duplicate_source_ids, generated
from tests.steps import release, release_or_quarantine, stage_release

ORACLE_URL = "oracle+oracledb://"
ORACLE_19C = (19, 0)
ORACLE_23AI = (23, 0)
VERSIONS = [pytest.param(ORACLE_19C, id="19c"), pytest.param(ORACLE_23AI, id="23ai")]

MAX_IDENTIFIER_BYTES = 128  # Oracle 12.2 and later
MAX_VARCHAR2 = 4000  # bytes with MAX_STRING_SIZE=STANDARD; the declared length may not exceed it
MAX_INDEX_KEY_BYTES = 6398  # 8 KB blocks (ORA-01450)
LOB_TYPES = {"CLOB", "NCLOB", "BLOB", "JSON"}

# Oracle SQL reserved words as the SQL Language Reference lists them ("Oracle SQL Reserved
# Words"): none may be a nonquoted identifier. Written out here, independently of the code.
_RESERVED_WORDS = """
    ACCESS ADD ALL ALTER AND ANY AS ASC AUDIT BETWEEN BY CHAR CHECK CLUSTER COLUMN
    COLUMN_VALUE COMMENT COMPRESS CONNECT CREATE CURRENT DATE DECIMAL DEFAULT DELETE DESC
    DISTINCT DROP ELSE EXCLUSIVE EXISTS FILE FLOAT FOR FROM GRANT GROUP HAVING IDENTIFIED
    IMMEDIATE IN INCREMENT INDEX INITIAL INSERT INTEGER INTERSECT INTO IS LEVEL LIKE LOCK
    LONG MAXEXTENTS MINUS MLSLABEL MODE MODIFY NESTED_TABLE_ID NOAUDIT NOCOMPRESS NOT
    NOWAIT NULL NUMBER OF OFFLINE ON ONLINE OPTION OR ORDER PCTFREE PRIOR PRIVILEGES
    PUBLIC RAW RENAME RESOURCE REVOKE ROW ROWID ROWNUM ROWS SELECT SESSION SET SHARE SIZE
    SMALLINT START SUCCESSFUL SYNONYM SYSDATE TABLE THEN TO TRIGGER UID UNION UNIQUE UPDATE
    USER VALIDATE VALUES VARCHAR VARCHAR2 VIEW WHENEVER WHERE WITH
"""
ORACLE_RESERVED = frozenset(_RESERVED_WORDS.split())

# SQL functions the Oracle path may call: each exists in Oracle with this meaning.
ORACLE_FUNCTIONS = {"asin", "cos", "count", "coalesce", "least", "greatest", "power", "sin"}
ORACLE_FUNCTIONS |= {"sqrt", "max", "min", "sum", "abs", "lower", "upper"}
AGGREGATES = {"count", "max", "min", "sum"}  # one argument; min/max of two is SQLite's
COMPARISONS = {
    operators.eq,
    operators.ne,
    operators.lt,
    operators.le,
    operators.gt,
    operators.ge,
    operators.in_op,
    operators.not_in_op,
    operators.like_op,
    operators.between_op,
}
# Text that is SQLite's or PostgreSQL's, never Oracle's.
FOREIGN_SYNTAX = re.compile(
    r"\bang_sep_deg\b|\bifnull\b|\bglob\b|\bautoincrement\b|\bpragma\b|\bvirtual table\b"
    r"|\bon conflict\b|\bq3c_\w+|\bilike\b|::|\bIS (?:1|0|true|false)\b|\bserial\b",
    re.IGNORECASE,
)
# What SQLite itself sends as driver SQL on the run: transaction starts (storage.db) and the
# dialect's reflection (DROP TABLE ... checkfirst). Nothing of the shared code.
SQLITE_SESSION_SQL = re.compile(r"^(BEGIN|BEGIN IMMEDIATE|PRAGMA main\.table_info\(.*\))$")
BINDABLE = (type(None), str, int, float, bool, datetime, bytes, dict, list, tuple)

CONES = [(150.0, 2.0, 0.05), (150.3, 1.8, 0.2), (149.5, 2.5, 0.4), (150.0, 2.0, 1.2)]


# --- Oracle dialects without a server ------------------------------------------------------


def as_version(dialect: Dialect, version: tuple[int, int]) -> Dialect:
    """What ``OracleDialect.initialize`` derives from a server's version, without a server."""
    dialect.server_version_info = version
    dialect._supports_oracle_json = version >= (21,)  # type: ignore[attr-defined]
    dialect.supports_native_boolean = version >= (23,)
    dialect.supports_identity_columns = version >= (12,)
    dialect._supports_offset_fetch = version >= (12,)  # type: ignore[attr-defined]
    dialect.max_identifier_length = MAX_IDENTIFIER_BYTES
    return dialect


def mock_oracle(version: tuple[int, int], sink: list[tuple[Any, Any]]) -> Connection:
    """A stand-in Oracle connection that records what it is asked to execute (DDL and DML)."""
    conn = create_mock_engine(ORACLE_URL, lambda stmt, params=None: sink.append((stmt, params)))
    as_version(conn.dialect, version)
    return cast(Connection, conn)


def oracle_dialect(version: tuple[int, int]) -> Dialect:
    return mock_oracle(version, []).dialect


# --- recording what the shared code executes ----------------------------------------------


@dataclass(frozen=True)
class Execution:
    statement: ClauseElement | str
    params: tuple[dict[str, Any], ...]

    @property
    def kind(self) -> str:
        if isinstance(self.statement, str):
            return "driver_sql"
        return str(self.statement.__visit_name__)


@dataclass
class Recording:
    """Core statements as executed (``before_execute``), and driver SQL as sent to the cursor.

    ``exec_driver_sql`` bypasses ``before_execute``; ``before_cursor_execute`` sees it, with
    no compiled statement behind it.
    """

    executions: list[Execution] = field(default_factory=list)
    driver_sql: list[str] = field(default_factory=list)

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_execute", self.before_execute)
        event.listen(engine, "before_cursor_execute", self.before_cursor_execute)

    def detach(self, engine: Engine) -> None:
        event.remove(engine, "before_execute", self.before_execute)
        event.remove(engine, "before_cursor_execute", self.before_cursor_execute)

    def before_execute(
        self, conn: Any, clauseelement: Any, multiparams: Any, params: Any, options: Any
    ) -> None:
        rows = [dict(p) for p in multiparams] or ([dict(params)] if params else [])
        self.executions.append(Execution(clauseelement, tuple(rows)))

    def before_cursor_execute(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is None or context.compiled is None:
            self.driver_sql.append(statement)

    def core(self) -> list[Execution]:
        """Everything but the one release of a savepoint (see its test)."""
        return [e for e in self.executions if e.kind != "release_savepoint"]

    def of_kind(self, *kinds: str) -> list[Execution]:
        return [e for e in self.executions if e.kind in kinds]


class OracleOnSQLite(OracleBackend):
    """The Oracle backend whose statements run on SQLite, but for the PL/SQL it records."""

    def __init__(self, healpix_order: int) -> None:
        super().__init__(healpix_order)
        self.plsql: list[tuple[Any, Any]] = []

    def gather_statistics(self, conn: Any, table: Table) -> None:
        super().gather_statistics(mock_oracle(ORACLE_23AI, self.plsql), table)


def _sql_math(dbapi_conn: Any, _record: Any) -> None:
    """The functions of the Oracle cone SQL, for SQLite (whose builds may lack them)."""
    functions: list[tuple[str, int, Callable[..., float]]] = [
        ("least", 2, min),
        ("power", 2, math.pow),
        ("sin", 1, math.sin),
        ("cos", 1, math.cos),
        ("asin", 1, math.asin),
        ("sqrt", 1, math.sqrt),
    ]
    for name, nargs, fn in functions:
        dbapi_conn.create_function(name, nargs, fn, deterministic=True)


@dataclass
class Life:
    """What the run saw: the recording, and the answers to check it ran for real."""

    recording: Recording
    plsql: list[tuple[Any, Any]]
    cones: list[tuple[ConeResult, ConeResult]]  # (Oracle backend, SQLite backend)
    by_name: ConeResult
    observations: tuple[ConeResult, ConeResult]  # (Oracle backend, SQLite backend)
    rollback: tuple[str, str]
    repeated: str
    states: dict[str, DeliveryState]


def _oracle_archive(settings: Settings) -> tuple[Archive, Engine]:
    engine = make_engine(settings.archive_url)
    event.listen(engine, "connect", _sql_math)
    backend = OracleOnSQLite(settings.healpix_order)
    ledger = Ledger(engine, claim_lease_seconds=settings.claim_lease_seconds)
    archive = Archive(engine, backend, ledger, ReleaseStore(engine, backend))
    return archive, engine


def _live(settings: Settings) -> Life:
    ctx = context_for(settings)  # SQLite with its own backend: migrated, and the reference
    archive, engine = _oracle_archive(settings)
    octx = dataclasses.replace(ctx, archive=archive)
    recording = Recording()
    recording.attach(engine)
    root = settings.data_dir / "producer"
    try:
        first = generated(root, version="1", rows=1500)
        release(octx, first)
        release(octx, generated(root, version="2", rows=1800))
        repeated = admit_delivery(octx, first).decision.value  # already released: skipped
        rollback = archive.releases.rollback("demo")
        cones = []
        for ra, dec, radius in CONES:
            kw: dict[str, Any] = {"mission": "demo", "ra": ra, "dec": dec, "radius": radius}
            cones.append((cone_search(archive, **kw), cone_search(ctx.archive, **kw)))
        by_name = cone_search(
            archive, mission="demo", ra=150, dec=2, radius=0.3, release="demo_dr1_v2", limit=5
        )
        obs: dict[str, Any] = {"mission": "demo", "ra": 150.0, "dec": 2.0, "radius": 2.0}
        observations = (
            cone_search_observations(archive, **obs),
            cone_search_observations(ctx.archive, **obs),
        )

        bad = generated(root, version="3")
        duplicate_source_ids(bad)
        rejected = release_or_quarantine(octx, bad)
        release_or_quarantine(octx, bad)  # a second arrival: the admission updates its row
        staged = stage_release(octx, generated(root, version="4"))
        held = Report("promote", [Finding(check="operator", reason="held by an operator")])
        quarantine_delivery(octx, staged, held)  # discards the staged release: DROP, DELETE

        entries = archive.ledger.entries("demo")
        archive.ledger.latest_at(str(bad.resolve()))
        archive.ledger.stages(rejected.delivery_pk)
        archive.ledger.findings(rejected.delivery_pk)
        archive.releases.list_releases("demo")
        archive.releases.products("demo_dr1_v1")
        archive.releases.tables("demo_dr1_v1")
    finally:
        recording.detach(engine)
        engine.dispose()
    return Life(
        recording=recording,
        plsql=archive.backend.plsql,  # type: ignore[attr-defined]
        cones=cones,
        by_name=by_name,
        observations=observations,
        rollback=rollback,
        repeated=repeated,
        states={e.delivery_id: e.state for e in entries},
    )


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Life]:
    """One run for the module (module-scoped, so not the per-test settings/ctx fixtures)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIRSTLIGHT_DATA_DIR", str(tmp_path_factory.mktemp("oracle") / "var"))
        mp.setenv("FIRSTLIGHT_INGEST_CHUNK_ROWS", "700")
        try:
            yield _live(Settings())
        finally:
            close_contexts()


# --- compiling and checking ---------------------------------------------------------------


def compile_for(execution: Execution, dialect: Dialect) -> str:
    """Compile as SQLAlchemy does when executing: with the executed keys, for executemany."""
    stmt = execution.statement
    assert isinstance(stmt, ClauseElement)
    compiled: Compiled
    if isinstance(stmt, Insert | Update) and execution.params:
        compiled = stmt.compile(
            dialect=dialect,
            column_keys=list(execution.params[0]),
            for_executemany=len(execution.params) > 1,
        )
    else:
        compiled = stmt.compile(dialect=dialect)
    return str(compiled)


def without_literals(sql: str) -> str:
    """The SQL with string literals blanked (identifiers in double quotes stay)."""
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def text_problems(sql: str) -> list[str]:
    """What in Oracle SQL text Oracle rejects."""
    problems = []
    bare = without_literals(sql)
    unquoted = re.sub(r'"[^"]*"', '""', bare)
    if re.search(r"\bLIMIT\b", unquoted, re.IGNORECASE):
        problems.append("LIMIT (Oracle uses FETCH FIRST n ROWS ONLY)")
    if re.search(r"\bOFFSET\b(?!\s+\S+\s+ROWS)", unquoted, re.IGNORECASE):
        problems.append("OFFSET without ROWS")
    if "?" in unquoted:
        problems.append("a ? placeholder (Oracle binds by name)")
    if (found := FOREIGN_SYNTAX.search(unquoted)) is not None:
        problems.append(f"SQLite/PostgreSQL syntax {found.group(0)!r}")
    if re.search(r"\bRETURNING\b", unquoted) and not re.search(r"\bINTO\s+:", unquoted):
        problems.append("RETURNING without INTO (Oracle returns into out-binds)")
    for name in re.findall(r'"([^"]*)"', bare):
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:
            problems.append(f"identifier longer than {MAX_IDENTIFIER_BYTES} bytes: {name!r}")
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_$#]*", unquoted):
        if len(word.encode()) > MAX_IDENTIFIER_BYTES:
            problems.append(f"identifier longer than {MAX_IDENTIFIER_BYTES} bytes: {word!r}")
    for bind in re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", unquoted):
        if bind.upper() in ORACLE_RESERVED:
            problems.append(f"bind name {bind!r} is reserved in Oracle and not quoted")
    return problems


def element_names(stmt: ClauseElement) -> set[str]:
    """Names of tables, columns, labels, indexes and constraints a statement renders."""
    names: set[str] = set()
    if isinstance(stmt, CreateTable | DropTable):
        table = stmt.element
        names |= {table.name, *(c.name for c in table.columns)}
        names |= {str(c.name) for c in table.constraints if c.name}
        return names
    if isinstance(stmt, CreateIndex):
        index = stmt.element
        assert index.table is not None
        names |= {str(index.name), index.table.name, *(c.name for c in index.columns)}
        return names
    for el in visitors.iterate(stmt):
        if isinstance(el, Table | ColumnClause | Label) and isinstance(el.name, str):
            names.add(el.name)
    return {n for n in names if not n.startswith("%(")}  # anonymous labels


def name_problems(stmt: ClauseElement, dialect: Dialect) -> list[str]:
    preparer = dialect.identifier_preparer
    problems = []
    for name in sorted(element_names(stmt)):
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:
            problems.append(f"name longer than {MAX_IDENTIFIER_BYTES} bytes: {name!r}")
        if name.upper() in ORACLE_RESERVED and not preparer._requires_quotes(name):
            problems.append(f"{name!r} is reserved in Oracle and would not be quoted")
    return problems


def sql_type(column: Any, dialect: Dialect) -> str:
    return str(column.type.compile(dialect=dialect))


def is_lob(column: Any, dialect: Dialect) -> bool:
    return isinstance(column, ColumnClause) and sql_type(column, dialect).split("(")[0] in LOB_TYPES


def lob_problems(stmt: ClauseElement, dialect: Dialect) -> list[str]:
    """LOBs where Oracle cannot use them: comparisons, ORDER BY, GROUP BY, DISTINCT, keys."""
    problems = []
    clauses: list[tuple[str, Any]] = []
    if isinstance(stmt, Select):
        clauses.append(("WHERE", stmt.whereclause))
        clauses += [("HAVING", c) for c in stmt._having_criteria]
        clauses += [("ORDER BY", c) for c in stmt._order_by_clauses]
        clauses += [("GROUP BY", c) for c in stmt._group_by_clauses]
        clauses += [("ON", f.onclause) for f in stmt.get_final_froms() if hasattr(f, "onclause")]
        if stmt._distinct:
            clauses += [("DISTINCT", c) for c in stmt.selected_columns]
    elif isinstance(stmt, Update | Delete):
        clauses.append(("WHERE", stmt.whereclause))
    for where, clause in clauses:
        if clause is None:
            continue
        for el in visitors.iterate(clause):
            if where in {"WHERE", "HAVING", "ON"}:
                if isinstance(el, BinaryExpression) and el.operator in COMPARISONS:
                    for side in (el.left, el.right):
                        if is_lob(side, dialect):
                            problems.append(f"{where} compares LOB column {side.name}")
            elif is_lob(el, dialect):
                problems.append(f"{where} on LOB column {getattr(el, 'name', el)}")
    keyed: list[tuple[str, list[Any]]] = []
    if isinstance(stmt, CreateTable):
        for constraint in stmt.element.constraints:
            if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint):
                keyed.append((str(constraint.name or "primary key"), list(constraint.columns)))
    if isinstance(stmt, CreateIndex):
        keyed.append((str(stmt.element.name), list(stmt.element.columns)))
    for key, columns in keyed:
        for column in columns:
            if is_lob(column, dialect):
                problems.append(f"LOB column {column.name} in key or index {key}")
        size = sum(max_bytes(sql_type(c, dialect)) for c in columns)
        if size > MAX_INDEX_KEY_BYTES:
            problems.append(f"key {key} may be {size} bytes (> {MAX_INDEX_KEY_BYTES})")
    return problems


def max_bytes(type_sql: str) -> int:
    """Most bytes a value of this Oracle type takes in an index key (AL32UTF8)."""
    if (m := re.match(r"N?VARCHAR2\((\d+)( CHAR)?\)", type_sql)) is not None:
        return int(m.group(1)) * (4 if m.group(2) else 1)
    if type_sql.startswith("TIMESTAMP"):
        return 13
    if type_sql.startswith("BINARY_"):
        return 8
    return 22  # NUMBER and its synonyms


def function_problems(stmt: ClauseElement) -> list[str]:
    problems = []
    for el in visitors.iterate(stmt):
        if isinstance(el, FunctionElement):
            name = str(getattr(el, "name", type(el).__name__)).lower()
            if name not in ORACLE_FUNCTIONS:
                problems.append(f"function {name}() is not one the Oracle path may call")
            elif name in AGGREGATES and len(el.clauses.clauses) > 1:
                problems.append(f"{name}() of {len(el.clauses.clauses)} arguments")
    return problems


def statement_problems(execution: Execution, dialect: Dialect) -> list[str]:
    stmt = execution.statement
    assert isinstance(stmt, ClauseElement)
    try:
        sql = compile_for(execution, dialect)
    except CompileError as exc:
        return [f"does not compile: {exc}"]
    found = text_problems(sql)
    found += name_problems(stmt, dialect)
    found += lob_problems(stmt, dialect)
    found += function_problems(stmt)
    return [f"{p}\n    in: {' '.join(sql.split())[:300]}" for p in found]


def report(problems: list[str]) -> str:
    unique = list(dict.fromkeys(problems))
    return f"{len(unique)} problem(s):\n" + "\n".join(unique[:40])


# --- the delivery's life ------------------------------------------------------------------


def test_the_run_did_what_it_should(life: Life) -> None:
    assert life.rollback == ("demo_dr1_v2", "demo_dr1_v1")
    assert life.repeated == "skip"
    assert life.states == {
        "demo-v1": DeliveryState.RELEASED,
        "demo-v2": DeliveryState.RELEASED,
        "demo-v3": DeliveryState.QUARANTINED,
        "demo-v4": DeliveryState.QUARANTINED,
    }
    assert all(oracle.release_key == "demo_dr1_v1" for oracle, _ in life.cones)
    assert (life.by_name.release_key, len(life.by_name.rows)) == ("demo_dr1_v2", 5)
    assert life.by_name.overflow
    assert len(life.observations[0].rows) == 4


def test_the_capture_saw_every_kind_of_statement(life: Life) -> None:
    """Not vacuous: the checks below ran over a whole life's statements."""
    kinds = Counter(e.kind for e in life.recording.executions)
    minimum = {
        "create_table": 3,  # a catalogue per staged release
        "create_index": 6,  # its unique key and HEALPix index
        "drop_table": 1,  # the discarded staging release
        "insert": 40,
        "update": 10,
        "select": 60,
        "delete": 4,
        "savepoint": 4,  # admissions of new deliveries
    }
    short = {k: (kinds[k], n) for k, n in minimum.items() if kinds[k] < n}
    assert not short, f"too few statements (seen, wanted): {short}; all: {dict(kinds)}"
    selects = [e.statement for e in life.recording.of_kind("select")]
    assert any(s._for_update_arg is not None for s in selects)  # type: ignore[union-attr]
    assert any(s._limit_clause is not None for s in selects)  # type: ignore[union-attr]
    assert any(len(e.params) > 1 for e in life.recording.of_kind("insert"))  # array DML


def test_driver_sql_is_only_sqlites_own(life: Life) -> None:
    """Raw SQL is invisible to the Oracle checks: only SQLite's session set-up may be raw."""
    raw = life.recording.driver_sql
    assert "BEGIN IMMEDIATE" in raw, "expected SQLite's BEGIN: is the recording attached?"
    foreign = {s for s in raw if not SQLITE_SESSION_SQL.match(s)}
    assert not foreign, f"raw SQL from the shared path, unchecked for Oracle: {foreign}"
    assert not life.recording.of_kind("driver_sql", "textclause")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_statement_compiles_and_is_valid_oracle(life: Life, version: tuple[int, int]) -> None:
    dialect = oracle_dialect(version)
    problems = [p for e in life.recording.core() for p in statement_problems(e, dialect)]
    assert not problems, report(problems)


@pytest.mark.parametrize("version", VERSIONS)
def test_dml_renders_with_its_values(life: Life, version: tuple[int, int]) -> None:
    """Bound values rendered as Oracle literals, where SQLAlchemy has a literal form."""
    dialect = oracle_dialect(version)
    rendered, unrenderable, problems = 0, 0, []
    for e in life.recording.of_kind("insert", "update", "delete", "select"):
        stmt = e.statement
        if isinstance(stmt, Insert | Update) and e.params:
            stmt = stmt.values(e.params[0])
        try:
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[union-attr]
        except CompileError as exc:
            # JSON documents have no literal form: they are only ever bound.
            assert "No literal value renderer" in str(exc) and "JSON" in str(exc), exc
            unrenderable += 1
            continue
        rendered += 1
        problems += text_problems(sql)
        if re.search(r":\w", without_literals(sql)) and " INTO :" not in sql:
            problems.append(f"a bind left after rendering: {sql[:200]}")
    assert not problems, report(problems)
    assert rendered > 100 and unrenderable < rendered


def test_no_boolean_expression_is_selected_before_23ai(life: Life) -> None:
    """Oracle before 23ai has no SQL booleans: `SELECT x IS NOT NULL AS flag` is ORA-00923."""
    found = set()
    for e in life.recording.of_kind("select"):
        stmt = e.statement
        assert isinstance(stmt, Select)
        for col in stmt.selected_columns:
            expr = col.element if isinstance(col, Label) else col
            if isinstance(expr.type, Boolean) and not isinstance(expr, ColumnClause):
                found.add(f"{expr} AS {getattr(col, 'name', '?')}")
    assert not found, f"boolean expressions selected (ORA-00923 before 23ai): {sorted(found)}"


def test_select_for_update_is_plain(life: Life) -> None:
    """Oracle refuses FOR UPDATE with FETCH FIRST, DISTINCT or GROUP BY (ORA-02014)."""
    locking = [
        e.statement
        for e in life.recording.of_kind("select")
        if e.statement._for_update_arg is not None  # type: ignore[union-attr]
    ]
    assert locking
    for stmt in locking:
        assert isinstance(stmt, Select)
        sql = str(stmt.compile(dialect=oracle_dialect(ORACLE_19C)))
        assert sql.rstrip().endswith("FOR UPDATE"), sql
        assert stmt._limit_clause is None and not stmt._distinct and not stmt._group_by_clauses


def test_values_are_ones_oracle_can_bind(life: Life) -> None:
    """Plain Python values only (no numpy integers), and no '' where NULL is refused.

    Oracle stores an empty string as NULL: '' in a NOT NULL column is ORA-01400.
    """
    dialect = oracle_dialect(ORACLE_19C)
    problems = []
    for e in life.recording.of_kind("insert", "update"):
        stmt = e.statement
        assert isinstance(stmt, Insert | Update)
        not_null = {c.key for c in stmt.table.columns if not c.nullable}
        compiled = stmt.compile(
            dialect=dialect, column_keys=list(e.params[0]) if e.params else None
        )
        for row in e.params or ({},):
            for key, value in compiled.construct_params(row).items():
                if not isinstance(value, BINDABLE) or isinstance(value, np.generic):
                    problems.append(f"{stmt.table}.{key}: {type(value).__name__} value")
                if value == "" and key in not_null:
                    problems.append(f"{stmt.table}.{key}: '' into a NOT NULL column")
    assert not problems, report(problems)


def test_savepoints_are_oracles(life: Life) -> None:
    """The admission's savepoint: set and rolled back as Oracle spells it, never released.

    SQLite releases it; Oracle has no RELEASE SAVEPOINT and its dialect sends nothing.
    """
    assert life.recording.of_kind("savepoint") and life.recording.of_kind("release_savepoint")
    dialect = oracle_dialect(ORACLE_19C)
    name = "sa_savepoint_1"
    assert str(SavepointClause(name).compile(dialect=dialect)) == f"SAVEPOINT {name}"
    rollback = RollbackToSavepointClause(name).compile(dialect=dialect)
    assert str(rollback) == f"ROLLBACK TO SAVEPOINT {name}"
    sink: list[tuple[Any, Any]] = []
    conn = mock_oracle(ORACLE_19C, sink)
    conn.dialect.do_release_savepoint(conn, name)
    assert sink == []


def test_cone_sql_of_the_oracle_backend_finds_what_sqlite_finds(life: Life) -> None:
    """The HEALPix prefilter and haversine in SQL agree with SQLite's own distance function."""
    for oracle, sqlite in life.cones:
        ids = [r["source_id"] for r in oracle.as_dicts()]
        assert ids and ids == [r["source_id"] for r in sqlite.as_dicts()]
        for a, b in zip(oracle.as_dicts(), sqlite.as_dicts(), strict=True):
            assert a["distance"] == pytest.approx(b["distance"], abs=1e-9)
    oracle_obs, sqlite_obs = life.observations
    assert [r[0] for r in oracle_obs.rows] == [r[0] for r in sqlite_obs.rows]
    cone_sql = [
        compile_for(e, oracle_dialect(ORACLE_19C))
        for e in life.recording.of_kind("select")
        if "least(" in str(e.statement).lower()
    ]
    assert len(cone_sql) >= len(CONES) + 2
    for sql in cone_sql:
        assert "FETCH FIRST" in sql and "ORDER BY asin(sqrt(least(" in sql, sql
        assert re.search(r'(?:"_hpx"|healpix) >= :\w+ AND \S+ <= :\w+', sql), sql


def test_dbms_stats_names_each_table_as_oracle_stores_it(life: Life) -> None:
    tables = [e.statement.element for e in life.recording.of_kind("create_table")]  # type: ignore[union-attr]
    assert len(life.plsql) == len(tables)
    for (stmt, params), table in zip(life.plsql, tables, strict=True):
        assert isinstance(stmt, TextClause) and str(stmt) == GATHER_STATS
        assert params == {"t": table.name.upper()}
        assert ":t" in str(stmt.compile(dialect=oracle_dialect(ORACLE_19C)))


def test_times_are_naive_utc_on_oracle() -> None:
    """python-oracledb drops a datetime's zone when binding: Oracle gets naive UTC, exactly."""
    column_type = metadata.tables["releases"].c.created_at.type
    dialect = oracle_dialect(ORACLE_19C)
    assert str(column_type.compile(dialect=dialect)) == "TIMESTAMP"
    local = datetime(2026, 11, 25, 13, 30, tzinfo=timezone(timedelta(hours=2)))
    bound = column_type.bind_processor(dialect)
    value = bound(local) if bound else column_type.process_bind_param(local, dialect)  # type: ignore[attr-defined]
    assert value == datetime(2026, 11, 25, 11, 30, tzinfo=UTC).replace(tzinfo=None)
    assert value.tzinfo is None
    back = column_type.process_result_value(value, dialect)  # type: ignore[attr-defined]
    assert back == local and back.tzinfo == UTC


# --- the migration, offline ----------------------------------------------------------------


def migration_sql(version: tuple[int, int]) -> str:
    """`alembic upgrade head --sql` for Oracle, through the project's own env.py."""
    out = io.StringIO()
    cfg = alembic_config()
    cfg.set_main_option("sqlalchemy.url", ORACLE_URL)
    cfg.output_buffer = out
    # env.py migrates the connection it is given; in --sql mode Alembic only takes its dialect.
    cfg.attributes["connection"] = mock_oracle(version, [])
    command.upgrade(cfg, "head", sql=True)
    return out.getvalue()


@dataclass
class DdlTable:
    columns: dict[str, str]  # name (as written) -> type and options
    keys: list[tuple[str, list[str]]]  # (what, columns): primary key, unique constraints


def parse_ddl(sql: str) -> tuple[dict[str, DdlTable], list[tuple[str, str, list[str]]]]:
    tables: dict[str, DdlTable] = {}
    for name, body in re.findall(r"CREATE TABLE (\S+) \((.*?)\n\)", sql, re.DOTALL):
        table = DdlTable({}, [])
        for line in (part.strip().rstrip(",") for part in body.strip().split("\n")):
            key = re.match(r"(?:CONSTRAINT (\S+) )?(PRIMARY KEY|UNIQUE) \(([^)]*)\)", line)
            if key is not None:
                what = key.group(1) or f"{name} primary key"
                table.keys.append((what, [c.strip() for c in key.group(3).split(",")]))
            elif not line.startswith(("FOREIGN KEY", "CONSTRAINT", "CHECK")):
                column, _, spec = line.partition(" ")
                table.columns[column] = spec
        tables[name] = table
    # Later migrations add columns: ALTER TABLE t ADD column spec
    for name, column, spec in re.findall(r"ALTER TABLE (\S+) ADD (\S+) ([^\n]+)", sql):
        tables[name].columns[column] = spec.strip()
    indexes = [
        (index, table, [c.strip() for c in cols.split(",")])
        for index, table, cols in re.findall(
            r"CREATE (?:UNIQUE )?INDEX (\S+) ON (\S+) \(([^)]*)\)", sql
        )
    ]
    return tables, indexes


def ddl_type(spec: str) -> str:
    """The type of a column definition: `VARCHAR2(64 CHAR) NOT NULL` -> `VARCHAR2(64 CHAR)`."""
    found = re.match(r"[A-Z_0-9]+(?:\([^)]*\))?", spec)
    assert found is not None, spec
    return found.group(0)


def ddl_problems(sql: str) -> list[str]:
    """Oracle DDL as text: lengths, reserved names, LOBs in keys, key sizes."""
    tables, indexes = parse_ddl(sql)
    problems = text_problems(sql)
    for m in re.finditer(r"VARCHAR2\((\d+)", sql):
        if int(m.group(1)) > MAX_VARCHAR2:
            problems.append(f"VARCHAR2({m.group(1)}) is longer than {MAX_VARCHAR2}")
    keyed: list[tuple[str, str, list[str]]] = [
        (what, tname, cols) for tname, t in tables.items() for what, cols in t.keys
    ]
    keyed += indexes
    for what, tname, cols in keyed:
        types = [ddl_type(tables[tname].columns[c]) for c in cols]
        lobs = [c for c, t in zip(cols, types, strict=True) if t.split("(")[0] in LOB_TYPES]
        if lobs:
            problems.append(f"{what}: LOB column(s) {lobs} in a key or index")
        size = sum(max_bytes(t) for t in types)
        if size > MAX_INDEX_KEY_BYTES:
            problems.append(f"{what}: key may be {size} bytes (> {MAX_INDEX_KEY_BYTES})")
    names = [*tables, *(i for i, _, _ in indexes)]
    names += [c for t in tables.values() for c in t.columns]
    for name in names:
        if not name.startswith('"') and name.upper() in ORACLE_RESERVED:
            problems.append(f"{name} is reserved in Oracle and not quoted")
    return problems


@pytest.mark.parametrize("version", VERSIONS)
def test_migration_is_valid_oracle_ddl(version: tuple[int, int]) -> None:
    sql = migration_sql(version)
    tables, indexes = parse_ddl(sql)
    assert set(tables) == {t.name for t in metadata.sorted_tables} | {"firstlight_alembic_version"}
    assert not ddl_problems(sql), report(ddl_problems(sql))
    # Nothing of SQLite's full text or PostgreSQL's q3c; the version row is written.
    assert "INSERT INTO firstlight_alembic_version (version_num) VALUES ('0001')" in sql

    json = "JSON" if version >= (21,) else "BLOB"
    for table in metadata.sorted_tables:
        ddl = tables[table.name].columns
        for column in table.columns:
            spec = ddl[oracle_dialect(version).identifier_preparer.quote(column.name)]
            if column.identity is not None:
                assert spec.startswith("INTEGER GENERATED BY DEFAULT AS IDENTITY"), column
            if column.name.endswith(("_at", "release_date")):
                assert re.fullmatch(r"TIMESTAMP( NOT NULL)?", spec), (column, spec)  # naive UTC
            if column.name in {"report", "sample_rows", "definition"}:
                assert ddl_type(spec) == json, (column, spec)
    assert '"file" VARCHAR2(1024 CHAR)' in sql and '"size" NUMBER(19) NOT NULL' in sql
    assert ("ix_observations_release_healpix", "observations", ["release_key", "healpix"]) in (
        indexes
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_migration_matches_the_schema_on_oracle(version: tuple[int, int]) -> None:
    """The migration's tables are the metadata's, column by column, type by type."""
    dialect = oracle_dialect(version)
    from_migration, _ = parse_ddl(migration_sql(version))
    from_metadata, _ = parse_ddl(
        "\n".join(str(CreateTable(t).compile(dialect=dialect)) for t in metadata.sorted_tables)
    )
    for name, table in from_metadata.items():
        assert from_migration[name].columns == table.columns, name
        assert sorted(from_migration[name].keys) == sorted(table.keys), name


# --- a catalogue with every type, through OracleBackend on a mock Oracle engine -------------

LONG = "a" + "b" * 62  # the longest column name a manifest allows

EVERY_TYPE = TableDefinition(
    name="every_type",
    columns=[
        ColumnDef(name="Designation", datatype=DataType.STRING),
        ColumnDef(name="RA", datatype=DataType.FLOAT64),
        ColumnDef(name="Dec", datatype=DataType.FLOAT64),
        ColumnDef(name="flux", datatype=DataType.FLOAT32),
        ColumnDef(name="n_obs", datatype=DataType.INT16),
        ColumnDef(name="flags", datatype=DataType.INT32),
        ColumnDef(name="source_id", datatype=DataType.INT64),
        ColumnDef(name="variable", datatype=DataType.BOOLEAN),
        ColumnDef(name="comment", datatype=DataType.STRING),
        ColumnDef(name="file", datatype=DataType.STRING),
        ColumnDef(name="rows", datatype=DataType.INT32),
        ColumnDef(name="level", datatype=DataType.INT16),
        ColumnDef(name="size", datatype=DataType.INT64),
        ColumnDef(name="session", datatype=DataType.BOOLEAN),
        ColumnDef(name=LONG, datatype=DataType.FLOAT32),
    ],
    primary_key="Designation",
    ra="RA",
    dec="Dec",
)


def _chunk() -> dict[str, np.ndarray]:
    masked = np.ma.masked_array([1.5, 2.5, 0.0], mask=[False, False, True])
    return {
        "Designation": np.array(["J1", "J2", "J3"]),
        "RA": np.array([150.0, 150.1, np.nan]),
        "Dec": np.array([2.0, 2.1, 2.2]),
        "flux": np.array([1.0, np.nan, 3.0], dtype=np.float32),
        "n_obs": np.array([1, 2, 3], dtype=np.int16),
        "flags": np.array([0, 1, 2], dtype=np.int32),
        "source_id": np.array([10, 11, 12], dtype=np.int64),
        "variable": np.array([True, False, True]),
        "comment": np.array(["", "x", "y"]),
        "file": np.array(["a.fits", "b.fits", "c.fits"]),
        "rows": np.array([1, 2, 3], dtype=np.int32),
        "level": np.array([1, 2, 3], dtype=np.int16),
        "size": np.array([1, 2, 3], dtype=np.int64),
        "session": np.array([False, True, False]),
        LONG: masked.astype(np.float32),
    }


@dataclass
class CatalogueRun:
    table: Table
    sink: list[tuple[Any, Any]]
    dialect: Dialect

    def sql(self, kind: type[ClauseElement]) -> list[str]:
        return [str(s.compile(dialect=self.dialect)) for s, _ in self.sink if isinstance(s, kind)]


@pytest.fixture(params=VERSIONS)
def catalogue(request: pytest.FixtureRequest) -> CatalogueRun:
    """Create, load, index and drop a catalogue as OracleBackend does, on a mock Oracle."""
    sink: list[tuple[Any, Any]] = []
    conn = mock_oracle(request.param, sink)
    backend = OracleBackend(healpix_order=16)
    release_key = "mission_with_a_long_name_" + "x" * 70 + "_v1"
    schema, name = backend.catalogue_location(release_key, EVERY_TYPE.name)
    table = backend.catalogue_table(EVERY_TYPE, schema, name)
    table.create(conn)
    loaded = backend.loader().load(conn, table, EVERY_TYPE, iter([_chunk(), _chunk()]))
    assert loaded == 6
    backend.build_catalogue_indexes(conn, table, EVERY_TYPE)
    backend.drop_release(conn, release_key, [table])
    return CatalogueRun(table, sink, conn.dialect)


def test_catalogue_statements_are_valid_oracle(catalogue: CatalogueRun) -> None:
    kinds = [type(s).__name__ for s, _ in catalogue.sink]
    assert kinds == [
        *["CreateTable", "Insert", "Insert", "CreateIndex", "CreateIndex"],
        *["TextClause", "DropTable"],
    ]
    problems = []
    for stmt, params in catalogue.sink:
        if isinstance(stmt, TextClause):
            continue
        rows = tuple(params) if isinstance(params, list) else ()
        problems += statement_problems(Execution(stmt, rows), catalogue.dialect)
    [create] = catalogue.sql(CreateTable)
    problems += ddl_problems(create + "\n" + "\n".join(catalogue.sql(CreateIndex)))
    assert not problems, report(problems)


def test_catalogue_columns_have_oracle_types(catalogue: CatalogueRun) -> None:
    [create] = catalogue.sql(CreateTable)
    boolean = "BOOLEAN" if catalogue.dialect.supports_native_boolean else "SMALLINT"
    for expected in [
        "designation VARCHAR2(1000 CHAR)",  # the key: indexable at 4 bytes a character
        "ra BINARY_DOUBLE",
        "dec BINARY_DOUBLE",
        "flux BINARY_FLOAT",
        "n_obs SMALLINT",
        "flags INTEGER",
        "source_id NUMBER(19)",
        f"variable {boolean}",
        '"comment" VARCHAR2(4000 CHAR)',
        '"file" VARCHAR2(4000 CHAR)',
        '"rows" INTEGER',
        '"level" SMALLINT',
        '"size" NUMBER(19)',
        f'"session" {boolean}',
        f"{LONG} BINARY_FLOAT",
        f'"{HEALPIX_COLUMN}" NUMBER(19)',
    ]:
        assert f"\t{expected}" in create, (expected, create)
    assert "CLOB" not in create and "FLOAT(" not in create
    assert len(catalogue.table.name) <= 63 and catalogue.table.name.startswith("cat_")


def test_catalogue_indexes_and_statistics(catalogue: CatalogueRun) -> None:
    name = catalogue.table.name
    unique, healpix = catalogue.sql(CreateIndex)
    assert unique.startswith(f"CREATE UNIQUE INDEX ux_{name}"[:60]), unique
    assert unique.endswith(f"ON {name} (designation)"), unique
    assert re.fullmatch(rf'CREATE INDEX ix_\w+_hp ON {name} \("{HEALPIX_COLUMN}"\)', healpix)
    [(stats, params)] = [(s, p) for s, p in catalogue.sink if isinstance(s, TextClause)]
    assert str(stats) == GATHER_STATS
    assert params == {"t": name.upper()}  # unquoted when created, so upper case in USER_TABLES
    assert catalogue.sql(DropTable) == [f"\nDROP TABLE {name}"]


def test_array_dml_sends_each_chunk_as_one_executemany(catalogue: CatalogueRun) -> None:
    inserts = [(s, p) for s, p in catalogue.sink if isinstance(s, Insert)]
    assert [len(p) for _, p in inserts] == [3, 3]
    stmt, rows = inserts[0]
    sql = compile_for(Execution(stmt, tuple(rows)), catalogue.dialect)
    assert "RETURNING" not in sql  # plain array DML: nothing to fetch back per row
    columns = [c.name for c in catalogue.table.columns]
    assert [list(r) for r in rows] == [columns] * 3
    assert rows[2]["ra"] is None and rows[1]["flux"] is None and rows[2][LONG] is None
    assert rows[0][HEALPIX_COLUMN] > 0 and rows[2][HEALPIX_COLUMN] is None
    assert all(type(v) in {str, int, float, bool, type(None)} for r in rows for v in r.values())
    flag = catalogue.table.c.variable.type.bind_processor(catalogue.dialect)
    native = catalogue.dialect.supports_native_boolean
    assert flag is None or flag(True) == (True if native else 1)


def test_catalogue_tables_run_through_index_names_within_limits() -> None:
    """Index names derive from table names: even the longest stays an Oracle identifier."""
    backend = OracleBackend(healpix_order=16)
    _, name = backend.catalogue_location("r" * 100, "t" * 32)
    table = backend.catalogue_table(EVERY_TYPE, None, name)
    sink: list[tuple[Any, Any]] = []
    backend.build_catalogue_indexes(mock_oracle(ORACLE_19C, sink), table, EVERY_TYPE)
    names = [str(s.element.name) for s, _ in sink if isinstance(s, CreateIndex)]
    assert len(names) == 2 and len(set(names)) == 2
    assert all(len(n) <= 63 for n in names)
    assert all(isinstance(s.element, Index) for s, _ in sink if isinstance(s, CreateIndex))


def test_text_search_is_plain_like_on_oracle() -> None:
    """Oracle has no text index here: the search is LIKE per word, escaped, on both versions."""
    from sqlalchemy import select
    from sqlalchemy.dialects import oracle

    from firstlight.storage.backends.oracle import OracleBackend
    from firstlight.storage.schema import observations

    predicate = OracleBackend(16).text_match("demo_dr1_v1", "demo 50%_off")
    sql = str(
        select(observations.c.id)
        .where(predicate)
        .compile(dialect=oracle.dialect(), compile_kwargs={"literal_binds": True})
    )
    assert sql.count(" LIKE ") == 3 and "ESCAPE '/'" in sql
    assert "/_off" in sql  # the user's _ is escaped, not a LIKE wildcard
    assert "MATCH" not in sql and "to_tsvector" not in sql


# --- TAP_UPLOAD: a private temporary table and the crossmatch that reads it ---------------


@pytest.mark.parametrize("version", VERSIONS)
def test_upload_statements_and_crossmatch_are_valid_oracle(version: tuple[int, int]) -> None:
    """An uploaded table as a private temporary table (18c+: the session's own, kept across
    the insert's commit), its rows as array DML, the drop, and an ADQL crossmatch joining it
    with a catalogue (compiled only: no Oracle server here)."""
    import sqlglot

    from firstlight.query.adql import translate_adql
    from firstlight.query.dialects import query_dialect
    from firstlight.query.service.upload import UploadedTable
    from tests.unit.test_adql import TABLES

    dialect = oracle_dialect(version)
    query = query_dialect("oracle")
    columns = (
        ColumnDef(name="ID", datatype=DataType.INT64),
        ColumnDef(name="ra", datatype=DataType.FLOAT64),
        ColumnDef(name="dec", datatype=DataType.FLOAT64),
        ColumnDef(name="comment", datatype=DataType.STRING),
    )
    rows = ({"id": 1, "ra": 150.0, "dec": 2.0, "comment": "a"},)
    upload = UploadedTable("Mine", columns, ((1, 150.0, 2.0, "a"),))
    table = query.temporary_table("fl_upload_mine", columns)

    create = str(CreateTable(table).compile(dialect=dialect))
    assert create.startswith("\nCREATE PRIVATE TEMPORARY TABLE ora$ptt_fl_upload_mine (")
    assert create.rstrip().endswith("ON COMMIT PRESERVE DEFINITION")
    assert '"comment" VARCHAR2(4000 CHAR)' in create and "ra BINARY_DOUBLE" in create
    # Unquoted, so stored upper case: the ORA$PTT_ prefix Oracle requires of the name.
    assert dialect.denormalize_name(table.name).startswith("ORA$PTT_")  # type: ignore[attr-defined]
    problems = ddl_problems(create)
    problems += statement_problems(Execution(table.insert(), rows), dialect)
    problems += statement_problems(Execution(DropTable(table), ()), dialect)
    assert not problems, report(problems)

    public = [*TABLES["sqlite"], upload.public_table(query)]
    sql = translate_adql(
        "SELECT u.id, s.source_id FROM TAP_UPLOAD.mine AS u JOIN demo.sources AS s "
        "ON 1 = CONTAINS(POINT(s.ra, s.dec), CIRCLE(u.ra, u.dec, 0.001))",
        public,
        query,
        maxrec=100,
    ).sql
    sqlglot.parse_one(sql, read="oracle")
    assert "FROM ora$ptt_fl_upload_mine u" in sql or "FROM ora$ptt_fl_upload_mine AS u" in sql
    assert "FETCH FIRST 101 ROWS ONLY" in sql and " LIMIT " not in sql
    assert "ANG_SEP_DEG" not in sql.upper() and "ASIN(SQRT(" in sql.upper()  # haversine
