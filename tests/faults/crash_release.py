"""A child process that releases a delivery and SIGKILLs itself inside a database step.

Run as ``python -m tests.faults.crash_release DELIVERY_PATH POINT REPORT_FILE`` with the
archive's settings in the environment (FIRSTLIGHT_*; PostgreSQL). It runs
``services.pipeline.run_release``, the steps every runner follows. Points:

- ``copy``: the catalogue's binary COPY has sent its first rows and is still open
  (the server's ``pg_stat_progress_copy`` shows it, written to REPORT_FILE);
- ``index``: the first CREATE INDEX of the catalogue has committed on its own
  connection (``pgindex``: each build commits by itself), the others not begun,
  the index step's transaction open.
- ``index-blocked``: the index step is about to run its CREATE INDEX statements; they
  are written to REPORT_FILE, then the child waits for REPORT_FILE with the suffix
  ``.go`` (the test takes a conflicting lock on the tables first) and runs them: they
  block inside CREATE INDEX until the test kills this process (no self-kill).

A kill -9, not an exception: no ``finally`` or ``except`` runs, as on a power cut.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine

import firstlight.storage.backends.postgres as pg_backend
from firstlight.services.context import context_for
from firstlight.services.pipeline import run_release

POINTS = ("copy", "index", "index-blocked")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _copies_in_progress(url: str) -> list[dict[str, Any]]:
    """COPY commands the server is running now, seen from a connection of its own."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relid::regclass::text, command, tuples_processed FROM pg_stat_progress_copy"
        ).fetchall()
    return [{"table": r[0], "command": r[1], "tuples": r[2]} for r in rows]


def main(delivery: str, point: str, report_file: str) -> None:
    ctx = context_for()
    # The backend module looks these names up at call time: replace them there.
    report = Path(report_file)
    if point == "copy":
        real_encode = pg_backend.encode_ahead  # type: ignore[attr-defined]

        def encode_then_die(*args: Any, **kwargs: Any) -> Iterator[tuple[int, memoryview]]:
            for item in real_encode(*args, **kwargs):
                yield item  # copy.write(data) runs before the loader asks for more
                assert ctx.settings.database_url is not None
                report.write_text(json.dumps(_copies_in_progress(ctx.settings.database_url)))
                _die()

        pg_backend.encode_ahead = encode_then_die  # type: ignore[attr-defined]
    elif point == "index":
        real_run = pg_backend.run_concurrently  # type: ignore[attr-defined]

        def first_build_then_die(engine: Engine, statements: Sequence[str], **kwargs: Any) -> None:
            real_run(engine, statements[:1], **kwargs)
            report.write_text(json.dumps({"built": list(statements[:1]), "all": list(statements)}))
            _die()

        pg_backend.run_concurrently = first_build_then_die  # type: ignore[attr-defined]
    elif point == "index-blocked":
        real_run = pg_backend.run_concurrently  # type: ignore[attr-defined]

        def build_when_told(engine: Engine, statements: Sequence[str], **kwargs: Any) -> None:
            ready = report.with_suffix(".tmp")
            ready.write_text(json.dumps({"all": list(statements)}))
            ready.rename(report)  # whole, or not there
            go, deadline = report.with_suffix(".go"), time.monotonic() + 600
            while not go.exists():
                if time.monotonic() > deadline:
                    raise SystemExit("never told to build the indexes")
                time.sleep(0.1)
            real_run(engine, statements, **kwargs)  # waits on the test's lock until killed

        pg_backend.run_concurrently = build_when_told  # type: ignore[attr-defined]
    else:
        raise SystemExit(f"unknown point {point!r}: one of {POINTS}")
    run_release(ctx, Path(delivery))
    raise SystemExit("not killed: the crash point was never reached")


if __name__ == "__main__":
    main(*sys.argv[1:4])
