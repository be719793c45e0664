"""Validation throughput of a catalogue: firstlight's checks against plain numpy, in one run.

For each size (FIRSTLIGHT_BENCH_VALIDATION_ROWS, default "1000000,10000000")
a synthetic FITS catalogue is generated (``services.synth``), then two
pipelines run on it, each in a fresh process so its peak memory is its own:

- firstlight: what the validate step runs on a catalogue, the same functions
  in the same order (``checks.validate``'s ``fits_format``, ``catalogue_content``
  and ``catalogue_expectations``: FITS structure and checksums, the streaming
  table checks with key uniqueness in bounded memory, the Great Expectations
  suite of validations/ evaluated chunk by chunk of 100,000 rows by
  ``checks.row_expectations``); Great Expectations' import is timed on its
  own and left out of the throughput (it is paid once per process);
- numpy: the same checks written by hand as vectorised numpy over the
  memory-mapped table: DATASUM of the table, ra/dec ranges, null keys,
  duplicate keys (sort, every key in memory), and the suite's ranges for the
  columns whose UCDs name them.

Each pipeline runs FIRSTLIGHT_BENCH_VALIDATION_REPEATS times (default 3) in
its process; the best wall and CPU times count (the machines are shared).

The other way the issue proposed, Great Expectations' SQL engine on the
staged table, is measured too for sizes up to FIRSTLIGHT_BENCH_VALIDATION_SQL_ROWS
(default 1,000,000; 0 skips it): the catalogue loaded into a fresh PostgreSQL
database by binary COPY (not timed), then the same suite through GE's
PostgreSQL datasource (timed), against the numpy time of that size.

Writes bench/results/validation.json and returns its section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from bench.child import in_child, peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "validation.json"
CHUNK_ROWS = 100_000
SOURCES = "catalogue/sources.fits"
# The default catalogue suite's ranges for the synthetic catalogue's columns (by UCD).
RANGES = {
    "phot_g_mean_mag": (-5.0, 35.0),
    "bp_rp": (-10.0, 15.0),
    "ra_error": (0.0, np.inf),
    "dec_error": (0.0, np.inf),
    "parallax": (-1000.0, 1000.0),
    "pmra": (-20000.0, 20000.0),
    "pmdec": (-20000.0, 20000.0),
}


def repeats() -> int:
    return max(1, int(os.environ.get("FIRSTLIGHT_BENCH_VALIDATION_REPEATS", "3")))


def best_of(fn: Any, delivery: Path) -> dict[str, Any]:
    """``fn`` run ``repeats()`` times: the run with the best wall time, and the best CPU time."""
    runs = []
    for _ in range(repeats()):
        cpu = time.process_time()
        result = fn(delivery)
        result["cpu_seconds"] = time.process_time() - cpu
        runs.append(result)
    best = min(runs, key=lambda r: r["seconds"])
    best["cpu_seconds"] = min(r["cpu_seconds"] for r in runs)
    best["all_seconds"] = [r["seconds"] for r in runs]
    best["peak_rss_mib"] = peak_rss_mib()
    if "gx_import_seconds" in runs[0]:
        best["gx_import_seconds"] = runs[0]["gx_import_seconds"]  # paid by the first run only
    return best


def run_firstlight_best(delivery: Path) -> dict[str, Any]:
    return best_of(run_firstlight, delivery)


def run_numpy_best(delivery: Path) -> dict[str, Any]:
    return best_of(run_numpy, delivery)


def run_firstlight(delivery: Path) -> dict[str, Any]:
    from firstlight.checks.expectations import _batch_definition
    from firstlight.checks.rules import load_rules
    from firstlight.checks.suites import load_suites
    from firstlight.checks.validate import FILE_CHECKS, FileContext
    from firstlight.checks.verify import read_manifest

    started = time.perf_counter()
    _batch_definition()  # Great Expectations' import and context: once a process
    gx_import = time.perf_counter() - started
    manifest, _ = read_manifest(delivery)
    [entry] = [f for f in manifest.files if f.path == SOURCES]
    validations = ROOT / "validations"
    ctx = FileContext(
        path=delivery / SOURCES,
        entry=entry,
        mission=manifest.mission,
        rules=load_rules(validations, manifest.mission),
        chunk_rows=CHUNK_ROWS,
        suites=load_suites(validations, manifest.mission),
    )
    seconds: dict[str, float] = {}
    findings = []
    for check in FILE_CHECKS:
        t0 = time.perf_counter()
        findings.extend(check(ctx))
        seconds[check.__name__] = time.perf_counter() - t0
    return {
        "seconds": sum(seconds.values()),
        "by_check": seconds,
        "gx_import_seconds": gx_import,
        "findings": len([f for f in findings if f.severity == "error"]),
        "peak_rss_mib": peak_rss_mib(),
    }


def run_numpy(delivery: Path) -> dict[str, Any]:
    started = time.perf_counter()
    failing = 0
    with fits.open(delivery / SOURCES, memmap=True) as hdul:
        hdu = hdul[1]
        if hdu.header.get("DATASUM") != str(_datasum(hdu)):
            failing += 1
        data = hdu.data
        rows = len(data)
        keys = np.empty(rows, dtype=np.int64)
        for start in range(0, rows, CHUNK_ROWS):
            part = data[start : start + CHUNK_ROWS]
            ra = np.asarray(part["ra"], dtype=np.float64)
            dec = np.asarray(part["dec"], dtype=np.float64)
            failing += int(np.count_nonzero(~np.isfinite(ra) | (ra < 0) | (ra >= 360)))
            failing += int(np.count_nonzero(~np.isfinite(dec) | (dec < -90) | (dec > 90)))
            for name, (low, high) in RANGES.items():
                values = np.asarray(part[name], dtype=np.float64)
                present = ~np.isnan(values)
                failing += int(np.count_nonzero(present & ((values < low) | (values > high))))
            keys[start : start + len(part)] = part["source_id"]
        ordered = np.sort(keys)
        failing += int(np.count_nonzero(ordered[1:] == ordered[:-1])) + int(rows == 0)
    return {
        "seconds": time.perf_counter() - started,
        "findings": failing,
        "peak_rss_mib": peak_rss_mib(),
    }


def _datasum(hdu: Any) -> int:
    """The FITS DATASUM of a table HDU's data, streamed from the file."""
    from firstlight.formats.fits_checksum import sum_file_range

    info = hdu.fileinfo()
    return sum_file_range(Path(info["file"].name), info["datLoc"], info["datSpan"])


