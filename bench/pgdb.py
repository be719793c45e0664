"""A fresh PostgreSQL database for each measured pipeline of the bench.

Belongs here: finding the server (FIRSTLIGHT_BENCH_PG_URL, else
FIRSTLIGHT_TEST_PG_URL, else the local default), telling whether it answers,
and creating and dropping databases named ``firstlight_bench_<pid>_<hex>``
with q3c installed. Nothing here knows what a pipeline does with them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 3


def admin_url() -> str:
    """The admin connection, as libpq takes it (an SQLAlchemy URL is accepted too)."""
    url = (
        os.environ.get("FIRSTLIGHT_BENCH_PG_URL")
        or os.environ.get("FIRSTLIGHT_TEST_PG_URL")
        or DEFAULT_URL
    )
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def unreachable_reason(url: str) -> str | None:
    """None when the server answers within a few seconds, else why not."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        lines = str(exc).strip().splitlines()
        return f"PostgreSQL at {safe(url)} is unreachable: {lines[0] if lines else exc!r}"
    return None


def safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def libpq_url(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def sqlalchemy_url(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql+psycopg", database=database)
    return parsed.render_as_string(hide_password=False)


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new database with q3c; yields its name and drops it (forcibly) afterwards."""
    name = f"firstlight_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with _admin(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(libpq_url(url, name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS q3c")
        yield name
    finally:
        with _admin(url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
