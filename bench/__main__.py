"""Entry point of `make bench` (python -m bench): every bench in turn, then docs/benchmarks.md.

Each bench writes its own JSON under bench/results/ and returns its section of
the document; this module writes the document's head and the sections in order.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import adql, gate, pages, pg_index, pg_ingest, stack, tap, time_to_data, validation

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def main() -> int:
    benches = (time_to_data, stack, pg_ingest, pg_index, validation, adql, tap, gate, pages)
    sections = [bench.run() for bench in benches]
    measured = datetime.now(UTC).isoformat(timespec="seconds")
    head = f"""# Benchmarks

Written by `make bench` ({measured}, {os.cpu_count()} CPUs, Python
{platform.python_version()}); raw figures in `bench/results/`, one JSON file per
bench. These machines are shared and noisy: read the ratios, which compare
pipelines run one after the other in the same run on the same files, not the
seconds.
"""
    doc = "\n".join([head, *sections])
    DOC.write_text(doc)
    sys.stdout.write(doc)
    return 0


raise SystemExit(main())
