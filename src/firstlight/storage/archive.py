"""The archive database as one object: its engine, its backend and its stores.

``open_archive`` is where the backend is chosen, from the settings' database
URL, and where the schema is brought to the latest migration.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from firstlight.config import Settings
from firstlight.storage.backends import Backend, backend_for
from firstlight.storage.db import for_writing, make_engine
from firstlight.storage.ledger import Ledger
from firstlight.storage.migrations import upgrade
from firstlight.storage.releases import ReleaseStore


@dataclass(frozen=True)
class Archive:
    engine: Engine
    backend: Backend
    ledger: Ledger
    releases: ReleaseStore

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One writing transaction for several stores (``*_in`` methods take it)."""
        with for_writing(self.engine).begin() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def open_archive(settings: Settings) -> Archive:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.archive_url)
    backend = backend_for(engine, settings)
    upgrade(engine)
    return Archive(
        engine=engine,
        backend=backend,
        ledger=Ledger(engine, claim_lease_seconds=settings.claim_lease_seconds),
        releases=ReleaseStore(engine, backend),
    )
