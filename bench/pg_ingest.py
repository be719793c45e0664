"""PostgreSQL ingest of a generated FITS catalogue, against two baselines, in one run.

The machines are shared and noisy, so firstlight's figures are paired with
baselines measured in the same run on the same file, each pipeline in a fresh
process (its peak memory is its own) against a fresh database:

- firstlight load: the library's own calls, as ``services.ingest`` makes them
  (``open_table``, the backend's ``catalogue_table``/``create_catalogue`` and
  its ``loader().load`` in one transaction), then ``build_catalogue_indexes``
  timed on its own;
- raw COPY: the same memory-mapped FITS columns as binary COPY rows built
  with numpy and streamed with psycopg into a bare table, written here,
  independently of the library: NaN stays NaN, nothing else is checked;
- pandas: ``DataFrame.to_sql`` per chunk of 100k rows, what a user would
  write instead; slow, so measured on the small file only;
- firstlight release: the library steps (admit, verify, validate, ingest,
  index, promote) on a delivery of the catalogue alone, timed by the ledger;
  the promotion switch (``ReleaseStore.promote``, one transaction) timed
  around the call, then again when a small second release replaces it.

Writes bench/results/pg_ingest.json and returns its section of
docs/benchmarks.md. Rows: FIRSTLIGHT_BENCH_PG_ROWS (default 2,000,000);
firstlight and raw COPY alternate FIRSTLIGHT_BENCH_PG_REPEATS times (default
3) and the fastest of each counts. Server: see ``bench.pgdb``.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.child import in_child, peak_rss_mib
from bench.pg_catalogue import TABLE_NAME, definition, write_catalogue
from bench.pgdb import admin_url, fresh_database, libpq_url, sqlalchemy_url, unreachable_reason

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "pg_ingest.json"
SMALL_ROWS = 200_000
SECOND_RELEASE_ROWS = 1_000
TO_SQL_CHUNK = 100_000
RAW_CHUNK = 100_000
MISSION = "benchpg"
GOAL_RATIO = 0.9
GOAL_MEMORY = 1.1  # "the same": within 10 %
RELEASE_GOAL = 0.5  # the whole release against raw COPY (issue 11)

# PostgreSQL's binary COPY framing: signature, flags, header extension; trailer.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"


# --- memory -----------------------------------------------------------------------------


class MemorySampler:
    """Largest anonymous and file-backed (memory-mapped) resident sizes seen between chunks."""

    def __init__(self) -> None:
        self.anon_mib = 0.0
        self.file_mib = 0.0

    def sample(self) -> None:
        fields = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in {"RssAnon", "RssFile"}:
                fields[key] = int(value.split()[0]) / 1024
        self.anon_mib = max(self.anon_mib, fields.get("RssAnon", 0.0))
        self.file_mib = max(self.file_mib, fields.get("RssFile", 0.0))

    def over(self, chunks: Iterable[Any]) -> Iterator[Any]:
        for chunk in chunks:
            self.sample()
            yield chunk
        self.sample()

    def figures(self) -> dict[str, float]:
        return {"anon_mib_sampled": self.anon_mib, "file_mib_sampled": self.file_mib}


# --- the pipelines (each in its own process) --------------------------------------------


def generate(delivery: Path, rows: int, small: Path, second: Path) -> dict[str, float]:
    """The catalogue files and the two deliveries' manifests (the producer's side)."""
    from firstlight.producer.manifest_builder import build_manifest, write_manifest

    started = time.perf_counter()
    size = write_catalogue(delivery / "catalogue" / "sources.fits", rows)
    write_catalogue(small, min(rows, SMALL_ROWS))
    write_catalogue(second / "catalogue" / "sources.fits", SECOND_RELEASE_ROWS)
    for folder, version in ((delivery, "1"), (second, "2")):
        manifest = build_manifest(
            folder,
            mission=MISSION,
            delivery_id=f"pg-bench-{version}",
            release_name="dr1",
            release_version=version,
            producer="firstlight bench",
        )
        write_manifest(folder, manifest)
    return {"seconds": time.perf_counter() - started, "bytes": size}


def run_firstlight_load(url: str, path: Path) -> dict[str, float]:
    """The load as ``services.ingest`` does it, then the indexes as ``services.indexing``."""
    from firstlight.config import Settings
    from firstlight.domain.manifest import FileFormat
    from firstlight.formats.tables import open_table
    from firstlight.storage.backends import backend_for
    from firstlight.storage.db import for_writing, make_engine

    settings = Settings(database_url=url)
    engine = make_engine(url)
    backend = backend_for(engine, settings)
    table_def = definition()
    release_key = f"{MISSION}_dr1_v1"
    with engine.begin() as conn:
        backend.prepare_release(conn, release_key)
    memory = MemorySampler()

    started = time.perf_counter()
    schema, name = backend.catalogue_location(release_key, table_def.name)
    table = backend.catalogue_table(table_def, schema, name)
    reader = open_table(path, FileFormat.FITS, table_def)
    with for_writing(engine).begin() as conn:
        backend.create_catalogue(conn, table, table_def, reader.num_rows())
        chunks = memory.over(reader.iter_chunks(settings.ingest_chunk_rows))
        loaded = backend.loader().load(conn, table, table_def, chunks)
    loaded_at = time.perf_counter()
    peak = peak_rss_mib()
    with for_writing(engine).begin() as conn:
        backend.build_catalogue_indexes(conn, table, table_def)
    indexed_at = time.perf_counter()
    with engine.connect() as conn:
        nulls = conn.exec_driver_sql(
            f"SELECT count(*) FROM {schema}.{name} WHERE parallax IS NULL"
        ).scalar_one()
    engine.dispose()
    return {
        "rows": loaded,
        "seconds": loaded_at - started,
        "index_seconds": indexed_at - loaded_at,
        "peak_rss_mib": peak,
        "null_parallax_rows": nulls,
        **memory.figures(),
    }


def run_raw_copy(url: str, path: Path) -> dict[str, float]:
    """The baseline: memory-mapped FITS columns -> numpy COPY rows -> psycopg, nothing else."""
    import psycopg
    from astropy.io import fits

    memory = MemorySampler()
    started = time.perf_counter()
    with psycopg.connect(url) as conn, fits.open(path, memmap=True) as hdul:
        data = hdul[1].data
        raw = data.view(np.ndarray)  # the big-endian records, as stored
        names = raw.dtype.names or ()
        types = {"i4": "int4", "i8": "int8", "f4": "float4", "f8": "float8"}
        ddl = ", ".join(f"{n} {types[raw.dtype[n].str[1:]]}" for n in names)
        conn.execute(f"CREATE TABLE {TABLE_NAME} ({ddl})")
        layout: list[tuple[str, Any]] = [("n", ">i2")]
        for i, n in enumerate(names):
            layout += [(f"l{i}", ">i4"), (f"v{i}", raw.dtype[n].newbyteorder(">"))]
        out_type = np.dtype(layout)
        sql = f"COPY {TABLE_NAME} FROM STDIN (FORMAT BINARY)"
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.write(COPY_HEADER)
            for start in memory.over(range(0, len(raw), RAW_CHUNK)):
                part = raw[start : start + RAW_CHUNK]
                out = np.empty(len(part), dtype=out_type)
                out["n"] = len(names)
                for i, n in enumerate(names):
                    out[f"l{i}"] = raw.dtype[n].itemsize
                    out[f"v{i}"] = part[n]
                copy.write(memoryview(out.view(np.uint8)))
            copy.write(COPY_TRAILER)
        rows = len(raw)
        del data, raw
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "peak_rss_mib": peak_rss_mib(), **memory.figures()}


def run_to_sql(url: str, path: Path) -> dict[str, float]:
    """What a user would write: astropy to pandas, ``to_sql`` per chunk of rows."""
    from astropy.io import fits
    from astropy.table import Table
    from sqlalchemy import create_engine

    engine = create_engine(url)
    started = time.perf_counter()
    with fits.open(path, memmap=True) as hdul:
        data = hdul[1].data
        rows = len(data)
        for start in range(0, rows, TO_SQL_CHUNK):
            frame = Table(data[start : start + TO_SQL_CHUNK]).to_pandas()
            frame.to_sql(TABLE_NAME, engine, if_exists="append", index=False, method=None)
        del data
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"rows": rows, "seconds": seconds, "peak_rss_mib": peak_rss_mib()}


def run_release(url: str, data_dir: Path, delivery: Path, second: Path) -> dict[str, Any]:
    """The library steps on the catalogue's delivery, then on a small second release."""
    from sqlalchemy import Connection

    from bench.steps import release_timed
    from firstlight.config import Settings
    from firstlight.services.context import close_contexts, context_for
    from firstlight.storage.releases import Switch

    # The small second release is drift by design (1,000 rows after millions): the gate
    # would hold it for an operator; this bench times the replacement, not the gate.
    lenient = {"gate_row_ratio": 1e9, "gate_psi": 1e9}
    ctx = context_for(Settings(data_dir=data_dir, database_url=url, **lenient))
    store = ctx.archive.releases
    switches: list[float] = []
    promote_in = store.promote_in

    def timed_promote(conn: Connection, release_key: str) -> Switch:
        began = time.perf_counter()
        try:
            return promote_in(conn, release_key)
        finally:
            switches.append(time.perf_counter() - began)

    # The switch, timed where promote_release makes it (an instance attribute, this process only).
    store.promote_in = timed_promote  # type: ignore[method-assign]

    first = release_timed(ctx, delivery)
    peak = peak_rss_mib()
    replacement = release_timed(ctx, second)
    close_contexts()
    return {
        "first": first,
        "second": replacement,
        "switch_seconds": switches,
        "peak_rss_mib": peak,
    }


