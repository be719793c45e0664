"""One forkserver per worker, with every library a flow run needs already imported.

A worker starts it once (``start_forkserver``) from its main thread; each flow
run is then a child forked from it (tens of milliseconds, no imports), and the
validation sandbox's children come from the same forkserver
(``attach_to_forkserver``), so no delivery pays for importing Prefect, Great
Expectations, astropy or scikit-learn, nor for starting a sandbox.

Every process here dies with the one that started it (``die_with_parent``):
worker -> forkserver -> flow runs and sandbox children, so a worker killed with
SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver
from typing import Any

from firstlight.checks.isolation import die_with_parent, preload_modules

# Imported once in the forkserver: see firstlight.execution.preload.
PRELOAD = ["firstlight.execution.preload"]

__all__ = ["PRELOAD", "attach_to_forkserver", "die_with_parent", "start_forkserver"]


def start_forkserver() -> str:
    """Start the worker's forkserver (call from the main thread: a child's
    parent-death signal follows the thread that forked it); its address."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload_modules(*PRELOAD))
    forkserver.ensure_running()
    server: Any = forkserver._forkserver
    address = server._forkserver_address
    if not isinstance(address, str):
        raise RuntimeError("the forkserver did not report its address")
    return address


def attach_to_forkserver(address: str) -> None:
    """In a child of the forkserver: start further children from it too.

    The standard library would start a second forkserver (a fresh interpreter
    importing everything again); a forked child already holds the server's
    "alive" descriptor, so naming the address is all it lacks.
    """
    server: Any = forkserver._forkserver
    server._forkserver_address = address
    server.ensure_running = _already_running
    setattr(forkserver, "ensure_running", _already_running)  # the module's alias  # noqa: B010


def _already_running() -> None:
    return None
