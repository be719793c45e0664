"""What every handler of the query service reaches: wired once from ``Settings``.

The archive (for its release store and backend), the read-only engine queries
run on, the public and embargo stores files are served from, and the clock:
"now" decides what is public, and tests move it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from firstlight.config import Settings
from firstlight.domain.manifest import now_utc
from firstlight.storage.archive import Archive, open_archive
from firstlight.storage.objectstore import LocalObjectStore, ObjectStore, public_store_for

Clock = Callable[[], datetime]


@dataclass
class ServiceState:
    settings: Settings
    archive: Archive
    query_engine: Engine
    public_store: ObjectStore
    embargo_store: ObjectStore
    public_store_prefix: str  # how the archive's access_url values start for public files
    clock: Clock = now_utc

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        if self.query_engine is not self.archive.engine:
            self.query_engine.dispose()
        self.archive.dispose()


def open_state(settings: Settings, clock: Clock | None = None) -> ServiceState:
    settings.ensure_dirs()
    archive = open_archive(settings)
    public_store = public_store_for(settings)
    return ServiceState(
        settings=settings,
        archive=archive,
        query_engine=_query_engine(settings),
        public_store=public_store,
        embargo_store=LocalObjectStore(settings.embargo_dir),
        public_store_prefix=public_store.url_prefix,
        clock=clock or now_utc,
    )


def _query_engine(settings: Settings) -> Engine:
    """The read-only engine queries run on (PostgreSQL: the reader role; SQLite: mode=ro)."""
    from firstlight.storage.reader import open_query_engine

    return open_query_engine(settings)
