"""Preloaded first in every forkserver (and imported nowhere else): the starting
process's main script, imported once in the server.

A child started from a forkserver runs its parent's main script again before its
target (``multiprocessing.spawn.prepare``), unless the server already holds it.
Python 3.11's forkserver means to preload it (a ``"__main__"`` preload) but passes
the path under the wrong key, so every child re-ran ``firstlight``'s CLI script,
importing the CLI anew: 0.1 to 0.3 s per child, sixteen children per delivery.
``checks.isolation.preload_modules`` names this module and hands it the path.
"""

from __future__ import annotations

import os
from multiprocessing import process, spawn

from firstlight.checks.isolation import MAIN_PATH_ENV


def _import_main() -> None:
    path = os.environ.get(MAIN_PATH_ENV)
    if not path:
        return
    current = process.current_process()
    current._inheriting = True  # type: ignore[attr-defined]  # as multiprocessing does
    try:
        spawn.import_main_path(path)
    except Exception:  # noqa: S110  (children then run it themselves, as before)
        pass
    finally:
        del current._inheriting  # type: ignore[attr-defined]


_import_main()
