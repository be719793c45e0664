"""kill -9 inside the database steps, and a full public disk: the next attempt finishes
(issue 12 item 7).

- A kill in the middle of a catalogue's binary COPY (PostgreSQL): the COPY's transaction
  dies with the client, the table is loaded whole or not at all.
- A kill in the middle of the index step (PostgreSQL): one CREATE INDEX committed on its
  own connection, the rest not begun; the rerun's ``IF NOT EXISTS`` builds keep the one.
- A kill inside a running CREATE INDEX (PostgreSQL): the statements wait on a lock another
  session holds (pg_stat_activity shows them), the process dies there; nothing of the
  builds commits, and the rerun builds each index once.
- The public store's disk full during promotion (a real tmpfs of a few hundred kB where
  the process may mount one, else ``ENOSPC`` raised by the store's write): the delivery
  stays ``processing`` and untouched in the inbox, nothing public, and a rerun after space
  returns releases it.

Each rerun is ``services.pipeline.run_release``, the steps every runner follows; each case
ends with the invariants of ``tests.faults.invariants``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text

from firstlight.domain.ledger import DeliveryState
from firstlight.domain.release import ReleaseState
from firstlight.services.context import Context
from firstlight.services.pipeline import run_release
from firstlight.storage.objectstore import LocalObjectStore
from firstlight.storage.reader import open_query_engine
from firstlight.storage.schema import releases
from tests.deliveries import generated, tree_digest
from tests.faults import invariants
from tests.faults.conftest import drop_in_inbox
from tests.processes import wait_for

REPO = Path(__file__).resolve().parents[2]
KEY = "demo_dr1_v1"
ROWS = 3000


def _crash(ctx: Context, delivery: Path, point: str, tmp_path: Path) -> tuple[Any, int]:
    """Run the release in a child that kills itself at ``point``; (its report, its pid)."""
    report = tmp_path / f"{point}.json"
    env = {**os.environ, "FIRSTLIGHT_DATA_DIR": str(ctx.settings.data_dir)}
    assert ctx.settings.database_url is not None
    env["FIRSTLIGHT_DATABASE_URL"] = ctx.settings.database_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.crash_release", str(delivery), point, str(report)],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
    invariants.no_process_left([proc])
    return json.loads(report.read_text()), proc.pid


def _catalogue_rows(ctx: Context) -> dict[str, int]:
    """Rows of each catalogue table of the release, counted on the server."""
    out = {}
    for tab in ctx.archive.releases.tables(KEY):
        physical = ctx.archive.releases.physical_table(tab)
        with ctx.archive.engine.connect() as conn:
            out[tab.table_name] = int(
                conn.execute(select(func.count()).select_from(physical)).scalar_one()
            )
    return out


def _no_session_of(ctx: Context, pid: int) -> None:
    """The killed client's server backends are gone (nothing holds locks for a dead run)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with ctx.archive.engine.connect() as conn:
            left = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND client_port IS NOT NULL "
                    "AND pid <> pg_backend_pid() AND state <> 'idle' "
                    "AND query ILIKE ANY (ARRAY['COPY %', 'CREATE%INDEX%'])"
                )
            ).scalar_one()
        if left == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"server sessions of killed process {pid} still busy")


def _rerun_releases(ctx: Context, inbox_copy: Path) -> None:
    time.sleep(ctx.archive.ledger.lease_seconds + 0.5)  # the dead run's claim lapses
    outcome = run_release(ctx, inbox_copy)
    assert outcome.status == "released", outcome.detail
    entry = ctx.archive.ledger.entry(outcome.ticket.delivery_pk)
    assert entry.state is DeliveryState.RELEASED and entry.attempts == 2
    release = ctx.archive.releases.get(KEY)
    assert release is not None and release.state is ReleaseState.PROMOTED and release.current
    assert not inbox_copy.exists(), "a released delivery stays in the inbox"
    with ctx.archive.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(releases)).scalar_one() == 1
    # Loaded whole, once: the half COPY left no rows behind.
    assert set(_catalogue_rows(ctx).values()) == {ROWS}