# --- the run ------------------------------------------------------------------------------


def run() -> str:
    """Measure, write the JSON, return the markdown section (a note when there is no server)."""
    rows = int(os.environ.get("FIRSTLIGHT_BENCH_PG_ROWS", "2000000"))
    repeats = max(1, int(os.environ.get("FIRSTLIGHT_BENCH_PG_REPEATS", "3")))
    server = admin_url()
    reason = unreachable_reason(server)
    if reason is not None:
        note = f"PostgreSQL ingest bench skipped: {reason} (run `make pg-setup`)."
        print(note)
        return f"## PostgreSQL ingest\n\nNot measured in this run: {note}\n"
    with tempfile.TemporaryDirectory(prefix="firstlight-pgbench-") as tmp:
        work = Path(tmp)
        delivery, second = work / "delivery", work / "second"
        big, small = delivery / "catalogue" / "sources.fits", work / "small" / "sources.fits"
        print(f"pg_ingest: generating {rows:,} rows")
        made = in_child(generate, delivery, rows, small, second)
        samples: dict[str, list[dict[str, float]]] = {"firstlight": [], "raw_copy": []}
        for _ in range(repeats):
            for label, fn, kind in (
                ("raw_copy", run_raw_copy, "libpq"),
                ("firstlight", run_firstlight_load, "sqlalchemy"),
            ):
                samples[label].append(_in_database(server, fn, kind, big))
                print(f"pg_ingest: {label} {_rate(samples[label][-1]):,.0f} rows/s")
        small_load = _in_database(server, run_firstlight_load, "sqlalchemy", small)
        print(f"pg_ingest: firstlight at {small_load['rows']:,} rows")
        to_sql = _in_database(server, run_to_sql, "sqlalchemy", small)
        print(f"pg_ingest: to_sql {_rate(to_sql):,.0f} rows/s")
        with fresh_database(server) as db:
            steps = in_child(
                run_release, sqlalchemy_url(server, db), work / "var", delivery, second
            )
        print("pg_ingest: release steps done")
    fl = min(samples["firstlight"], key=lambda s: s["seconds"])
    raw = min(samples["raw_copy"], key=lambda s: s["seconds"])
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        "columns": len(definition().columns),
        "file_bytes": made["bytes"],
        "generate_seconds": made["seconds"],
        "repeats": repeats,
        "samples": samples,
        "firstlight_load": fl,
        "raw_copy": raw,
        "firstlight_load_small": small_load,
        "to_sql_small": to_sql,
        "release_steps": steps,
        "firstlight_rows_per_second": _rate(fl),
        "raw_copy_rows_per_second": _rate(raw),
        "to_sql_rows_per_second": _rate(to_sql),
        "vs_raw_copy": _rate(fl) / _rate(raw),
        "vs_to_sql": _rate(fl) / _rate(to_sql),
        "peak_rss_ratio_large_vs_small": fl["peak_rss_mib"] / small_load["peak_rss_mib"],
        # The whole release (admit to promote) as a rate, against raw COPY in this run.
        "release_rows_per_second": rows / steps["first"]["total"],
        "release_vs_raw_copy": rows / steps["first"]["total"] / _rate(raw),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return render(result)


