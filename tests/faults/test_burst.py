"""A burst of 50 arrivals, 20% of them duplicates, released by several worker processes at
once on PostgreSQL: exactly one release per distinct delivery (issue 12 item 7, promise 3).

Forty distinct deliveries of one mission (versions 1 to 40) and ten re-drops of the first
ten under other folder names land together; three processes (``tests.faults.burst_worker``)
each run ``services.pipeline.run_release`` on their share, dealt so that a delivery and its
duplicate are in flight at the same time on different workers. Afterwards one more pass
over what is left in the inbox (what the reconciler does) settles the duplicates that were
skipped while their original was still being worked on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from firstlight.domain.ledger import DeliveryState
from firstlight.producer.synth import synthesize_delivery
from firstlight.services.context import Context
from firstlight.services.pipeline import run_release
from firstlight.storage.reader import open_query_engine
from firstlight.storage.schema import current_releases, releases
from tests.faults import invariants

REPO = Path(__file__).resolve().parents[2]
DISTINCT = 40
DUPLICATES = 10
WORKERS = 3

pytestmark = pytest.mark.timeout(2400)


def _arrivals(inbox: Path, producer: Path) -> list[Path]:
    """Originals and duplicates interleaved: o1, d1, o2, d2, ..., o10, d10, o11, ..., o40."""
    inbox.mkdir(parents=True, exist_ok=True)
    arrivals = []
    for v in range(1, DISTINCT + 1):
        # One seed for all: the same distribution each time, so the drift gate passes them.
        original = synthesize_delivery(
            producer, mission="demo", delivery_id=f"demo-v{v}", release_version=str(v),
            seed=1, catalogue_rows=60, images=1, spectra=0, timeseries=0,
        )  # fmt: skip
        arrivals.append(Path(shutil.copytree(original, inbox / original.name)))
        if v <= DUPLICATES:
            arrivals.append(Path(shutil.copytree(original, inbox / f"{original.name}-again")))
    return arrivals


@pytest.mark.faults
def test_burst_of_50_with_duplicates_makes_40_releases_once(pg: Context, tmp_path: Path) -> None:
    arrivals = _arrivals(pg.settings.inbox_dir, tmp_path / "producer")
    assert len(arrivals) == DISTINCT + DUPLICATES == 50
    env = {
        **os.environ,
        "FIRSTLIGHT_DATA_DIR": str(pg.settings.data_dir),
        "FIRSTLIGHT_DATABASE_URL": str(pg.settings.database_url),
        # A live run keeps its claim on a loaded machine; a dead one is not the case here.
        "FIRSTLIGHT_CLAIM_LEASE_SECONDS": "60",
    }
    procs, outs = [], []
    for w in range(WORKERS):
        out = tmp_path / f"worker{w}.json"
        share = [str(p) for p in arrivals[w::WORKERS]]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.faults.burst_worker", str(out), *share],
                cwd=REPO,
                env=env,
                stderr=subprocess.PIPE,
            )
        )
        outs.append(out)
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=2000)
        if proc.returncode != 0:
            errors.append(err.decode()[-3000:])
    invariants.no_process_left(procs)
    assert not errors, errors

    outcomes = [o for out in outs for o in json.loads(out.read_text())]
    assert len(outcomes) == 50
    statuses = Counter(o["status"] for o in outcomes)
    assert statuses == {"released": DISTINCT, "skipped": DUPLICATES}, outcomes
    released = Counter(o["release_key"] for o in outcomes if o["status"] == "released")
    assert len(released) == DISTINCT and set(released.values()) == {1}, released

    # What is left in the inbox (duplicates skipped while their original ran): one more pass.
    for left in sorted(p for p in pg.settings.inbox_dir.iterdir() if p.is_dir()):
        again = run_release(pg, left)
        assert again.status == "skipped", (left, again.detail)
    assert [p for p in pg.settings.inbox_dir.iterdir() if p.is_dir()] == []

    with pg.archive.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(releases)).scalar_one() == DISTINCT
        current = conn.execute(select(current_releases.c.release_key)).scalars().all()
    assert current == [f"demo_dr1_v{DISTINCT}"]
    entries = pg.archive.ledger.entries()
    by_state = Counter(e.state for e in entries)
    assert by_state[DeliveryState.RELEASED] == DISTINCT, by_state
    invariants.every_delivery_terminal(pg)
    assert invariants.public_files_match(pg) >= DISTINCT
    invariants.current_never_older(pg)
    reader = open_query_engine(pg.settings)
    try:
        invariants.reader_sees_nothing_embargoed(pg, reader)
    finally:
        reader.dispose()