def _invariants(ctx: Context) -> None:
    invariants.every_delivery_terminal(ctx, expected=1)
    assert invariants.public_files_match(ctx) > 0
    invariants.current_never_older(ctx)
    reader = open_query_engine(ctx.settings)
    try:
        counts = invariants.reader_sees_nothing_embargoed(ctx, reader)
    finally:
        reader.dispose()
    assert counts.get("public.observations", 0) > 0, counts


@pytest.mark.faults
def test_kill_during_catalogue_copy_then_rerun_releases(pg: Context, tmp_path: Path) -> None:
    inbox_copy = drop_in_inbox(pg, generated(tmp_path / "producer", rows=ROWS))
    copies, pid = _crash(pg, inbox_copy, "copy", tmp_path)
    assert copies and copies[0]["command"] == "COPY FROM", copies  # killed mid-COPY
    assert 0 < copies[0]["tuples"] <= ROWS, copies
    _no_session_of(pg, pid)

    entry = pg.archive.ledger.latest_at(str(inbox_copy))
    assert entry is not None and entry.state is DeliveryState.PROCESSING
    release = pg.archive.releases.get(KEY)
    assert release is not None and release.state is ReleaseState.STAGING and not release.current
    # The COPY's transaction (table creation included) died with its client.
    with pg.archive.engine.connect() as conn:
        tables = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE schemaname = :s"), {"s": KEY}
        ).scalar_one()
    assert tables == 0

    _rerun_releases(pg, inbox_copy)
    _invariants(pg)


@pytest.mark.faults
def test_kill_during_index_build_then_rerun_releases(pg: Context, tmp_path: Path) -> None:
    inbox_copy = drop_in_inbox(pg, generated(tmp_path / "producer", rows=ROWS))
    builds, pid = _crash(pg, inbox_copy, "index", tmp_path)
    assert len(builds["all"]) > len(builds["built"]) == 1, builds  # killed between builds
    _no_session_of(pg, pid)

    release = pg.archive.releases.get(KEY)
    assert release is not None and release.state is ReleaseState.STAGING and not release.current
    assert set(_catalogue_rows(pg).values()) == {ROWS}  # ingest had committed
    with pg.archive.engine.connect() as conn:
        indexes = conn.execute(
            text("SELECT count(*) FROM pg_indexes WHERE schemaname = :s"), {"s": KEY}
        ).scalar_one()
    assert indexes == 1, "the first build committed on its own connection"

    _rerun_releases(pg, inbox_copy)
    with pg.archive.engine.connect() as conn:
        names = (
            conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = :s"), {"s": KEY})
            .scalars()
            .all()
        )
    assert len(names) == len(builds["all"]) == len(set(names)), names
    _invariants(pg)


