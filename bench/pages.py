"""Latency of the pages for people with 20 missions x 20 releases, as the service answers.

An archive is filled directly (SQLAlchemy Core, no pipeline run: the pages only
read): 20 missions, 20 promoted releases each (the newest current), each with 3
catalogue tables of 20 columns, 40 files (5 of them embargoed in every other
release), 40 ObsCore rows, a gate decision with drift findings, 7 timed steps
and a forecast per delivery, 40 quarantined deliveries, and a MOC per release
(a public and an embargoed group). The service runs as its own process
(``firstlight serve``); each page is asked for in turn at seeded random
missions/releases over a kept-alive httpx connection, the whole round trip
timed. Pages: ``/``, ``/missions/<m>``, ``/releases/<key>`` (HTML and JSON),
``/operations``; images (sky map, time-to-data plot) are timed cold (first
draw) and cached. Backends: SQLite, and PostgreSQL when a server answers.
Requests per page: FIRSTLIGHT_BENCH_PAGES_REQUESTS (default 100). These are
absolute figures on a shared machine: its load average is recorded beside them.
Writes bench/results/pages.json and returns its section of docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.pgdb import admin_url, fresh_database, sqlalchemy_url, unreachable_reason
from bench.tap import _serve

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pages.json"
MISSIONS = 20
RELEASES = 20
TABLES = 3
COLUMNS = 20
FILES = 40
OBSERVATIONS = 40
QUARANTINED = 40
STEPS = ("verify", "validate", "ingest", "index", "gate", "promote")
SEED = 15
WARMUP = 5
BUDGET_P95_MS = 300.0


def fill(data_dir: Path, url: str | None) -> list[tuple[str, str]]:
    """The archive and coverage files; returns (mission, release_key) of every release."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from mocpy import MOC
    from sqlalchemy import insert

    from firstlight.config import Settings
    from firstlight.storage.archive import open_archive
    from firstlight.storage.coverage import CoverageStore
    from firstlight.storage.schema import (
        current_releases,
        deliveries,
        gate_decisions,
        observations,
        products,
        release_tables,
        releases,
        stage_runs,
        ttd_forecasts,
    )

    settings = Settings(data_dir=data_dir, database_url=url)
    archive = open_archive(settings)
    store = CoverageStore(settings.coverage_dir)
    rng = random.Random(SEED)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    future = datetime.now(UTC) + timedelta(days=365)
    made: list[tuple[str, str]] = []
    columns = [
        {"name": f"col{i:02d}", "datatype": "float64", "unit": "mag", "ucd": "phot.mag",
         "description": f"Column {i}"}
        for i in range(COLUMNS)
    ]  # fmt: skip
    columns[0] = {"name": "source_id", "datatype": "int64", "description": "id"}
    columns[1] = {"name": "ra", "datatype": "float64", "unit": "deg", "ucd": "pos.eq.ra"}
    columns[2] = {"name": "dec", "datatype": "float64", "unit": "deg", "ucd": "pos.eq.dec"}
    pk = 0
    with archive.engine.begin() as conn:
        for m in range(MISSIONS):
            mission = f"mission{m:02d}"
            for r in range(RELEASES):
                pk += 1
                key = f"{mission}_dr{r + 1}_v1"
                arrived = start + timedelta(hours=pk * 3)
                seconds = {s: rng.uniform(0.2, 8.0) for s in STEPS}
                finished = arrived + timedelta(seconds=sum(seconds.values()) + 1)
                conn.execute(insert(deliveries).values(
                    id=pk, mission=mission, delivery_id=f"{mission}-{r}",
                    manifest_sha256=f"{pk:064x}",
                    release_key=key, state="released", location="/bench", attempts=1,
                    arrived_at=arrived, finished_at=finished, data_docs=None,
                ))  # fmt: skip
                if url is not None:  # PostgreSQL: the schemas the reader role is granted
                    for schema in (key, mission):
                        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                conn.execute(insert(releases).values(
                    release_key=key, mission=mission, name=f"dr{r + 1}", version="1", delivery=pk,
                    state="promoted", created_at=arrived, indexed_at=finished, promoted_at=finished,
                ))  # fmt: skip
                t = arrived
                for s in STEPS:
                    conn.execute(insert(stage_runs).values(
                        delivery=pk, attempt=1, stage=s, outcome="ok", started_at=t,
                        ended_at=t + timedelta(seconds=seconds[s]),
                    ))  # fmt: skip
                    t += timedelta(seconds=seconds[s])
                conn.execute(insert(ttd_forecasts).values(
                    delivery=pk, attempt=1,
                    predicted_seconds=sum(seconds.values()) * rng.uniform(0.7, 1.3),
                    model="linear (bench)", inputs={}, made_at=arrived,
                ))  # fmt: skip
                conn.execute(insert(gate_decisions).values(
                    delivery=pk, attempt=1, decision="auto-pass", decided_by="rules", reason=None,
                    drift=[{"kind": "column_shift", "field": f"sources.col{i:02d}", "score": 0.1,
                            "threshold": 0.25, "reason": "small shift"} for i in range(3)],
                    anomaly_score=0.2, anomaly_threshold=0.6, thresholds={}, model_version=1,
                    held_at=None, decided_at=finished,
                ))  # fmt: skip
                embargoed = r % 2 == 1
                product_ids = []
                for f in range(FILES):
                    dark = embargoed and f < 5
                    res = conn.execute(insert(products).values(
                        release_key=key, path=f"images/{key}_{f:03d}.fits", product_type="image",
                        format="fits", size=rng.randint(10_000, 50_000_000), sha256=f"{f:064x}",
                        release_date=future if dark else None,
                        storage_key=f"{mission}/dr{r + 1}/1/images/{key}_{f:03d}.fits",
                        stored_at=finished,
                    ))  # fmt: skip
                    product_ids.append(int(res.inserted_primary_key[0]))
                for o in range(OBSERVATIONS):
                    conn.execute(insert(observations).values(
                        release_key=key, product=product_ids[o], obs_collection=mission,
                        obs_id=f"{key}-{o}", obs_publisher_did=f"ivo://bench/{key}/{o}",
                        dataproduct_type="image", calib_level=2, s_ra=rng.uniform(0, 360),
                        s_dec=rng.uniform(-60, 60),
                        obs_release_date=future if embargoed and o < 5 else None,
                    ))  # fmt: skip
                for tb in range(TABLES):
                    name = f"table{tb}"
                    if url is not None:  # the reader role is granted each physical table
                        conn.exec_driver_sql(
                            f'CREATE TABLE "{key}"."{name}" '
                            "(source_id bigint, ra float8, dec float8)"
                        )
                    conn.execute(insert(release_tables).values(
                        release_key=key, table_name=name, physical_schema=key if url else None,
                        physical_name=name if url else f"cat_{key}__{name}",
                        product=product_ids[tb],
                        definition={"name": name, "description": f"Catalogue {tb}",
                                    "columns": columns,
                                    "primary_key": "source_id", "ra": "ra", "dec": "dec"},
                        row_count=rng.randint(1000, 5_000_000), indexed_at=finished,
                        release_date=future if embargoed and tb == 2 else None,
                    ))  # fmt: skip
                groups: dict[datetime | None, Any] = {
                    None: MOC.from_cone(Longitude(rng.uniform(0, 360), u.deg),
                                        Latitude(rng.uniform(-60, 60), u.deg),
                                        radius=rng.uniform(2, 20) * u.deg, max_depth=8),
                }  # fmt: skip
                if embargoed:
                    groups[future] = MOC.from_cone(Longitude(rng.uniform(0, 360), u.deg),
                                                   Latitude(rng.uniform(-60, 60), u.deg),
                                                   radius=5 * u.deg, max_depth=8)  # fmt: skip
                store.save(key, groups)
                made.append((mission, key))
            if url is not None:  # the current release's tables by mission name, as promotion does
                for tb in range(TABLES):
                    conn.exec_driver_sql(
                        f'CREATE VIEW "{mission}"."table{tb}" AS '
                        f'SELECT * FROM "{made[-1][1]}"."table{tb}"'
                    )
            conn.execute(insert(current_releases).values(
                mission=mission, release_key=made[-1][1], switched_at=finished,
            ))  # fmt: skip
        for q in range(QUARANTINED):
            pk += 1
            at = start + timedelta(hours=q * 7 + 1)
            conn.execute(insert(deliveries).values(
                id=pk, mission=f"mission{q % MISSIONS:02d}", delivery_id=f"broken-{q}",
                manifest_sha256=f"{pk:064x}", state="quarantined", location="/bench",
                reason=f"verify failed: images/x_{q}.fits: size differs", report={"findings": []},
                attempts=1, arrived_at=at, finished_at=at + timedelta(seconds=3),
            ))  # fmt: skip
    archive.dispose()
    return made


