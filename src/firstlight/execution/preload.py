"""What a worker's forkserver imports once, before any flow run is forked from it.

Runs inside the forkserver: it dies with its worker, and it holds the flows,
Prefect's engine and the heavy libraries of validation, ingest and the gate.
It never opens a database, a file of a delivery or a network connection, so
what children inherit is clean.
"""

from __future__ import annotations

from firstlight.execution.warm_processes import die_with_parent

die_with_parent()

# Prefect's engine and the flows (their tasks import the library's steps).
import prefect.flow_engine  # noqa: E402
import sklearn.ensemble  # type: ignore[import-untyped]  # noqa: E402

# Validation's checks and Great Expectations (the sandbox children's code).
import firstlight.checks.sandbox_preload  # noqa: E402  (imports GE once, here)
import firstlight.execution.worker  # noqa: E402, F401  (the runs' entry point)
import flows.deployments  # noqa: E402
from firstlight.storage.backends import postgres  # noqa: E402

__all__ = ["flows", "postgres", "prefect", "sklearn"]
