"""Alembic's environment: our metadata, our version table, our connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from firstlight.config import Settings
from firstlight.storage.db import make_engine
from firstlight.storage.migrations import VERSION_TABLE, include_object
from firstlight.storage.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
elif context.is_offline_mode():
    # `alembic upgrade head --sql`: render the SQL for the URL's dialect, connect to nothing.
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url") or Settings().archive_url,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.config.get_main_option("sqlalchemy.url") or Settings().archive_url
    with make_engine(url).begin() as conn:
        run(conn)
