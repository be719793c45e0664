"""Time-to-data of one generated delivery, against a naive pipeline, in one run.

The machines are shared and noisy, so every figure is paired with a baseline
measured in the same process on the same files:

- firstlight: admit, verify, validate, ingest, index, promote (library steps,
  no Prefect), on the embedded default (SQLite, local folders);
- naive: sha256 of every file, then the catalogue read whole with astropy and
  inserted with sqlite3 executemany into a bare table: no validation, no
  index, no staging, no promotion.

Writes bench/results/time_to_data.json and returns its section of
docs/benchmarks.md. Rows: FIRSTLIGHT_BENCH_ROWS (default 1,000,000).
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from astropy.table import Table

from bench.child import in_child, peak_rss_mib
from bench.steps import release_timed
from firstlight.config import Settings
from firstlight.formats.digest import sha256_file
from firstlight.producer.synth import synthesize_delivery
from firstlight.services.context import close_contexts, context_for

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "time_to_data.json"


def run_firstlight(data_dir: Path, delivery: Path) -> dict[str, float]:
    ctx = context_for(Settings(data_dir=data_dir))
    timings = release_timed(ctx, delivery)
    close_contexts()
    return {**timings, "peak_rss_mib": peak_rss_mib()}


def run_naive(work: Path, delivery: Path) -> dict[str, float]:
    started = time.perf_counter()
    for path in sorted(delivery.rglob("*")):
        if path.is_file():
            sha256_file(path)
    hashed = time.perf_counter()
    table = Table.read(delivery / "catalogue" / "sources.fits", hdu=1)
    names = table.colnames
    columns = [table[n].tolist() for n in names]
    conn = sqlite3.connect(work / "naive.db")
    conn.execute(f"CREATE TABLE sources ({', '.join(names)})")
    with conn:
        conn.executemany(
            f"INSERT INTO sources VALUES ({', '.join('?' for _ in names)})",
            zip(*columns, strict=True),
        )
    conn.close()
    done = time.perf_counter()
    return {
        "total": done - started,
        "hash": hashed - started,
        "load": done - hashed,
        "peak_rss_mib": peak_rss_mib(),
    }


def run() -> str:
    """Measure, write the JSON, return the markdown section."""
    rows = int(os.environ.get("FIRSTLIGHT_BENCH_ROWS", "1000000"))
    with tempfile.TemporaryDirectory(prefix="firstlight-bench-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        delivery = synthesize_delivery(work / "producer", catalogue_rows=rows)
        generate = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in delivery.rglob("*") if p.is_file())
        naive = in_child(run_naive, work, delivery)
        fl = in_child(run_firstlight, work / "var", delivery)
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        "delivery_bytes": size,
        "generate_seconds": generate,
        "firstlight_seconds": fl,
        "naive_seconds": naive,
        "time_to_data_ratio": fl["total"] / naive["total"],
        "ingest_rows_per_second": rows / fl["ingest"],
        "naive_load_rows_per_second": rows / naive["load"],
        "ingest_vs_naive_load": (rows / fl["ingest"]) / (rows / naive["load"]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return render(result)


def render(r: dict[str, Any]) -> str:
    fl, nv = r["firstlight_seconds"], r["naive_seconds"]
    load = (r["ingest_rows_per_second"], r["naive_load_rows_per_second"])
    peak = (fl["peak_rss_mib"], nv["peak_rss_mib"])
    stage_rows = "\n".join(
        f"| {name} | {fl[name]:.2f} |"
        for name in ("verify", "validate", "ingest", "index", "promote")
    )
    return f"""## Time-to-data on the embedded default (SQLite)

Measured {r["measured_at"]}; raw figures in `bench/results/time_to_data.json`.
One generated delivery: 4 FITS products and a catalogue of {r["rows"]:,} rows
({r["delivery_bytes"] / 2**20:.0f} MiB), on the embedded default (SQLite, local
folders), through the library steps in one process (no Prefect), on a warm validation
sandbox as a worker runs them.

| measure | firstlight | naive baseline | ratio |
|---|---|---|---|
| time-to-data (s) | {fl["total"]:.2f} | {nv["total"]:.2f} | {r["time_to_data_ratio"]:.2f}x |
| catalogue load (rows/s) | {load[0]:,.0f} | {load[1]:,.0f} | {load[0] / load[1]:.2f}x |
| peak memory (MiB) | {peak[0]:.0f} | {peak[1]:.0f} | {peak[0] / peak[1]:.2f}x |

The naive baseline hashes every file, reads the catalogue whole with astropy
and inserts it with sqlite3 `executemany` into a bare table: no validation,
no ObsCore rows, no index, no staging, no promotion, no fixity check after
copying. firstlight does all of those and streams the catalogue in chunks.

firstlight's steps (s):

| step | seconds |
|---|---|
{stage_rows}

Time-to-data ratio above 1 means firstlight takes longer than the naive
pipeline; load ratio above 1 means it loads faster. Peak memory is each
pipeline's own process (the catalogue is streamed by firstlight, read whole
by the baseline).
"""
