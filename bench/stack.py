"""Time-to-data through the running stack (`firstlight up`), against its floors, in one run.

What a producer sees: a delivery folder moved into the inbox, the watcher, the
event, the trigger, a warm worker, every step, public. Measured on the embedded
default (SQLite, local folders), with the stack's own Prefect server:

- small deliveries (FIRSTLIGHT_BENCH_SMALL_ROWS rows, 4 products), one at a
  time: time-to-data p50/p90 over FIRSTLIGHT_BENCH_SMALL_RUNS (10), against the
  floor *naive pipeline on the same delivery + Prefect's own event-to-run-start
  latency for an empty flow* (the `probe` deployment), both measured in this run;
- a burst of FIRSTLIGHT_BENCH_BURST (50) distinct deliveries moved in at once,
  with 1 worker and with 2: until all are public, and the last one's time-to-data.

Time-to-data here is wall clock from the `rename` into the inbox to the
ledger's end of promotion (the same clock: one machine). Writes
bench/results/stack.json and returns its section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.child import in_child
from bench.time_to_data import run_naive
from firstlight.config import Settings
from firstlight.domain.ledger import DeliveryState
from firstlight.producer.synth import synthesize_delivery
from firstlight.services.context import close_contexts, context_for
from firstlight.stack import Stack, port_or_free
from flows.probe import EVENT_PROBE

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "stack.json"


def _deliveries(root: Path, prefix: str, count: int, rows: int) -> list[Path]:
    # One mission each: every delivery a first release, which the gate lets through.
    return [
        synthesize_delivery(
            root,
            mission=f"{prefix}{n}",
            delivery_id=f"{prefix}{n}-d1",
            seed=n + 1,
            catalogue_rows=rows,
        )
        for n in range(count)
    ]


def _wait(what: str, check: Callable[[], bool], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"bench: {what} not within {timeout} s")


class RunningStack:
    """A stack on a fresh data directory, and what the bench asks of it."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        self.settings = Settings(
            data_dir=data_dir, workers=workers, watch_poll_seconds=0.2, query_port=0
        )
        self.stack = Stack(self.settings, port=port_or_free("127.0.0.1", 0))

    def __enter__(self) -> RunningStack:
        self.stack.start()
        self.ctx = context_for(self.settings)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.stop()
        close_contexts()

    def probe_latency(self) -> float:
        """Seconds from a probe event to its empty run starting (Prefect's floor)."""
        resource = f"firstlight.probe.{uuid.uuid4().hex}"
        sent = datetime.now(UTC)
        event = {
            "id": str(uuid.uuid4()),
            "occurred": sent.isoformat(),
            "event": EVENT_PROBE,
            "resource": {"prefect.resource.id": resource},
            "payload": {},
        }
        api = self.stack.api_url
        httpx.post(f"{api}/events", json=[event], timeout=10).raise_for_status()
        found: dict[str, Any] = {}

        def started() -> bool:
            body = {"flow_runs": {"state": {"type": {"any_": ["RUNNING", "COMPLETED"]}}}}
            runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
            for run in runs:
                if run["parameters"].get("probe_id") == resource and run.get("start_time"):
                    found["start"] = datetime.fromisoformat(run["start_time"])
                    return True
            return False

        _wait("a probe run", started, timeout=300)
        return float((found["start"] - sent).total_seconds())

    def move_in(self, paths: list[Path]) -> tuple[float, list[Path]]:
        """Move delivery folders into the inbox at once; (wall time, their new paths)."""
        inbox = self.settings.inbox_dir
        moved = [inbox / p.name for p in paths]
        t0 = time.time()
        for src, dst in zip(paths, moved, strict=True):
            src.rename(dst)
        return t0, moved

    def finished_at(self, path: Path) -> float | None:
        entry = self.ctx.archive.ledger.latest_at(str(path.resolve()))
        if entry is None or not entry.state.terminal:
            return None
        if entry.state is not DeliveryState.RELEASED:
            raise RuntimeError(f"bench: {path.name} {entry.state}: {entry.reason}")
        assert entry.finished_at is not None
        return entry.finished_at.timestamp()


