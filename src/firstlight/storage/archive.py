"""The archive database as one object: its engine and its stores.

``open_archive`` is where the backend is chosen from the settings. The
embedded default is SQLite; PostgreSQL and Oracle join with the database
issue (Alembic migrations replace ``create_all`` then).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from firstlight.config import Settings
from firstlight.storage import fulltext
from firstlight.storage.db import for_writing, make_engine
from firstlight.storage.ledger import Ledger
from firstlight.storage.releases import ReleaseStore
from firstlight.storage.schema import metadata

SUPPORTED_BACKENDS = ("sqlite",)


@dataclass(frozen=True)
class Archive:
    engine: Engine
    ledger: Ledger
    releases: ReleaseStore

    def dispose(self) -> None:
        self.engine.dispose()


def open_archive(settings: Settings) -> Archive:
    url = settings.archive_url
    backend = make_url(url).get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(
            f"FIRSTLIGHT_DATABASE_URL: backend {backend!r} is not supported yet "
            f"(supported: {', '.join(SUPPORTED_BACKENDS)})"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    with for_writing(engine).begin() as conn:
        metadata.create_all(conn)
        fulltext.create(conn)
    return Archive(engine=engine, ledger=Ledger(engine), releases=ReleaseStore(engine))