def measure(rows: int, work: Path) -> dict[str, Any]:
    from firstlight.producer.synth import synthesize_delivery

    t0 = time.perf_counter()
    delivery = synthesize_delivery(
        work / f"rows{rows}", catalogue_rows=rows, images=0, spectra=0, timeseries=0
    )
    generate = time.perf_counter() - t0
    numpy_run = in_child(run_numpy_best, delivery)
    fl = in_child(run_firstlight_best, delivery)
    sql = measure_ge_sql(rows, delivery)
    (delivery / SOURCES).unlink()
    return {
        "ge_sql": sql,
        "rows": rows,
        "generate_seconds": generate,
        "firstlight": fl,
        "numpy": numpy_run,
        "firstlight_rows_per_second": rows / fl["seconds"],
        "numpy_rows_per_second": rows / numpy_run["seconds"],
        "throughput_ratio": numpy_run["seconds"] / fl["seconds"],
        "cpu_ratio": numpy_run["cpu_seconds"] / fl["cpu_seconds"],
        "memory_ratio": fl["peak_rss_mib"] / numpy_run["peak_rss_mib"],
    }


def measure_ge_sql(rows: int, delivery: Path) -> dict[str, Any] | None:
    """Great Expectations' SQL engine on the table loaded into PostgreSQL, if asked and up."""
    from bench.pgdb import admin_url, unreachable_reason

    if rows > int(os.environ.get("FIRSTLIGHT_BENCH_VALIDATION_SQL_ROWS", "1000000")):
        return None
    server = admin_url()
    reason = unreachable_reason(server)
    if reason is not None:
        return {"skipped": reason}
    return in_child(run_ge_sql, server, delivery)


