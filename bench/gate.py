"""The release gate: its cost per delivery and its detection, against the release itself.

One run on the embedded default (SQLite, local folders), library steps, no Prefect:

- a history of normal deliveries of one mission (the same field, 1,200 to 1,800
  catalogue rows each), the first ``_WARMUP`` on drift rules alone, then the
  anomaly model is retrained from the ledger every ``_RETRAIN_EVERY``
  deliveries (robust z first, an isolation forest once there are 50 samples);
- 20 drifted deliveries spread among the remaining normal ones: a shifted
  magnitude zero point, a renamed column, a tenfold row count, a new sky
  region and a never-seen instrument, four of each. Held drifted ones are
  rejected (as an operator would), so they never become the reference.

Measured per delivery: the gate's cost (column profiling during ingest, timed
on the same chunks, plus drift and model scoring) against the delivery's
release time without validation (admit, verify, ingest, index, gate, promote);
validation (child processes per file) is timed on two deliveries and reported
beside it. Profiling's overhead is also measured on one larger catalogue.

Writes bench/results/gate.json and returns its section of docs/benchmarks.md.
FIRSTLIGHT_BENCH_GATE_NORMAL (default 100) and FIRSTLIGHT_BENCH_GATE_ROWS
(default 200,000: the larger catalogue) size it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firstlight.analytics.gate_model import retrain
from firstlight.config import Settings
from firstlight.domain.manifest import FileFormat
from firstlight.domain.profile import ColumnProfiler
from firstlight.formats.tables import open_table
from firstlight.producer.synth import synthesize_delivery
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.services.gate import assess_release, rejection_report, resolve_held
from firstlight.services.indexing import index_release
from firstlight.services.ingest import ingest
from firstlight.services.promotion import promote_release
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.validation import validate
from firstlight.services.verification import admit_delivery, verify_delivery
from tests.gate_history import DRIFTS, normal

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gate.json"
_WARMUP = 30
_RETRAIN_EVERY = 30  # deliveries; as the scheduled deployment would, compressed
_DRIFTED_EACH = 4
_CHUNK = 100_000


def _profile_seconds(path: Path) -> float:
    """Profiling alone on the catalogue's chunks (read first, so reading is not counted)."""
    catalogue = path / "catalogue" / "sources.fits"
    chunks = list(open_table(catalogue, FileFormat.FITS).iter_chunks(_CHUNK))
    started = time.perf_counter()
    profiler = ColumnProfiler()
    for chunk in chunks:
        profiler.add(chunk)
    profiler.summaries()
    return time.perf_counter() - started


def _one(ctx: Context, path: Path, *, drifted: bool) -> dict[str, Any]:
    profile = _profile_seconds(path)
    started = time.perf_counter()
    ticket = admit_delivery(ctx, path)
    verify_delivery(ctx, ticket)
    ingest(ctx, ticket)
    index_release(ctx, ticket)
    gate_started = time.perf_counter()
    assessment = assess_release(ctx, ticket)
    gate = time.perf_counter() - gate_started
    if assessment.held and drifted:
        record = resolve_held(ctx, ticket, approve=False, reason="bench", decided_by="operator:b")
        quarantine_delivery(ctx, ticket, rejection_report(record))
    else:
        if assessment.held:
            resolve_held(ctx, ticket, approve=True, reason="bench", decided_by="operator:b")
        promote_release(ctx, ticket)
    release = time.perf_counter() - started
    anomalous = (
        assessment.anomaly_score is not None
        and assessment.anomaly_threshold is not None
        and assessment.anomaly_score > assessment.anomaly_threshold
    )
    return {
        "drifted": drifted,
        "held": assessment.held,
        "by_rules": bool(assessment.findings),
        "by_model": anomalous,
        "model_version": assessment.model_version,
        "profile_ms": profile * 1000,
        "gate_step_ms": gate * 1000,
        "gate_ms": (profile + gate) * 1000,
        "release_ms": release * 1000,
    }


