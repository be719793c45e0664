"""A real PostgreSQL for tests: the server, a template with q3c and pgsphere, a database per test.

What belongs here: finding the test server, deciding skip-or-fail when it is missing, and making
and dropping databases. Fixtures themselves are registered in `tests/conftest.py` and call these.

The server is `FIRSTLIGHT_TEST_PG_URL` (default `postgresql://postgres@127.0.0.1:5432/postgres`,
an admin connection). `make pg-setup` (scripts/setup-postgres.sh) installs and repairs the
extensions. No server: the tests skip, except under CI=true, where a missing service fails.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 3
EXTENSIONS = ("q3c", "pg_sphere")
# Databases this module makes: firstlight_tpl_<pid>_<hex> (a session's template) and
# firstlight_test_<pid>_<hex> (one test's database).
_OURS = re.compile(r"^firstlight_(?:tpl|test)_(\d+)_[0-9a-f]+$")


def pg_server_url() -> str:
    """The admin URL of the test server, as libpq takes it (`postgresql://...`)."""
    url = os.environ.get("FIRSTLIGHT_TEST_PG_URL") or DEFAULT_PG_URL
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def pg_unreachable_reason(url: str | None = None) -> str | None:
    """None when the server answers within 3 s, else why not (for a skip or fail message)."""
    url = url or pg_server_url()
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {_safe(url)} is unreachable: {first_line}"
    return None


def pg_server_reachable(url: str | None = None) -> bool:
    return pg_unreachable_reason(url) is None


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test, or fail it under CI=true: a missing service in CI is a failure."""
    hint = " (start it, or run `make pg-setup`; set FIRSTLIGHT_TEST_PG_URL for another server)"
    if in_ci():
        pytest.fail(f"{reason}{hint} [CI=true: PostgreSQL tests may not skip]", pytrace=False)
    pytest.skip(f"{reason}{hint}")


def sqlalchemy_url(admin_url: str, database: str) -> str:
    """The SQLAlchemy URL (psycopg 3 driver) of `database` on the admin URL's server."""
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def _database_url(admin_url: str, database: str) -> str:
    url = make_url(admin_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _admin(admin_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(admin_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


def _new_name(kind: str) -> str:
    return f"firstlight_{kind}_{os.getpid()}_{secrets.token_hex(4)}"


def _drop(admin_url: str, database: str) -> None:
    with _admin(admin_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def drop_stale_databases(admin_url: str) -> list[str]:
    """Drop databases left by killed sessions of this host (their pid is gone); return names."""
    with _admin(admin_url) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
    dropped = []
    for name in names:
        match = _OURS.match(str(name))
        if match and not _pid_alive(int(match.group(1))):
            _drop(admin_url, str(name))
            dropped.append(str(name))
    return dropped


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def template_database(admin_url: str) -> Iterator[str]:
    """A template database with q3c and pg_sphere; yields its name and drops it at the end.

    A server without the extensions is treated like a missing server (skip, or fail in CI).
    """
    name = _new_name("tpl")
    with _admin(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        try:
            with psycopg.connect(
                _database_url(admin_url, name), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:
                for extension in EXTENSIONS:
                    conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(extension)))
        except psycopg.Error as exc:
            skip_or_fail(f"PostgreSQL at {_safe(admin_url)} cannot create q3c/pg_sphere: {exc}")
        yield name
    finally:
        _drop(admin_url, name)


@contextmanager
def database_from_template(admin_url: str, template: str) -> Iterator[str]:
    """A fresh database cloned from `template`; yields its SQLAlchemy URL, drops it after."""
    name = _new_name("test")
    with _admin(admin_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield sqlalchemy_url(admin_url, name)
    finally:
        _drop(admin_url, name)


@contextmanager
def database_refusing_pgsphere(admin_url: str) -> Iterator[str]:
    """A fresh database where ``CREATE EXTENSION pg_sphere`` fails (a type of its name is
    taken), as on a server whose pgsphere is missing or broken; yields its URL."""
    name = _new_name("test")
    with _admin(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(
            _database_url(admin_url, name), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        ) as conn:
            conn.execute("CREATE EXTENSION q3c")
            conn.execute("CREATE TYPE spoint AS (x integer)")
        yield sqlalchemy_url(admin_url, name)
    finally:
        _drop(admin_url, name)