def _dsn(ctx: Context) -> str:
    assert ctx.settings.database_url is not None
    return ctx.settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _builds_waiting_on(holder: psycopg.Connection[Any], dsn: str) -> list[tuple[int, str]]:
    """(server pid, query) of the CREATE INDEX statements blocked by ``holder``'s locks."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND state = 'active' "
            "AND wait_event_type = 'Lock' AND query ILIKE 'CREATE%%INDEX%%' "
            "AND %s = ANY (pg_blocking_pids(pid))",
            (holder.info.backend_pid,),
        ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


@pytest.mark.faults
def test_kill_inside_a_running_create_index_then_rerun_releases(
    pg: Context, tmp_path: Path
) -> None:
    """kill -9 while the server runs CREATE INDEX for the client: provably inside the
    statement, because another session holds a lock that CREATE INDEX's SHARE lock waits
    for (ROW EXCLUSIVE, as any writer's transaction takes)."""
    inbox_copy = drop_in_inbox(pg, generated(tmp_path / "producer", rows=ROWS))
    report = tmp_path / "index-blocked.json"
    env = {**os.environ, "FIRSTLIGHT_DATA_DIR": str(pg.settings.data_dir)}
    env["FIRSTLIGHT_DATABASE_URL"] = str(pg.settings.database_url)
    dsn = _dsn(pg)
    holder = psycopg.connect(dsn)  # a transaction, open until rollback below
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.crash_release", str(inbox_copy), "index-blocked",
         str(report)],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for("the child at its index step", report.exists, 600)
        statements = json.loads(report.read_text())["all"]
        tables = holder.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) "
            "FROM pg_tables WHERE schemaname = %s",
            (KEY,),
        ).fetchall()
        assert tables, "no catalogue table to index"
        for (table,) in tables:
            holder.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
        report.with_suffix(".go").touch()
        waiting = wait_for(
            "CREATE INDEX waiting on the lock", lambda: _builds_waiting_on(holder, dsn), 300
        )
        assert all(q.lstrip().upper().startswith("CREATE") for _, q in waiting), waiting
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-3000:]
    invariants.no_process_left([proc])
    # The server notices its client is gone only when the statement ends: release the lock.
    holder.rollback()
    holder.close()
    _no_session_of(pg, proc.pid)

    release = pg.archive.releases.get(KEY)
    assert release is not None and release.state is ReleaseState.STAGING and not release.current
    assert set(_catalogue_rows(pg).values()) == {ROWS}  # ingest had committed
    with pg.archive.engine.connect() as conn:
        indexes = conn.execute(
            text("SELECT count(*) FROM pg_indexes WHERE schemaname = :s"), {"s": KEY}
        ).scalar_one()
    assert indexes == 0, "a build committed without its client"

    _rerun_releases(pg, inbox_copy)
    with pg.archive.engine.connect() as conn:
        names = (
            conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = :s"), {"s": KEY})
            .scalars()
            .all()
        )
    assert len(names) == len(statements) == len(set(names)), names
    _invariants(pg)


@pytest.fixture
def small_public_disk(lite: Context, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """The public store on a tmpfs too small for a delivery (True), or, where this process
    may not mount one, a store whose writes fail with ENOSPC until the test lifts it (False)."""
    root = lite.settings.public_dir
    root.mkdir(parents=True, exist_ok=True)
    mounted = (
        shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(root)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not mounted:
        real = LocalObjectStore.put_file

        def full(self: LocalObjectStore, source: Path, key: str, sha256: str) -> Any:
            if os.environ.get("FAULTS_DISK_FULL") == "1" and self.root == root.resolve():
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._path(key)))
            return real(self, source, key, sha256)

        monkeypatch.setenv("FAULTS_DISK_FULL", "1")
        monkeypatch.setattr(LocalObjectStore, "put_file", full)
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(root)], check=False)


def test_public_disk_full_during_promotion_then_rerun_releases(
    lite: Context, small_public_disk: bool, tmp_path: Path
) -> None:
    """The fast case, in `make test` (SQLite): ENOSPC while promotion copies the files."""
    original = generated(tmp_path / "producer", rows=ROWS, images=2)
    inbox_copy = drop_in_inbox(lite, original)
    with pytest.raises(OSError) as failed:
        run_release(lite, inbox_copy)
    assert failed.value.errno == errno.ENOSPC, failed.value

    entry = lite.archive.ledger.latest_at(str(inbox_copy))
    assert entry is not None and entry.state is DeliveryState.PROCESSING
    assert tree_digest(inbox_copy) == tree_digest(original), "the delivery was touched"
    release = lite.archive.releases.get(KEY)
    assert release is not None and not release.current and release.promoted_at is None
    leftovers = [p for p in lite.settings.public_dir.rglob("*") if p.is_file()]
    assert all(not p.name.endswith(".tmp") for p in leftovers), leftovers

    # Space returns: the real disk again (or the store's writes allowed).
    if small_public_disk:
        subprocess.run(["umount", str(lite.settings.public_dir)], check=True)
    else:
        os.environ["FAULTS_DISK_FULL"] = "0"
    outcome = run_release(lite, inbox_copy)
    assert outcome.status == "released", outcome.detail
    entry = lite.archive.ledger.entry(outcome.ticket.delivery_pk)
    assert entry.state is DeliveryState.RELEASED and entry.attempts == 2
    assert not inbox_copy.exists()
    invariants.every_delivery_terminal(lite, expected=1)
    assert invariants.public_files_match(lite) > 0
    invariants.current_never_older(lite)