def _in_database(server: str, fn: Any, kind: str, path: Path) -> dict[str, float]:
    with fresh_database(server) as db:
        url = libpq_url(server, db) if kind == "libpq" else sqlalchemy_url(server, db)
        result: dict[str, float] = in_child(fn, url, path)
        return result


def _rate(sample: dict[str, float]) -> float:
    return sample["rows"] / sample["seconds"]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def render(r: dict[str, Any]) -> str:
    fl, raw, small = r["firstlight_load"], r["raw_copy"], r["firstlight_load_small"]
    to_sql, steps = r["to_sql_small"], r["release_steps"]
    first, second = steps["first"], steps["second"]
    switch_ms = [s * 1000 for s in steps["switch_seconds"]]
    met_speed = r["vs_raw_copy"] >= GOAL_RATIO
    met_memory = r["peak_rss_ratio_large_vs_small"] <= GOAL_MEMORY
    verdict = (
        f"In this run the load reached **{r['vs_raw_copy']:.2f}** of raw COPY "
        f"(goal {'met' if met_speed else 'not met'}) and its peak memory at {r['rows']:,} "
        f"rows was **{r['peak_rss_ratio_large_vs_small']:.2f}x** that at {small['rows']:,} "
        f"(goal {'met' if met_memory else 'not met'})."
    )
    pipelines = _table(
        ("pipeline", "rows/s", "firstlight / it", "peak memory (MiB)"),
        [
            (
                "firstlight load (library, bare table)",
                f"{r['firstlight_rows_per_second']:,.0f}",
                "1.00x",
                f"{fl['peak_rss_mib']:.0f}",
            ),
            (
                "raw psycopg binary COPY of the memory-mapped columns",
                f"{r['raw_copy_rows_per_second']:,.0f}",
                f"{r['vs_raw_copy']:.2f}x",
                f"{raw['peak_rss_mib']:.0f}",
            ),
            (
                f"pandas `DataFrame.to_sql` ({to_sql['rows']:,} rows, extrapolated)",
                f"{r['to_sql_rows_per_second']:,.0f}",
                f"{r['vs_to_sql']:.1f}x",
                f"{to_sql['peak_rss_mib']:.0f}",
            ),
        ],
    )
    measures = _table(
        ("firstlight measure", "value"),
        [
            (
                "index build: unique key and q3c index side by side, ANALYZE (s)",
                f"{fl['index_seconds']:.2f}",
            ),
            (f"promotion switch, first release ({r['rows']:,} rows) (ms)", f"{switch_ms[0]:.1f}"),
            ("promotion switch, a second release replacing it (ms)", f"{switch_ms[1]:.1f}"),
            (
                f"peak memory of the load, {small['rows']:,} rows (MiB)",
                f"{small['peak_rss_mib']:.0f}",
            ),
            (f"peak memory of the load, {r['rows']:,} rows (MiB)", f"{fl['peak_rss_mib']:.0f}"),
        ],
    )
    stages = _table(
        ("step", "seconds"),
        [
            (name, f"{first[name]:.2f}")
            for name in ("verify", "validate", "ingest", "index", "promote")
        ],
    )
    return f"""## PostgreSQL ingest

Measured {r["measured_at"]}; raw figures in `bench/results/pg_ingest.json`.
A generated FITS binary table of {r["rows"]:,} rows x {r["columns"]} numeric
columns ({r["file_bytes"] / 2**20:.0f} MiB; int64 id, float64 positions in a
4-degree field, float32/float64/int32 measures, NaN in two columns) loaded
into PostgreSQL on loopback. Every pipeline runs in a fresh process against
a fresh database; firstlight and raw COPY alternate {r["repeats"]} times and
the fastest of each is shown.

{pipelines}

{measures}

Goal: the load at least {GOAL_RATIO} of raw COPY (indexes timed separately), and
the same peak memory (within {GOAL_MEMORY - 1:.0%}) at {small["rows"]:,} and
{r["rows"]:,} rows. {verdict}

The firstlight load is the library's own path (`open_table`, the backend's
`create_catalogue` and `loader().load` in one transaction, as the ingest step
calls them): NaN and masked values become NULL, and the next chunk is read
and encoded in a worker thread while one is sent. The raw COPY baseline,
written in the bench, sends the stored columns as they are (NaN stays NaN)
into a bare table. pandas is too slow to load {r["rows"]:,} rows in a bench
run: its rate is measured on {to_sql["rows"]:,} rows (astropy to pandas in
chunks of {TO_SQL_CHUNK:,}, `to_sql(if_exists="append", method=None)` through
SQLAlchemy and psycopg) and the ratio assumes the rate stays the same. Peak
memory is each process's own `ru_maxrss`, which counts the pages of the
memory-mapped file it has touched.

The library steps on a delivery of this catalogue alone (PostgreSQL, local
folders, no Prefect), from the ledger; ingest includes the product rows,
promote the copy of the file to the public store with its sha256 check:

{stages}

The whole release (admission to current, {first["total"]:.2f} s) ran at
{r["release_rows_per_second"]:,.0f} rows/s: **{r["release_vs_raw_copy"]:.2f}x**
the raw COPY rate of this run (goal {RELEASE_GOAL}:
{"met" if r["release_vs_raw_copy"] >= RELEASE_GOAL else "not met"}).

The promotion switch is `ReleaseStore.promote`, the one transaction that
makes a release current and re-points the mission's views, timed around the
call inside the promote step; the second release ({SECOND_RELEASE_ROWS:,} rows)
went from admission to current in {second["total"]:.2f} s.
"""
