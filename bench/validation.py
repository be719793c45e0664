"""Validation throughput of a catalogue: firstlight's checks against plain numpy, in one run.

For each size (FIRSTLIGHT_BENCH_VALIDATION_ROWS, default "1000000,10000000")
a synthetic FITS catalogue is generated (``services.synth``), then two
pipelines run on it, each in a fresh process so its peak memory is its own:

- firstlight: what the validate step runs on a catalogue, the same functions
  in the same order (``checks.validate``'s ``fits_format``, ``catalogue_content``
  and ``catalogue_expectations``: FITS structure and checksums, the streaming
  table checks, the Great Expectations suite of validations/, chunk by chunk
  of 100,000 rows); Great Expectations' import is timed on its own and left
  out of the throughput (it is paid once per process);
- numpy: the same checks written by hand as vectorised numpy over the
  memory-mapped table: DATASUM of the table, ra/dec ranges, null keys,
  duplicate keys (sort), and the suite's ranges for the columns whose UCDs
  name them.

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
    from firstlight.services.synth import synthesize_delivery

    t0 = time.perf_counter()
    delivery = synthesize_delivery(
        work / f"rows{rows}", catalogue_rows=rows, images=0, spectra=0, timeseries=0
    )
    generate = time.perf_counter() - t0
    numpy_run = in_child(run_numpy, delivery)
    fl = in_child(run_firstlight, delivery)
    (delivery / SOURCES).unlink()
    return {
        "rows": rows,
        "generate_seconds": generate,
        "firstlight": fl,
        "numpy": numpy_run,
        "firstlight_rows_per_second": rows / fl["seconds"],
        "numpy_rows_per_second": rows / numpy_run["seconds"],
        "throughput_ratio": numpy_run["seconds"] / fl["seconds"],
        "memory_ratio": fl["peak_rss_mib"] / numpy_run["peak_rss_mib"],
    }


def run() -> str:
    """Measure, write the JSON, return the markdown section."""
    sizes = os.environ.get("FIRSTLIGHT_BENCH_VALIDATION_ROWS", "1000000,10000000")
    with tempfile.TemporaryDirectory(prefix="firstlight-bench-validation-") as tmp:
        runs = [measure(int(n), Path(tmp)) for n in sizes.split(",") if n.strip()]
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "chunk_rows": CHUNK_ROWS,
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
        "FITS structure and checksums, the streaming table checks and the Great Expectations",
        f"catalogue suite, in chunks of {result['chunk_rows']:,} rows, against the same checks",
        "written as plain vectorised numpy over the memory-mapped table, same run, each in a",
        "fresh process. Ratio = numpy time / firstlight time (1 = as fast as hand-written numpy).",
        "",
        "| rows | firstlight rows/s | numpy rows/s | ratio | firstlight peak MiB | numpy peak MiB |"
        " GE import s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        fl, npy = r["firstlight"], r["numpy"]
        lines.append(
            f"| {r['rows']:,} | {r['firstlight_rows_per_second']:,.0f} | "
            f"{r['numpy_rows_per_second']:,.0f} | {r['throughput_ratio']:.2f} | "
            f"{fl['peak_rss_mib']:,.0f} | {npy['peak_rss_mib']:,.0f} | "
            f"{fl['gx_import_seconds']:.1f} |"
        )
    by_check = result["runs"][-1]["firstlight"]["by_check"]
    split = ", ".join(f"{name} {s:.1f} s" for name, s in by_check.items())
    lines += ["", f"Largest size, by check: {split}.", ""]
    return "\n".join(lines)
