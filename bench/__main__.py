"""Entry point of `make bench` (python -m bench): every bench in turn, then docs/benchmarks.md.

Each bench writes its own JSON under bench/results/ and returns its section of
the document; this module writes the document's head and the sections in order.
``python -m bench stack time_to_data`` measures only the benches named; the
others' sections are rendered again from their last JSON (each says when it was
measured).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench import adql, gate, pages, pg_index, pg_ingest, stack, tap, time_to_data, validation

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


BENCHES: tuple[ModuleType, ...] = (
    time_to_data,
    stack,
    pg_ingest,
    pg_index,
    validation,
    adql,
    tap,
    gate,
    pages,
)


def _section(bench: ModuleType, measure: bool) -> str:
    if measure:
        return str(bench.run())
    if bench.RESULTS.is_file():
        return str(bench.render(json.loads(bench.RESULTS.read_text())))
    return f"## {_name(bench)}\n\nNot measured yet: `python -m bench {_name(bench)}`.\n"


def _name(bench: ModuleType) -> str:
    return bench.__name__.removeprefix("bench.")


def main(names: list[str]) -> int:
    known = {_name(b) for b in BENCHES}
    unknown = sorted(set(names) - known)
    if unknown:
        sys.stderr.write(f"unknown bench {', '.join(unknown)}; known: {', '.join(sorted(known))}\n")
        return 2
    sections = [_section(b, not names or _name(b) in names) for b in BENCHES]
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


raise SystemExit(main(sys.argv[1:]))
