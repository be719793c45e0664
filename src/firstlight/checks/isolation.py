"""Untrusted files are parsed in a child process, under limits.

Belongs here: running one check on one file away from the worker. A child
forked from a forkserver (never from the worker itself, whose threads could
hold locks across a fork) gets a data-memory limit (``RLIMIT_DATA``: heap,
not the read-only file maps that FITS and Parquet readers rely on; the
libraries preloaded in the forkserver, about 400 MiB with Great
Expectations and pandas, count towards it) and a CPU limit, and the parent
gives up waiting after a wall-clock limit. A hostile file (a decompression
bomb, an absurd header, a parser that never ends) then costs one finding,
not the worker: the delivery is quarantined with a reason.

Findings: ``validate.limits`` (memory or time exceeded, or the child killed),
``validate.crash`` (the check itself raised: a bug or an unforeseen input).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import forkserver, spawn
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from firstlight.domain.findings import Finding
from firstlight.domain.progress import Progress

Ctx = TypeVar("Ctx")
_PR_SET_PDEATHSIG = 1
# How long a child may take to start (a forkserver importing Great Expectations on a
# loaded machine: tens of seconds); a sandbox that never starts is an infrastructure
# failure (the run fails and is retried), not a finding against the file.
START_SECONDS = 600
# Loaded once in the forkserver, inherited by every child: see checks.sandbox_preload.
_PRELOAD = ["firstlight.checks.sandbox_preload"]
_MAIN_PRELOAD = "firstlight.checks.forkserver_main"
MAIN_PATH_ENV = "FIRSTLIGHT_FORKSERVER_MAIN"  # read by checks.forkserver_main


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    seconds: float


def start_sandbox() -> None:
    """Start the forkserver now, without waiting for it: its preloading (Great
    Expectations, about 3 s) then overlaps whatever the worker does next (verify
    hashing the files) instead of delaying the first check."""
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload_modules(*_PRELOAD))
    forkserver.ensure_running()


def preload_modules(*modules: str) -> list[str]:
    """The preload list of a forkserver about to start from this process: ``modules``
    after ``checks.forkserver_main``, which imports this process's main script in the
    server once, so that children do not each run it again."""
    main = spawn.get_preparation_data("forkserver").get("init_main_from_path")
    if main:
        os.environ[MAIN_PATH_ENV] = main
    else:
        os.environ.pop(MAIN_PATH_ENV, None)  # started as a module (-m): nothing re-runs
    return [_MAIN_PRELOAD, *modules]


def run_isolated(
    check: Callable[[Ctx], list[Finding]],
    ctx: Ctx,
    limits: Limits,
    *,
    file: str,
    progress: Progress | None = None,
) -> list[Finding]:
    """``check(ctx)`` in a child process; its findings, or one saying why it had none.

    With ``progress``, the child runs ``check(ctx.with_progress(...))`` and what it
    reports comes back through the pipe to ``progress``, in this process.
    """
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(preload_modules(*_PRELOAD))
    receive, send = mp.Pipe(duplex=False)
    reports = progress is not None
    child = mp.Process(target=_child, args=(check, ctx, limits, send, reports), daemon=True)
    child.start()
    send.close()
    name = getattr(check, "__name__", "check")
    try:
        # The time limit starts when the child runs: a forkserver still preloading its
        # libraries (the first child of a worker, a loaded machine) is not the file's fault.
        if not receive.poll(START_SECONDS):
            child.kill()
            raise RuntimeError(f"the validation sandbox did not start within {START_SECONDS} s")
        try:
            receive.recv()  # "started"
            deadline = time.monotonic() + limits.seconds
            while True:
                if not receive.poll(max(deadline - time.monotonic(), 0)):
                    child.kill()
                    return [_limits(file, f"{name} ran longer than {limits.seconds:g} s")]
                kind, value = receive.recv()
                if kind != "progress":
                    break
                if progress is not None:
                    progress(*value)
        except EOFError:
            child.join(5)
            return [_limits(file, f"{name} was killed ({_exit(child.exitcode)})")]
    finally:
        receive.close()
        child.join(5)
        if child.is_alive():
            child.kill()
    if kind == "ok":
        return list(value)
    if kind == "memory":
        mib = limits.memory_bytes // 2**20
        return [_limits(file, f"{name} needed more than {mib} MiB of memory")]
    return [Finding(check="validate.crash", reason=f"{name} failed: {value}", file=file)]


def _child(
    check: Callable[[Any], list[Finding]],
    ctx: Any,
    limits: Limits,
    send: Connection,
    reports: bool,
) -> None:
    die_with_parent()  # the forkserver: nothing outlives the worker
    send.send(("started", None))
    if reports:
        ctx = ctx.with_progress(_PipeProgress(send))
    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    cpu = int(limits.seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        result: tuple[str, Any] = ("ok", check(ctx))
    except MemoryError:
        result = ("memory", None)
    except Exception as exc:
        result = ("error", f"{type(exc).__name__}: {exc}"[:2000])
    try:
        send.send(result)
    except MemoryError:
        send.send(("memory", None))
    finally:
        send.close()


@dataclass(frozen=True)
class _PipeProgress:
    """In the child: progress reports sent to the parent, between "started" and the result."""

    send: Connection

    def __call__(self, what: str, done: int, total: int | None) -> None:
        self.send.send(("progress", (what, done, total)))


def _limits(file: str, reason: str) -> Finding:
    return Finding(check="validate.limits", reason=reason, file=file)


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit code {code}"


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` when the parent exits; exit now if it already has."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() == 1:
        os._exit(1)
