"""What every step needs, wired in one place from one ``Settings``.

Steps receive ids and paths (a ``Ticket``), never sessions or clients; each
process builds its context once per settings and reuses it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from firstlight.config import Settings
from firstlight.storage.archive import Archive, open_archive
from firstlight.storage.objectstore import LocalObjectStore, ObjectStore, public_store_for

_lock = threading.Lock()
_contexts: dict[str, Context] = {}


@dataclass(frozen=True)
class Context:
    settings: Settings
    archive: Archive
    public_store: ObjectStore
    embargo_store: ObjectStore


def context_for(settings: Settings | None = None) -> Context:
    """The context for these settings (read from the environment when omitted)."""
    settings = settings or Settings()
    key = settings.model_dump_json()
    with _lock:
        ctx = _contexts.get(key)
        if ctx is None:
            settings.ensure_dirs()
            ctx = Context(
                settings=settings,
                archive=open_archive(settings),
                public_store=public_store_for(settings),
                embargo_store=LocalObjectStore(settings.embargo_dir),
            )
            _contexts[key] = ctx
        return ctx


def close_contexts() -> None:
    """Dispose every engine (tests and the CLI call this before exiting)."""
    with _lock:
        for ctx in _contexts.values():
            ctx.archive.dispose()
        _contexts.clear()