def _schedule(normals: int) -> list[str | None]:
    """None for a normal delivery, a drift's name otherwise: warm-up first, then mixed."""
    drifted = [kind for kind in sorted(DRIFTS) for _ in range(_DRIFTED_EACH)]
    rest = normals - _WARMUP
    plan: list[str | None] = [None] * _WARMUP
    every = max(rest // max(len(drifted), 1), 1)
    for i in range(rest):
        plan.append(None)
        if drifted and i % every == every - 1:
            plan.append(drifted.pop(0))
    plan += drifted
    return plan


def run_detection(work: Path, normals: int) -> dict[str, Any]:
    ctx = context_for(Settings(data_dir=work / "var"))
    inbox = ctx.settings.inbox_dir
    rows: list[dict[str, Any]] = []
    kinds: list[str] = []
    retrained: list[str] = []
    for n, kind in enumerate(_schedule(normals), start=1):
        if n > _WARMUP and (n - 1) % _RETRAIN_EVERY == 0:
            retrained.append(f"after {n - 1}: {retrain(ctx).detail}")
        path = normal(inbox, n) if kind is None else DRIFTS[kind](inbox, n)
        rows.append(_one(ctx, path, drifted=kind is not None))
        kinds.append(kind or "normal")
    validate_seconds = []
    for n in (9001, 9002):
        path = normal(inbox, n)
        ticket = admit_delivery(ctx, path)
        verify_delivery(ctx, ticket)
        started = time.perf_counter()
        validate(ctx, ticket)
        validate_seconds.append(time.perf_counter() - started)
    close_contexts()
    return {"rows": rows, "kinds": kinds, "retrained": retrained, "validate_s": validate_seconds}


def run_profile_overhead(work: Path, rows: int) -> dict[str, float]:
    ctx = context_for(Settings(data_dir=work / "big", ingest_chunk_rows=_CHUNK))
    path = synthesize_delivery(
        work / "big-producer", mission="big", catalogue_rows=rows, images=0, spectra=0,
        timeseries=0,
    )  # fmt: skip
    profile = _profile_seconds(path)
    ticket = admit_delivery(ctx, path)
    verify_delivery(ctx, ticket)
    started = time.perf_counter()
    ingest(ctx, ticket)
    ingest_s = time.perf_counter() - started
    close_contexts()
    return {"rows": rows, "profile_s": profile, "ingest_s": ingest_s}


def run() -> str:
    normals = int(os.environ.get("FIRSTLIGHT_BENCH_GATE_NORMAL", "100"))
    big_rows = int(os.environ.get("FIRSTLIGHT_BENCH_GATE_ROWS", "200000"))
    with tempfile.TemporaryDirectory(prefix="firstlight-bench-gate-") as tmp:
        detection = run_detection(Path(tmp), normals)
        overhead = run_profile_overhead(Path(tmp), big_rows)
    rows, kinds = detection["rows"], detection["kinds"]
    by_kind: dict[str, dict[str, int]] = {}
    for r, kind in zip(rows, kinds, strict=True):
        k = by_kind.setdefault(kind, {"deliveries": 0, "held": 0, "by_rules": 0, "by_model": 0})
        k["deliveries"] += 1
        for flag in ("held", "by_rules", "by_model"):
            k[flag] += int(r[flag])
    gate_ms = [r["gate_ms"] for r in rows]
    release_ms = [r["release_ms"] for r in rows]
    validate_ms = statistics.fmean(detection["validate_s"]) * 1000
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "normal": normals,
        "drifted": len(rows) - normals,
        "by_kind": by_kind,
        "retrained": detection["retrained"],
        "gate_ms_median": statistics.median(gate_ms),
        "gate_ms_p90": statistics.quantiles(gate_ms, n=10)[-1],
        "profile_ms_median": statistics.median(r["profile_ms"] for r in rows),
        "gate_step_ms_median": statistics.median(r["gate_step_ms"] for r in rows),
        "release_ms_median": statistics.median(release_ms),
        "validate_ms_mean": validate_ms,
        "gate_vs_release_without_validation": statistics.median(
            g / r for g, r in zip(gate_ms, release_ms, strict=True)
        ),
        "gate_vs_release_with_validation": statistics.median(gate_ms)
        / (statistics.median(release_ms) + validate_ms),
        "profile_overhead": overhead,
        "profile_vs_ingest": overhead["profile_s"] / overhead["ingest_s"],
        "per_delivery": [{"kind": k, **r} for r, k in zip(rows, kinds, strict=True)],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return render(result)


def render(r: dict[str, Any]) -> str:
    kinds = "\n".join(
        f"| {kind} | {k['deliveries']} | {k['held']} | {k['by_rules']} | {k['by_model']} |"
        for kind, k in sorted(r["by_kind"].items(), key=lambda kv: kv[0] != "normal")
    )
    normal = r["by_kind"].get("normal", {"held": 0, "deliveries": 0})
    retrained = "; ".join(r["retrained"])
    drifted_held = sum(k["held"] for kind, k in r["by_kind"].items() if kind != "normal")
    o = r["profile_overhead"]
    return f"""## The release gate: cost and detection

Measured {r["measured_at"]}; raw figures in `bench/results/gate.json`. One
mission, {r["normal"]} normal deliveries (the first {_WARMUP} on drift rules alone,
then the anomaly model, retrained every {_RETRAIN_EVERY}) and {r["drifted"]} drifted ones
among them, on the embedded default (SQLite), library steps. Retraining:
{retrained}

| deliveries | n | held | by drift rules | by the model |
|---|---|---|---|---|
{kinds}

Goal: every drifted delivery held ({drifted_held} of {r["drifted"]}), at most 5 of 100
normal ones ({normal["held"]} of {normal["deliveries"]}).

| cost per delivery | ms |
|---|---|
| gate (profiling + drift + model), median | {r["gate_ms_median"]:.1f} |
| gate, p90 | {r["gate_ms_p90"]:.1f} |
| of which profiling the catalogue, median | {r["profile_ms_median"]:.1f} |
| of which the gate step (drift, model, ledger), median | {r["gate_step_ms_median"]:.1f} |
| release without validation (admit .. promote), median | {r["release_ms_median"]:.1f} |
| validation (2 deliveries, mean) | {r["validate_ms_mean"]:.0f} |

The gate costs {r["gate_vs_release_without_validation"]:.1%} of a small delivery's
release time without validation, {r["gate_vs_release_with_validation"]:.2%} with it.
Profiling {o["rows"]:,} rows took {o["profile_s"]:.2f} s against {o["ingest_s"]:.2f} s for
their ingest ({r["profile_vs_ingest"]:.1%}): a fixed 4,096-row sample per catalogue,
so memory does not grow with the table.
"""
