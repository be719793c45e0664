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

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
from multiprocessing import forkserver

# Imported once in the forkserver: see firstlight.execution.preload.
PRELOAD = ["firstlight.execution.preload"]
_PR_SET_PDEATHSIG = 1


def start_forkserver() -> str:
    """Start the worker's forkserver (call from the main thread: a child's
    parent-death signal follows the thread that forked it); its address."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    address = forkserver._forkserver._forkserver_address  # type: ignore[attr-defined]
    if not isinstance(address, str):
        raise RuntimeError("the forkserver did not report its address")
    return address


def attach_to_forkserver(address: str) -> None:
    """In a child of the forkserver: start further children from it too.

    The standard library would start a second forkserver (a fresh interpreter
    importing everything again); a forked child already holds the server's
    "alive" descriptor, so naming the address is all it lacks.
    """
    server = forkserver._forkserver  # type: ignore[attr-defined]
    server._forkserver_address = address
    server.ensure_running = _already_running


def _already_running() -> None:
    return None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` when the parent exits; exit now if it already has."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() == 1:
        os._exit(1)
