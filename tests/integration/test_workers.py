"""Two warm workers as separate process trees, as on two machines.

Each worker has its own data directory, Prefect home and processes; they share
only network services: the Prefect server (its own process), the archive on
PostgreSQL, the public store on S3 (moto over HTTP), and the inbox folder (a
shared mount). A burst of distinct deliveries is spread over both and each is
released exactly once; a worker killed with SIGKILL mid-run leaves nothing
running, its run is marked Crashed, and the other worker releases its delivery
once the claim lapses.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from firstlight.checks.isolation import die_with_parent
from firstlight.config import Settings
from firstlight.domain.ledger import DeliveryState
from firstlight.events.local_inbox import readiness
from firstlight.events.prefect_sink import PrefectEventSink
from firstlight.producer.synth import synthesize_delivery
from firstlight.services.context import Context, context_for
from firstlight.storage.gate_records import GateRecords
from firstlight.storage.schema import releases
from flows.automations import ensure_crashed_runs_automation
from tests.gate_history import normal
from tests.postgres import database_from_template, pg_server_url
from tests.prefect_server import prefect_server
from tests.processes import processes_with_env, wait_for
from tests.s3 import client

pytestmark = [pytest.mark.timeout(2400), pytest.mark.postgres]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
LEASE_SECONDS = 6


@dataclass
class Host:
    """One worker's machine: its data directory, environment and process."""

    name: str
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.data_dir / "worker.log").open("ab")
        self.proc = subprocess.Popen(
            [str(BIN / "firstlight"), "worker", "--name", self.name],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_test,  # noqa: PLW1509 - a prctl call only
        )

    def log(self) -> str:
        return (self.data_dir / "worker.log").read_text(errors="replace")

    def released(self) -> set[str]:
        """Deliveries whose releasing run ran here (the runs' own log lines say so)."""
        return set(re.findall(r"Flow run 'release-([\w-]+)' - \w+/\1: \S+ is current", self.log()))

    def began(self, folder: str) -> bool:
        return f"Flow run 'release-{folder}' - Beginning flow run" in self.log()

    def processes(self) -> list[int]:
        """Processes still running with this host's data directory in their environment."""
        return processes_with_env("FIRSTLIGHT_DATA_DIR", str(self.data_dir))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@dataclass
class Cluster:
    api: str
    inbox: Path
    ctx: Context
    hosts: list[Host]

    def announce(self, path: Path) -> None:
        arrival = readiness(path, source="test").arrival
        assert arrival is not None, path
        PrefectEventSink(self.api).emit(arrival)

    def flow_runs(self, **filters: Any) -> list[dict[str, Any]]:
        body = {"flow_runs": filters, "limit": 200}
        response = httpx.post(f"{self.api}/flow_runs/filter", json=body, timeout=10)
        response.raise_for_status()
        return list(response.json())

    def run_of(self, delivery_path: Path) -> dict[str, Any] | None:
        for run in self.flow_runs():
            if run["parameters"].get("delivery_path") == str(delivery_path):
                return run
        return None