def _small(work: Path, rows: int, runs: int) -> dict[str, Any]:
    producer = work / "producer-small"
    paths = _deliveries(producer, "s", runs, rows)
    naive = []
    for n, path in enumerate(paths[:3]):
        scratch = work / f"naive-{n}"
        scratch.mkdir()
        naive.append(in_child(run_naive, scratch, path)["total"])
    with RunningStack(work / "var-small", workers=1) as stack:
        # Warm-up: the forkserver's first preload is the worker's, not a delivery's.
        warm = _deliveries(work / "producer-warm", "w", 1, rows)
        t0, [moved] = stack.move_in(warm)
        _wait("the warm-up delivery", lambda: stack.finished_at(moved) is not None)
        probes = [stack.probe_latency() for _ in range(5)]
        ttd = []
        for path in paths:
            t0, [moved] = stack.move_in([path])
            _wait(path.name, lambda m=moved: stack.finished_at(m) is not None)
            done = stack.finished_at(moved)
            assert done is not None
            ttd.append(done - t0)
    floor = statistics.median(naive) + statistics.median(probes)
    p50 = statistics.median(ttd)
    return {
        "rows": rows,
        "runs": runs,
        "time_to_data_seconds": ttd,
        "p50": p50,
        "p90": statistics.quantiles(ttd, n=10)[-1] if len(ttd) > 1 else ttd[0],
        "naive_seconds": statistics.median(naive),
        "probe_seconds": statistics.median(probes),
        "floor_seconds": floor,
        "p50_vs_floor": p50 / floor,
    }


def _burst(work: Path, rows: int, count: int, workers: int) -> dict[str, Any]:
    paths = _deliveries(work / f"producer-burst-{workers}", f"b{workers}x", count, rows)
    with RunningStack(work / f"var-burst-{workers}", workers=workers) as stack:
        warm = _deliveries(work / f"producer-warm-{workers}", f"w{workers}x", workers, rows)
        _, moved_warm = stack.move_in(warm)
        _wait("warm-up", lambda: all(stack.finished_at(m) for m in moved_warm))
        t0, moved = stack.move_in(paths)
        _wait(f"{count} deliveries", lambda: all(stack.finished_at(m) for m in moved))
        finished = [stack.finished_at(m) or 0.0 for m in moved]
    makespan = max(finished) - t0
    return {
        "workers": workers,
        "deliveries": count,
        "rows": rows,
        "all_public_seconds": makespan,
        "last_time_to_data_seconds": makespan,
        "deliveries_per_minute": count / makespan * 60,
    }


def run() -> str:
    rows = int(os.environ.get("FIRSTLIGHT_BENCH_SMALL_ROWS", "20000"))
    runs = int(os.environ.get("FIRSTLIGHT_BENCH_SMALL_RUNS", "10"))
    burst = int(os.environ.get("FIRSTLIGHT_BENCH_BURST", "50"))
    with tempfile.TemporaryDirectory(prefix="firstlight-bench-stack-") as tmp:
        work = Path(tmp)
        small = _small(work, rows, runs)
        bursts = [_burst(work, rows, burst, workers) for workers in (1, 2)]
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "small": small,
        "burst": bursts,
        "two_vs_one_worker_throughput": bursts[0]["all_public_seconds"]
        / bursts[1]["all_public_seconds"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return render(result)


def render(r: dict[str, Any]) -> str:
    s = r["small"]
    burst_rows = "\n".join(
        f"| {b['workers']} | {b['deliveries']} | {b['all_public_seconds']:.1f} | "
        f"{b['deliveries_per_minute']:.1f} |"
        for b in r["burst"]
    )
    load = ", ".join(f"{x:.1f}" for x in r["machine"]["load_average"])
    verdict = "met" if s["p50_vs_floor"] <= 2 else "not met"
    return f"""## Time-to-data through the running stack

Measured {r["measured_at"]} (load average at the end: {load}); raw figures in
`bench/results/stack.json`. `firstlight up` on the embedded default (SQLite,
local folders, its own Prefect server), warm workers; each delivery moved into
the inbox with one `rename`, time-to-data from that moment to the ledger's end
of promotion.

Small deliveries ({s["rows"]:,} catalogue rows and 4 FITS products), one at a
time, {s["runs"]} of them:

| measure | seconds |
|---|---|
| time-to-data p50 | {s["p50"]:.2f} |
| time-to-data p90 | {s["p90"]:.2f} |
| naive pipeline, same delivery (hash, read, insert; no checks) | {s["naive_seconds"]:.2f} |
| Prefect alone: event to an empty run started (`probe`) | {s["probe_seconds"]:.2f} |
| floor: naive + Prefect alone | {s["floor_seconds"]:.2f} |
| **p50 / floor** | **{s["p50_vs_floor"]:.2f}x** (goal at most 2x: {verdict}) |

A burst of distinct deliveries moved in at once ({r["burst"][0]["rows"]:,} rows each):

| workers | deliveries | all public (s) = last one's time-to-data | deliveries/min |
|---|---|---|---|
{burst_rows}

Two workers against one: {r["two_vs_one_worker_throughput"]:.2f}x the throughput. On
these 2 cores one worker already runs 4 deliveries at once and keeps both
cores busy, so a second worker on the same machine cannot add much; the
second worker is for a second machine (docs/scaling.md).
"""