def _timed(client: httpx.Client, paths: list[str]) -> list[float]:
    ms = []
    for i, path in enumerate(paths):
        began = time.perf_counter()
        r = client.get(path)
        took = (time.perf_counter() - began) * 1000
        if r.status_code != 200:
            raise AssertionError(f"{path}: {r.status_code} {r.text[:300]}")
        if i >= WARMUP:
            ms.append(took)
    return ms


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "max_ms": ordered[-1],
        "n": len(ordered),
    }


def measure(base: str, made: list[tuple[str, str]], requests: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    n = requests + WARMUP
    pages = {
        "home": ["/"] * n,
        "mission": [f"/missions/{rng.choice(made)[0]}" for _ in range(n)],
        "release": [f"/releases/{rng.choice(made)[1]}" for _ in range(n)],
        "release_json": [f"/releases/{rng.choice(made)[1]}?format=json" for _ in range(n)],
        "operations": ["/operations"] * n,
    }
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for name, paths in pages.items():
            out[name] = _summary(_timed(client, paths))
        images: dict[str, Any] = {}
        for name, path in (("sky_map", f"/releases/{made[0][1]}/coverage.png"),
                           ("time_to_data_plot", "/operations/time-to-data.png")):  # fmt: skip
            cold = _timed(client, [path] * (WARMUP + 1))  # the first (uncached) is a warm-up
            began = time.perf_counter()
            client.get(path)
            first = (time.perf_counter() - began) * 1000
            images[name] = {"cached_ms": first, "sample_ms": cold}
        fresh = made[1][1]
        began = time.perf_counter()
        client.get(f"/releases/{fresh}/coverage.png")
        images["sky_map"]["cold_ms"] = (time.perf_counter() - began) * 1000
        out["images"] = images
    return out


def run_backend(name: str, url: str | None, work: Path, requests: int) -> dict[str, Any]:
    data_dir = work / name / "var"
    began = time.perf_counter()
    made = fill(data_dir, url)
    filled = time.perf_counter() - began
    env_url = url or f"sqlite:///{(data_dir / 'archive.db').resolve()}"
    # A loaded machine can take a minute or more to import the service: wait longer.
    proc, base = _serve(data_dir, env_url, work / f"{name}-serve.log", timeout=600)
    try:
        load_before = os.getloadavg()
        figures = measure(base, made, requests)
        load_after = os.getloadavg()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {
        "fill_seconds": filled,
        "load_average_1_5_15": {"before": load_before, "after": load_after},
        **figures,
    }


def run() -> str:
    requests = int(os.environ.get("FIRSTLIGHT_BENCH_PAGES_REQUESTS", "100"))
    started = time.perf_counter()
    backends: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="firstlight-pagesbench-") as tmp:
        work = Path(tmp)
        print(
            f"pages: SQLite, {MISSIONS} missions x {RELEASES} releases, {requests} requests a page"
        )
        backends["sqlite"] = run_backend("sqlite", None, work, requests)
        server = admin_url()
        reason = unreachable_reason(server)
        if reason is None:
            try:
                with fresh_database(server) as db:
                    print("pages: PostgreSQL")
                    backends["postgresql"] = run_backend(
                        "postgresql", sqlalchemy_url(server, db), work, requests
                    )
            except Exception as exc:  # keep SQLite's figures; say why PostgreSQL has none
                print(f"pages: PostgreSQL failed: {exc!r}"[:2000])
        else:
            print(f"pages: PostgreSQL skipped: {reason}")
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "missions": MISSIONS,
        "releases_per_mission": RELEASES,
        "requests_per_page": requests,
        "budget_p95_ms": BUDGET_P95_MS,
        "backends": backends,
        "bench_seconds": time.perf_counter() - started,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return render(result)


