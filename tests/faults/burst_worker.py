"""A worker process of the burst: releases the deliveries it is given, one after another.

Run as ``python -m tests.faults.burst_worker OUT_JSON PATH...`` with the archive's
settings in the environment (FIRSTLIGHT_*). Each delivery goes through
``services.pipeline.run_release``; the outcome of each (status, path, delivery id,
release key, detail) is written to OUT_JSON at the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from firstlight.services.context import context_for
from firstlight.services.pipeline import run_release


def main(out: str, paths: list[str]) -> None:
    ctx = context_for()
    outcomes = []
    for path in paths:
        outcome = run_release(ctx, Path(path))
        outcomes.append(
            {
                "path": path,
                "status": outcome.status,
                "delivery_id": outcome.ticket.delivery_id,
                "release_key": outcome.ticket.release_key,
                "detail": outcome.detail,
            }
        )
    Path(out).write_text(json.dumps(outcomes))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
