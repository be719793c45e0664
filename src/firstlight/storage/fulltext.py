"""Full-text search over observations' target and instrument names.

SQLite: the FTS5 table (created by the migrations) filled per release at
the index step. PostgreSQL keeps a GIN index over the same text (maintained
by the database itself); Oracle has none yet (Oracle Text needs CTXSYS).
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, Connection, Integer, and_, func, literal_column
from sqlalchemy import text as sql_text

from firstlight.errors import InvalidInputError
from firstlight.storage.schema import observations

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


def words_of(text: str) -> list[str]:
    """The words of a user's search text; nothing of it is ever query syntax."""
    words = re.findall(r"\w+", text.lower())
    if not words:
        raise InvalidInputError(f"search text {text!r} has no words")
    return words


def sqlite_match(release_key: str, text: str) -> ColumnElement[bool]:
    """Observations of the release whose target or instrument has every word (prefixes)."""
    query = " ".join(f'"{w}"*' for w in words_of(text))
    ids = sql_text(
        f"SELECT observation FROM {_TABLE} WHERE {_TABLE} MATCH :q AND release_key = :rk"  # noqa: S608  (constant table name)
    ).bindparams(q=query, rk=release_key)
    return observations.c.id.in_(ids.columns(observation=Integer))


def postgres_match(text: str) -> ColumnElement[bool]:
    """The GIN index's own expression (see the migration), so the index serves it."""
    document = func.to_tsvector(
        literal_column("'simple'"),
        func.coalesce(observations.c.target_name, "")
        + " "
        + func.coalesce(observations.c.instrument_name, ""),
    )
    query = func.to_tsquery(
        literal_column("'simple'"), " & ".join(f"{w}:*" for w in words_of(text))
    )
    return document.op("@@")(query)


def like_match(text: str) -> ColumnElement[bool]:
    """No text index (Oracle): every word somewhere in the target or instrument name."""
    hay = func.lower(
        func.coalesce(observations.c.target_name, "")
        + " "
        + func.coalesce(observations.c.instrument_name, "")
    )
    return and_(*(hay.contains(w, autoescape=True) for w in words_of(text)))
