"""Full-text search over observations' target and instrument names.

SQLite: the FTS5 table (created by the migrations) filled per release at
the index step. PostgreSQL keeps a GIN index over the same text (maintained
by the database itself); Oracle has none yet (Oracle Text needs CTXSYS).
"""

from __future__ import annotations

import re

from sqlalchemy import Connection

_TABLE = "observations_fts"


def index_release(conn: Connection, release_key: str) -> int:
    remove_release(conn, release_key)
    result = conn.exec_driver_sql(
        f"INSERT INTO {_TABLE} (target_name, instrument_name, release_key, observation) "  # noqa: S608  (constant table name)
        "SELECT coalesce(target_name, ''), coalesce(instrument_name, ''), release_key, id "
        "FROM observations WHERE release_key = ?",
        (release_key,),
    )
    return int(result.rowcount)


def remove_release(conn: Connection, release_key: str) -> None:
    conn.exec_driver_sql(f"DELETE FROM {_TABLE} WHERE release_key = ?", (release_key,))  # noqa: S608


def match_expression(text: str) -> str:
    """Quote each word so user text is never FTS5 syntax; words are ANDed."""
    words = re.findall(r"\w+", text)
    if not words:
        raise ValueError("search text has no words")
    return " ".join(f'"{w}"*' for w in words)


def search_observation_ids(conn: Connection, release_key: str, text: str) -> list[int]:
    rows = conn.exec_driver_sql(
        f"SELECT observation FROM {_TABLE} WHERE {_TABLE} MATCH ? AND release_key = ? "  # noqa: S608
        "ORDER BY rank",
        (match_expression(text), release_key),
    )
    return [int(r[0]) for r in rows]