def _die_with_test() -> None:
    die_with_parent(signal.SIGTERM)  # a killed test session leaves no worker behind


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pg_template: str, s3_endpoint: str
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    shared_inbox = root / "shared-inbox"
    shared_inbox.mkdir()
    bucket = f"public-{uuid.uuid4().hex[:10]}"
    saved = {k: os.environ.get(k) for k in AWS}
    os.environ.update(AWS)
    client("s3", s3_endpoint).create_bucket(Bucket=bucket)
    with (
        database_from_template(pg_server_url(), pg_template) as db_url,
        prefect_server(root) as (api, server_env),
    ):
        common = {
            **server_env,
            **AWS,
            "FIRSTLIGHT_DATABASE_URL": db_url,
            "FIRSTLIGHT_PUBLIC_S3_BUCKET": bucket,
            "FIRSTLIGHT_S3_ENDPOINT_URL": s3_endpoint,
            "FIRSTLIGHT_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
            "FIRSTLIGHT_RECONCILE_INTERVAL_SECONDS": "5",
            # The reconciler leaves fresh arrivals to their events for this long.
            "FIRSTLIGHT_INBOX_SETTLE_SECONDS": "20",
            "FIRSTLIGHT_WORKER_LIMIT": "3",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
        hosts = []
        for name in ("host-a", "host-b"):
            data_dir = root / name / "var"
            data_dir.mkdir(parents=True)
            (data_dir / "inbox").symlink_to(shared_inbox)  # the shared mount
            env = {
                **common,
                "FIRSTLIGHT_DATA_DIR": str(data_dir),
                "PREFECT_HOME": str(root / name / "prefect"),
            }
            hosts.append(Host(name, data_dir, env))
        # The archive's schema once, then the pool, deployments and automation.
        settings = Settings(data_dir=hosts[0].data_dir, database_url=db_url)
        ctx = context_for(settings)
        subprocess.run(
            [str(BIN / "firstlight"), "deploy"],
            env=hosts[0].env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        ensure_crashed_runs_automation(api, heartbeat_seconds=30)
        for host in hosts:
            host.start()
        try:
            yield Cluster(api, shared_inbox, ctx, hosts)
        finally:
            for host in hosts:
                host.stop()
            ctx.archive.dispose()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def test_a_burst_is_spread_over_both_workers_and_each_delivery_released_once(
    cluster: Cluster,
) -> None:
    # One delivery per mission: each a first release, which the gate lets through.
    paths = [
        synthesize_delivery(
            cluster.inbox, mission=f"m{n}", delivery_id=f"m{n}-d1", seed=n, catalogue_rows=300
        )
        for n in range(1, 21)
    ]
    for path in paths:
        cluster.announce(path)
        cluster.announce(path)  # a duplicate event: no second release

    ledger = cluster.ctx.archive.ledger

    def all_released() -> bool:
        entries = ledger.entries()
        return len(entries) == 20 and all(e.state.terminal for e in entries)

    wait_for("20 deliveries terminal", all_released, timeout=1800)
    entries = ledger.entries()
    assert {e.state for e in entries} == {DeliveryState.RELEASED}, [e.reason for e in entries]
    with cluster.ctx.archive.engine.connect() as conn:
        made = conn.execute(select(func.count()).select_from(releases)).scalar_one()
    assert made == 20
    names = {p.name for p in paths}
    # The runs' own log lines reach the workers' logs a moment after the ledger's commit.
    wait_for(
        "every release's line in a worker's log",
        lambda: set().union(*(h.released() for h in cluster.hosts)) >= names,
        120,
    )
    taken = [host.released() & names for host in cluster.hosts]
    assert all(taken), f"one worker released nothing: {[len(t) for t in taken]}"
    assert not (taken[0] & taken[1])
    assert taken[0] | taken[1] == names


def test_a_worker_killed_mid_run_leaves_nothing_and_the_other_releases_its_delivery(
    cluster: Cluster,
) -> None:
    path = synthesize_delivery(
        cluster.inbox, mission="solo", delivery_id="solo-d1", seed=7, catalogue_rows=400_000
    )
    cluster.announce(path)
    ledger = cluster.ctx.archive.ledger
    admitted = wait_for("the delivery admitted", lambda: ledger.latest_at(str(path)), 300)
    run_id = wait_for("a run claiming it", lambda: ledger.claim(admitted.delivery_pk)[0], 300)
    [victim] = wait_for(
        "the worker running the claiming run",
        lambda: [h for h in cluster.hosts if f"flow-run/{run_id}" in h.log()],
        300,
    )
    survivor = next(h for h in cluster.hosts if h is not victim)
    assert victim.proc is not None
    os.killpg(victim.proc.pid, signal.SIGKILL)  # the whole machine gone at once
    victim.proc.wait(timeout=30)

    wait_for("no process of the killed worker", lambda: not victim.processes(), timeout=60)
    entry = wait_for(
        "the delivery released by the other worker",
        lambda: (e := cluster.ctx.archive.ledger.latest_at(str(path))) and e.state.terminal and e,
        timeout=600,
    )
    assert entry.state is DeliveryState.RELEASED, entry.reason
    assert entry.attempts >= 2  # taken over, not the first attempt finishing
    # The run's own log line reaches the survivor's log a moment after the ledger's commit.
    wait_for(
        "the release's line in the survivor's log", lambda: path.name in survivor.released(), 120
    )
    crashed = wait_for(
        "the killed run marked Crashed (heartbeats stopped)",
        lambda: (
            (r := httpx.get(f"{cluster.api}/flow_runs/{run_id}", timeout=10).json())
            and r["state_name"] == "Crashed"
            and r
        ),
        timeout=300,
    )
    assert crashed["state_type"] == "CRASHED"
    victim.start()  # the machine back: the fixture stops it cleanly


def test_a_held_release_suspends_and_an_approval_finishes_it_on_a_worker(
    cluster: Cluster,
) -> None:
    ledger = cluster.ctx.archive.ledger

    def terminal(path: Path) -> Any:
        return (e := ledger.latest_at(str(path))) and e.state.terminal and e

    first = normal(cluster.inbox, 1, mission="held")
    cluster.announce(first)
    assert wait_for("the first release", lambda: terminal(first), 600).state.value == "released"
    held = normal(cluster.inbox, 2, mission="held", rows=15_000)  # ten times the rows: drift
    cluster.announce(held)
    run = wait_for(
        "the run suspended at the gate",
        lambda: (r := cluster.run_of(held)) and r["state_name"] == "Suspended" and r,
        600,
    )
    # Suspended, its process gone: the workers go on releasing other deliveries.
    other = normal(cluster.inbox, 1, mission="other")
    cluster.announce(other)
    assert wait_for("another release meanwhile", lambda: terminal(other), 600)
    assert ledger.latest_at(str(held)).state is DeliveryState.PROCESSING  # type: ignore[union-attr]

    # An operator's shell on a worker's machine: `held` names the waiting run,
    # `gate approve` answers its form (the same input as the Prefect UI's).
    env = cluster.hosts[0].env
    listed = _firstlight(env, "held", "--json")
    [waiting] = [h for h in json.loads(listed) if h["label"] == "held/held-0002"]
    assert waiting["flow_run_id"] == run["id"]
    _firstlight(
        env, "gate", "approve", "held/held-0002", "--reason", "a deeper survey", "--operator", "ana"
    )
    entry = wait_for("the held release promoted", lambda: terminal(held), 600)
    assert entry.state is DeliveryState.RELEASED, entry.reason
    assert entry.attempts == 1  # the same run resumed, not a new attempt
    record = GateRecords(cluster.ctx.archive.engine).decision(entry.delivery_pk, entry.attempts)
    assert record is not None and record.decided_by == "operator:ana"
    wait_for(
        "the resumed run Completed",
        lambda: (
            httpx.get(f"{cluster.api}/flow_runs/{run['id']}", timeout=10).json()["state_name"]
            == "Completed"
        ),
        300,
    )


def _firstlight(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "firstlight"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
