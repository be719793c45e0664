"""The query service's read-only access: the reader role and its engine.

PostgreSQL: a LOGIN role (``Settings.query_role``, no password: the server's
authentication decides). The database itself is the embargo guard for it:

- row-level security (migration 0004) on the archive tables queries read
  (``READABLE_TABLES``): the role sees promoted releases only, and products,
  observations and catalogue entries of those whose release date has passed
  (the server's ``now()``: a date lifts by itself, no rebuild);
- SELECT on a release's catalogue table (and on the mission's view of it,
  a ``security_invoker`` view) only while that catalogue is public: granted
  when promoted if its date has passed, else when the embargo schedule runs
  after its date (``sync_reader_grants``), and revoked if it is not public;
- USAGE on the schemas of promoted releases and of missions; nothing on the
  ledger (deliveries, stage runs, findings, the gate's tables).

Grants are made when the query engine opens (``open_query_engine``, which
creates the role), by each promotion (``PostgresBackend.publish_current``)
and by the embargo schedule, if the role exists. All idempotent, and one
transaction at a time (``lock_grants``).

SQLite: the archive file opened with ``mode=ro``. Oracle: the archive URL
unless ``query_database_url`` names a read-only account.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, Engine, func, or_, select, text
from sqlalchemy.engine import make_url

from firstlight.config import Settings
from firstlight.storage.db import make_engine
from firstlight.storage.schema import (
    current_releases,
    observations,
    products,
    release_tables,
    releases,
)

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# "gran": serialises grant changes. PostgreSQL updates an object's ACL without a lock,
# so two transactions granting on the same table or schema at once (promotions of two
# missions, the embargo schedule) fail with "tuple concurrently updated".
_GRANTS_LOCK_KEY = 0x6772616E
READABLE_TABLES = tuple(
    t.name for t in (releases, current_releases, release_tables, observations, products)
)


def query_url(settings: Settings) -> str:
    """The URL the query service connects with (read-only)."""
    if settings.query_database_url:
        return settings.query_database_url
    url = make_url(settings.archive_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ""
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    if backend == "postgresql":
        reader = url.set(username=settings.query_role, password=None)
        return reader.render_as_string(hide_password=False)
    return settings.archive_url


def open_query_engine(settings: Settings) -> Engine:
    """The read-only engine of the query service (on PostgreSQL, its grants made first)."""
    url = query_url(settings)
    if make_url(settings.archive_url).get_backend_name() == "postgresql":
        owner = make_engine(settings.archive_url)
        try:
            with owner.begin() as conn:
                grant_public_access(conn, settings.query_role)
        finally:
            owner.dispose()
    return make_engine(url)


def _ident(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def ensure_role(conn: Connection, role: str) -> None:
    """Create the LOGIN role unless it exists (two creators at once: one wins, no error)."""
    if not _ROLE.match(role):
        raise ValueError(f"role name {role!r} must match {_ROLE.pattern}")
    name = _ident(conn, role)
    conn.exec_driver_sql(
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {name} LOGIN; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


def grant_schemas(conn: Connection, role: str, schemas: list[str]) -> None:
    """USAGE on each schema (what is in it is granted table by table)."""
    grantee = _ident(conn, role)
    for schema in dict.fromkeys(schemas):
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {_ident(conn, schema)} TO {grantee}")


def role_exists(conn: Connection, role: str) -> bool:
    found = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    return found.first() is not None


def lock_grants(conn: Connection) -> None:
    """Wait for any other transaction changing grants; held until this one ends.

    Take it before anything else another grant change might wait for (a promotion
    takes it before replacing its mission's views), so the wait cannot deadlock.
    """
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_GRANTS_LOCK_KEY})")


def grant_public_access(conn: Connection, role: str, *, create: bool = True) -> None:
    """Grant the role exactly what is public now; revoke catalogues that are not.

    ``create``: make the role first (needs CREATEROLE: the query service's
    start does it); else, as at promotion, grant only if the role exists, so
    an archive whose owner may not create roles still promotes.
    """
    lock_grants(conn)
    if create:
        ensure_role(conn, role)
    elif not role_exists(conn, role):
        return
    grantee = _ident(conn, role)
    tables = ", ".join(_ident(conn, t) for t in READABLE_TABLES)
    conn.exec_driver_sql(f"GRANT SELECT ON {tables} TO {grantee}")
    promoted = conn.execute(
        select(releases.c.release_key).where(releases.c.promoted_at.is_not(None))
    ).scalars()
    currents = {
        str(key): str(mission)
        for key, mission in conn.execute(
            select(current_releases.c.release_key, current_releases.c.mission)
        )
    }
    grant_schemas(conn, role, [*map(str, promoted), *map(str, currents.values())])
    public = or_(
        release_tables.c.release_date.is_(None), release_tables.c.release_date <= func.now()
    )
    catalogues = conn.execute(
        select(
            release_tables.c.release_key,
            release_tables.c.table_name,
            release_tables.c.physical_schema,
            release_tables.c.physical_name,
            public.label("public"),
        )
        .join(releases, releases.c.release_key == release_tables.c.release_key)
        .where(releases.c.promoted_at.is_not(None))
    ).all()
    for cat in catalogues:
        targets = [
            f"{_ident(conn, cat.physical_schema or 'public')}.{_ident(conn, cat.physical_name)}"
        ]
        mission = currents.get(cat.release_key)
        if mission is not None:
            targets.append(f"{_ident(conn, mission)}.{_ident(conn, cat.table_name)}")
        for target in targets:
            if cat.public:
                conn.exec_driver_sql(f"GRANT SELECT ON {target} TO {grantee}")
            else:
                conn.exec_driver_sql(f"REVOKE ALL ON {target} FROM {grantee}")


def sync_reader_grants(engine: Engine, role: str) -> None:
    """On PostgreSQL, bring the reader role's grants to what is public now (else nothing)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        grant_public_access(conn, role, create=False)