def run_ge_sql(server: str, delivery: Path) -> dict[str, Any]:
    """The catalogue COPYed into a fresh database, then the suite through GE's SQL engine."""
    import warnings

    from bench.pg_ingest import TABLE_NAME, run_raw_copy
    from bench.pgdb import fresh_database, libpq_url, sqlalchemy_url
    from firstlight.checks.expectations import build_suite, import_great_expectations
    from firstlight.checks.suites import bind_to_table, load_suites
    from firstlight.checks.verify import read_manifest

    import_great_expectations()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    manifest, _ = read_manifest(delivery)
    [entry] = [f for f in manifest.files if f.path == SOURCES]
    assert entry.table is not None
    suite = load_suites(ROOT / "validations", manifest.mission).catalogue
    bound = bind_to_table(suite, entry.table, [c.name for c in entry.table.columns])
    with fresh_database(server) as database, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_raw_copy(libpq_url(server, database), delivery / SOURCES)
        context = gx.get_context(mode="ephemeral")
        context.enable_analytics(enable=False)
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_postgres(
            "pg", connection_string=sqlalchemy_url(server, database)
        )
        batch = source.add_table_asset("rows", table_name=TABLE_NAME)
        definition = batch.add_batch_definition_whole_table("all")
        gx_suite = build_suite("catalogue", bound, per_row=True)
        started = time.perf_counter()
        outcome = definition.get_batch().validate(
            gx_suite,
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": 10,
                "unexpected_index_column_names": ["source_id"],
            },
        )
        seconds = time.perf_counter() - started
    failing = sum(int(r.result.get("unexpected_count") or 0) for r in outcome.results)
    return {"seconds": seconds, "unexpected_rows": failing, "success": bool(outcome.success)}


def run() -> str:
    """Measure, write the JSON, return the markdown section."""
    sizes = os.environ.get("FIRSTLIGHT_BENCH_VALIDATION_ROWS", "1000000,10000000")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="firstlight-bench-validation-") as tmp:
        runs = [measure(int(n), Path(tmp)) for n in sizes.split(",") if n.strip()]
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": load,
        },
        "chunk_rows": CHUNK_ROWS,
        "repeats": repeats(),
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return render(result)


def render(result: dict[str, Any]) -> str:
    lines = [
        "## Validation throughput",
        "",
        "A synthetic FITS catalogue (10 columns) through what the validate step runs on it:",
        "FITS structure and checksums, the streaming table checks (key uniqueness spilled to",
        "disk beyond a million keys) and the Great Expectations catalogue suite evaluated by",
        f"numpy per expectation type, in chunks of {result['chunk_rows']:,} rows, against the",
        "same checks written as plain vectorised numpy over the memory-mapped table (every key",
        "in memory), same run, each in a fresh process, best of "
        f"{result.get('repeats', 1)}. Ratio = numpy time / firstlight time",
        "(1 = as fast as hand-written numpy; goal at least 0.5). Load average when it"
        f" started: {result['machine'].get('load_average') or float('nan'):.1f}"
        f" on {result['machine']['cpus']} CPUs.",
        "",
        "| rows | firstlight rows/s | numpy rows/s | ratio (wall) | ratio (CPU) |"
        " firstlight peak MiB | numpy peak MiB | GE import s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        fl, npy = r["firstlight"], r["numpy"]
        lines.append(
            f"| {r['rows']:,} | {r['firstlight_rows_per_second']:,.0f} | "
            f"{r['numpy_rows_per_second']:,.0f} | {r['throughput_ratio']:.2f} | "
            f"{r.get('cpu_ratio', float('nan')):.2f} | "
            f"{fl['peak_rss_mib']:,.0f} | {npy['peak_rss_mib']:,.0f} | "
            f"{fl['gx_import_seconds']:.1f} |"
        )
    by_check = result["runs"][-1]["firstlight"]["by_check"]
    split = ", ".join(f"{name} {s:.2f} s" for name, s in by_check.items())
    lines += ["", f"Largest size, by check: {split}.", ""]
    for r in result["runs"]:
        sql = r.get("ge_sql")
        if not sql:
            continue
        if "skipped" in sql:
            lines += [f"Great Expectations' SQL engine: not measured ({sql['skipped']}).", ""]
            continue
        lines += [
            f"The other option, Great Expectations' SQL engine on the table loaded into"
            f" PostgreSQL ({r['rows']:,} rows, the load not counted): {sql['seconds']:.2f} s,"
            f" **{r['numpy']['seconds'] / sql['seconds']:.2f}** of numpy, against"
            f" {r['throughput_ratio']:.2f} for the numpy evaluators; and it reported"
            f" {sql['unexpected_rows']:,} unexpected values where the rows are valid: NaN is a"
            " value in PostgreSQL, greater than every number, not a missing one as in pandas.",
            "",
        ]
    return "\n".join(lines)