def render(r: dict[str, Any]) -> str:
    lines = [
        "## Pages for people",
        "",
        f"{r['missions']} missions x {r['releases_per_mission']} releases (3 tables, 40 files, "
        f"40 ObsCore rows each; half with embargoed items), the service as its own process, "
        f"{r['requests_per_page']} requests a page one after the other over HTTP (round trip "
        f"timed). Absolute figures, not ratios: the budget is p95 < {r['budget_p95_ms']:.0f} ms; "
        "the machine's load average (1 min) during the run is beside each backend.",
        "",
        "| backend | load | page | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for backend, b in r["backends"].items():
        avg = b["load_average_1_5_15"]
        load = f"{avg['before'][0]:.1f}-{avg['after'][0]:.1f}"
        for page in ("home", "mission", "release", "release_json", "operations"):
            s = b[page]
            lines.append(
                f"| {backend} | {load} | {page} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | "
                f"{s['max_ms']:.1f} |"
            )
    lines.append("")
    for backend, b in r["backends"].items():
        img = b["images"]
        lines.append(
            f"Images on {backend}: a sky map drawn cold {img['sky_map']['cold_ms']:.0f} ms, "
            f"cached {img['sky_map']['cached_ms']:.1f} ms; the time-to-data plot cached "
            f"{img['time_to_data_plot']['cached_ms']:.1f} ms (drawn once per change of the ledger)."
        )
    lines.append("")
    lines.append(
        "The operations page is timed with an unchanged ledger: after its first view it is "
        "served from the last read, kept while a two-query fingerprint of the ledger holds."
    )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    sys.stdout.write(run())
