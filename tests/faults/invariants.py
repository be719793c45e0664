"""What must hold after any fault, checked the same way after every case.

- every delivery the case made is in a terminal state in the ledger;
- each public file's sha256 is the one its product row (the manifest's) says;
- each quarantined delivery is byte-identical to what its producer sent;
- the reader role sees no embargoed or staging row, and no embargoed catalogue
  (PostgreSQL: read directly, table by table);
- one current release per mission, never older than a promoted one
  (unless ``rolled_back`` names the mission);
- no process a case started is left running.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import ProgrammingError

from firstlight.domain.ledger import DeliveryState
from firstlight.domain.release import release_order
from firstlight.formats.digest import sha256_file
from firstlight.services.context import Context
from firstlight.storage.schema import current_releases, products, release_tables, releases
from tests.deliveries import tree_digest

LEDGER_TABLES = (
    "deliveries",
    "stage_runs",
    "findings",
    "delivery_features",
    "gate_decisions",
    "gate_models",
    "ttd_forecasts",
)


def every_delivery_terminal(ctx: Context, expected: int | None = None) -> None:
    entries = ctx.archive.ledger.entries()
    open_ = [(e.mission, e.delivery_id, e.state) for e in entries if not e.state.terminal]
    assert not open_, f"deliveries left without a terminal state: {open_}"
    if expected is not None:
        assert len(entries) == expected, [(e.delivery_id, e.state) for e in entries]


def public_files_match(ctx: Context) -> int:
    """sha256 of every stored public file equals its product row's; returns how many."""
    with ctx.archive.engine.connect() as conn:
        rows = conn.execute(
            select(products.c.storage_key, products.c.sha256, products.c.release_date)
            .join(releases, releases.c.release_key == products.c.release_key)
            .where(releases.c.promoted_at.is_not(None))
        ).all()
    checked = 0
    for row in rows:
        public = ctx.public_store.local_path(row.storage_key)
        embargoed = ctx.embargo_store.local_path(row.storage_key)
        stored = [p for p in (public, embargoed) if p is not None and p.is_file()]
        assert stored, f"{row.storage_key}: promoted but stored nowhere"
        for path in stored:
            assert sha256_file(path) == row.sha256, f"{path}: sha256 differs from the manifest"
            checked += 1
    return checked


def quarantine_identical(ctx: Context, originals: dict[str, Path]) -> int:
    """Each quarantined delivery's copy equals its producer's original (by delivery id)."""
    checked = 0
    for entry in ctx.archive.ledger.entries():
        if entry.state not in (DeliveryState.QUARANTINED, DeliveryState.REJECTED):
            continue
        original = originals.get(entry.delivery_id)
        if entry.quarantine_path is None or original is None:
            continue
        copy = Path(entry.quarantine_path) / "delivery"
        assert tree_digest(copy) == tree_digest(original), f"{copy} differs from {original}"
        checked += 1
    return checked


def current_never_older(ctx: Context, rolled_back: Iterable[str] = ()) -> None:
    """One current release per mission; none older than a promoted release of its mission."""
    with ctx.archive.engine.connect() as conn:
        current = conn.execute(select(current_releases)).all()
        promoted = conn.execute(
            select(
                releases.c.mission, releases.c.release_key, releases.c.name, releases.c.version
            ).where(releases.c.promoted_at.is_not(None))
        ).all()
    missions = [row.mission for row in current]
    assert len(missions) == len(set(missions)), f"two current releases: {current}"
    skip = set(rolled_back)
    by_key = {r.release_key: r for r in promoted}
    for row in current:
        if row.mission in skip:
            continue
        mine = [r for r in promoted if r.mission == row.mission]
        newest = max(mine, key=lambda r: release_order(r.name, r.version))
        assert row.release_key == newest.release_key, (
            f"{row.mission}: current is {row.release_key} "
            f"({by_key[row.release_key].version}), but {newest.release_key} is newer"
        )


def reader_sees_nothing_embargoed(ctx: Context, reader: Engine) -> dict[str, int]:
    """Read every table and view directly as the reader role (PostgreSQL).

    Returns the row counts it could read; a table it may not read counts -1.
    Fails if any row it reads is embargoed or of a staging release, or if an
    embargoed catalogue (by its table or its mission view) can be read at all.
    """
    owner = ctx.archive.engine
    with owner.connect() as conn:
        every = conn.execute(
            text(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                "UNION SELECT schemaname, viewname FROM pg_views "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            )
        ).all()
        dark = conn.execute(
            select(
                release_tables.c.physical_schema,
                release_tables.c.physical_name,
                release_tables.c.table_name,
                current_releases.c.mission,
            )
            .outerjoin(
                current_releases, current_releases.c.release_key == release_tables.c.release_key
            )
            .where(text("release_tables.release_date > now()"))
        ).all()
        staging = set(
            conn.execute(
                select(releases.c.release_key).where(releases.c.promoted_at.is_(None))
            ).scalars()
        )
    dark_names = {(d.physical_schema, d.physical_name) for d in dark}
    dark_names |= {(d.mission, d.table_name) for d in dark if d.mission is not None}
    counts: dict[str, int] = {}
    for schema, table in every:
        name = f'"{schema}"."{table}"'
        try:
            with reader.connect() as conn:
                rows = conn.execute(text(f"SELECT * FROM {name}")).mappings().all()
        except ProgrammingError as exc:
            assert "permission denied" in str(exc.orig), f"{name}: {exc.orig}"
            counts[f"{schema}.{table}"] = -1
            continue
        counts[f"{schema}.{table}"] = len(rows)
        assert (schema, table) not in dark_names, f"embargoed catalogue {name} is readable"
        assert schema not in staging, f"staging release {name} is readable"
        assert table not in LEDGER_TABLES, f"ledger table {name} is readable"
        for row in rows:
            for col in ("release_date", "obs_release_date"):
                value = row.get(col)
                if value is not None:
                    with owner.connect() as conn:
                        ahead = conn.execute(text("SELECT :v > now()"), {"v": value}).scalar_one()
                    assert not ahead, f"{name}: embargoed row visible: {dict(row)}"
            if "release_key" in row:
                assert row["release_key"] not in staging, f"{name}: staging row visible"
    return counts


def no_process_left(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        assert proc.poll() is not None, f"process {proc.pid} still running"
        try:
            os.kill(proc.pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"process {proc.pid} still exists")
