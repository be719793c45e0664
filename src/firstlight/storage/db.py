"""Connecting to the archive database: one engine factory for every backend.

SQLite (the embedded default) is set up for concurrent readers and one writer:
WAL journal, a busy timeout, and a real ``BEGIN`` at the start of every
transaction. Without the latter, Python's sqlite3 runs each SELECT in its own
implicit snapshot, and a reader could see two releases in one query session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from firstlight.domain.decimals import adql_mod, adql_round, adql_truncate
from firstlight.domain.regions import region_area, region_centroid, region_point, sql_relate
from firstlight.domain.sky import angular_separation_scalar

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "firstlight_write"


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with the archive's per-backend setup."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        # No server-side prepared statements: a generic plan ignores the literal
        # cone and turns a q3c index scan into a sequential one (~1000x slower).
        return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})
    return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    # file:...?mode=ro&uri=true: the query service's read-only connection.
    read_only = make_url(url).query.get("mode") == "ro"
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (see _on_begin).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not read_only:  # a read-only connection follows the writer's journal mode
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()
        register_functions(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers: a deferred BEGIN gives the transaction one snapshot.
        # Writers: IMMEDIATE takes the write lock up front, so a transaction
        # never fails half-way when it upgrades from reading to writing.
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def register_functions(dbapi_conn: Any) -> None:
    """SQLite's missing functions that queries use: distance, ADQL's exact ROUND/TRUNCATE/MOD."""
    dbapi_conn.create_function("ang_sep_deg", 4, angular_separation_scalar, deterministic=True)
    dbapi_conn.create_function("adql_round", 3, adql_round, deterministic=True)
    dbapi_conn.create_function("adql_truncate", 3, adql_truncate, deterministic=True)
    dbapi_conn.create_function("adql_mod", 4, adql_mod, deterministic=True)
    dbapi_conn.create_function("adql_region_point", 3, region_point, deterministic=True)
    dbapi_conn.create_function("adql_region_relate", 3, sql_relate, deterministic=True)
    dbapi_conn.create_function("adql_region_area", 1, region_area, deterministic=True)
    dbapi_conn.create_function("adql_region_centroid", 2, region_centroid, deterministic=True)


def for_writing(engine: Engine) -> Engine:
    """The same engine, its transactions taking the write lock at BEGIN."""
    return engine.execution_options(**{_WRITE_OPTION: True})
