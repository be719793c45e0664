"""PostgreSQL index builds run side by side, each on a connection of its own.

One ``CREATE INDEX`` keeps one backend busy while it scans the table, sorts
and writes the index (PostgreSQL's parallel workers share only the scan and
the sort). Two builds on one table take compatible locks (SHARE), so on
separate connections they run at once, and the index step takes about as
long as its longest build rather than their sum.

Each statement commits on its own: write them to be repeatable
(``IF NOT EXISTS``), since a failure elsewhere may leave some built. Each
build may use ``maintenance_work_mem_mib`` of server memory for its sort
(``SET LOCAL``: pooled connections keep no setting afterwards).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Sequence

from sqlalchemy import Engine


def run_concurrently(
    engine: Engine,
    statements: Sequence[str],
    *,
    connections: int,
    maintenance_work_mem_mib: int,
) -> None:
    """Run ``statements`` over up to ``connections`` connections; the first error is raised."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for statement in statements:
        todo.put(statement)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while not errors:
                try:
                    statement = todo.get_nowait()
                except queue.Empty:
                    return
                with engine.begin() as conn:
                    conn.exec_driver_sql(
                        f"SET LOCAL maintenance_work_mem = '{int(maintenance_work_mem_mib)}MB'"
                    )
                    conn.exec_driver_sql(statement)
        except BaseException as exc:  # raised in the caller's thread below
            errors.append(exc)

    workers = [
        threading.Thread(
            target=contextvars.copy_context().run, args=(work,), name=f"index-build-{i}"
        )
        for i in range(max(1, min(connections, len(statements))))
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
