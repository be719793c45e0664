"""The event-driven stack for real: a Prefect server on a free port, the deployments
served, watchers on a folder and on an S3 bucket (moto over HTTP); deliveries dropped
in, releases asserted through the ledger and the archive."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from firstlight.config import Settings
from firstlight.domain.ledger import DeliveryState, LedgerEntry, Stage
from firstlight.domain.manifest import now_utc
from firstlight.events.arrival import Arrival
from firstlight.events.prefect_sink import PrefectEventSink
from firstlight.events.s3_inbox import configure_notifications
from firstlight.query.cone import cone_search
from firstlight.services.context import Context, context_for
from firstlight.stack import Stack
from tests.deliveries import duplicate_source_ids, generated
from tests.processes import processes_with_env, wait_for
from tests.s3 import _free_port, client

pytestmark = pytest.mark.timeout(900)

AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class Running:
    stack: Stack
    settings: Settings
    ctx: Context
    bucket: str
    s3: Any

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.stack.api_url}{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def runs_of(self, name: str) -> list[dict[str, Any]]:
        return list(
            self.api("POST", "/flow_runs/filter", json={"flow_runs": {"name": {"any_": [name]}}})
        )

    def settled(self, path: Path, timeout: float = 180) -> LedgerEntry:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.ctx.archive.ledger.latest_at(str(path.resolve()))
            if entry is not None and entry.state.terminal:
                return entry
            time.sleep(0.5)
        raise AssertionError(f"{path.name} not released or quarantined within {timeout} s")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[Running]:
    saved = {k: os.environ.get(k) for k in AWS}
    os.environ.update(AWS)
    s3, sqs = client("s3", s3_endpoint), client("sqs", s3_endpoint)
    bucket = f"inbox-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    queue_url = configure_notifications(s3, sqs, bucket, f"{bucket}-events")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("stack") / "var",
        s3_bucket=bucket,
        s3_endpoint_url=s3_endpoint,
        s3_queue_url=queue_url,
        watch_poll_seconds=0.2,
        inbox_settle_seconds=5,
        embargo_interval_seconds=15,
        reconcile_interval_seconds=15,
    )
    stack = Stack(settings, port=_free_port())
    stack.start()
    try:
        yield Running(stack, settings, context_for(settings), bucket, s3)
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _deliver(running: Running, version: str, **kwargs: Any) -> Path:
    return generated(running.settings.inbox_dir, version=version, rows=400, **kwargs)


def test_delivery_dropped_in_the_inbox_is_released(running: Running) -> None:
    path = _deliver(running, "1")

    entry = running.settled(path)

    assert entry.state is DeliveryState.RELEASED, entry.reason
    runs = running.runs_of("demo/demo-v1")  # named after the delivery, once admitted
    assert runs and all("mission:demo" in r["tags"] for r in runs)
    assert [r["state_name"] for r in runs if r["state_name"] != "Skipped"] in (
        ["Completed"],
        ["Running"],  # the run is still writing its artifact
    )
    assert entry.finished_at is not None and entry.finished_at > entry.arrived_at
    cone = cone_search(running.ctx.archive, mission="demo", ra=150, dec=2, radius=2, limit=10**4)
    assert (cone.release_key, len(cone.rows)) == ("demo_dr1_v1", 400)


def test_delivery_uploaded_to_the_s3_inbox_is_released(running: Running, tmp_path: Path) -> None:
    local = generated(tmp_path, version="2", rows=300)
    prefix = "incoming/demo v2+/"  # keys arrive URL-encoded in the notifications
    files = sorted(p for p in local.rglob("*") if p.is_file() and p.name != "manifest.json")
    for path in [*files, local / "manifest.json"]:  # manifest last, as producers do
        running.s3.upload_file(
            str(path), running.bucket, prefix + path.relative_to(local).as_posix()
        )

    deadline = time.monotonic() + 180
    entry = None
    while time.monotonic() < deadline and entry is None:
        entry = next(
            (
                e
                for e in running.ctx.archive.ledger.entries("demo")
                if e.delivery_id == "demo-v2" and e.state.terminal
            ),
            None,
        )
        time.sleep(0.5)

    assert entry is not None and entry.state is DeliveryState.RELEASED, entry
    current = [
        r.release_key for r in running.ctx.archive.releases.list_releases("demo") if r.current
    ]
    assert current == ["demo_dr1_v2"]


def test_a_burst_of_twenty_copies_makes_one_release(running: Running) -> None:
    path = _deliver(running, "3")
    first = running.settled(path)
    sink = PrefectEventSink(running.stack.api_url)
    arrival = Arrival("demo", "demo-v3", str(path.resolve()), first.manifest_sha256 or "", "test")

    for _ in range(20):
        sink.emit(arrival)

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = running.runs_of("demo/demo-v3")
        done = [r for r in runs if r["state_type"] in {"COMPLETED", "FAILED", "CRASHED"}]
        if len(done) >= 21:
            break
        time.sleep(1)
    runs = running.runs_of("demo/demo-v3")
    assert len(runs) >= 21
    assert sorted({r["state_name"] for r in runs}) == ["Completed", "Skipped"]
    assert sum(r["state_name"] == "Skipped" for r in runs) >= 20
    entry = running.ctx.archive.ledger.latest_at(str(path.resolve()))
    assert entry is not None and entry.state is DeliveryState.RELEASED and entry.attempts == 1
    assert [r.release_key for r in running.ctx.archive.releases.list_releases("demo")].count(
        "demo_dr1_v3"
    ) == 1


def test_delivery_landing_while_the_watcher_is_down_is_reconciled(running: Running) -> None:
    running.stack.watchers.stop_inbox()
    try:
        path = _deliver(running, "4")
        entry = running.settled(path)  # reconcile-inbox runs every 15 s
    finally:
        running.stack.watchers.start_inbox()

    assert entry.state is DeliveryState.RELEASED
    reconciled = [r for r in running.runs_of("demo/demo-v4") if "reconciled" in r["tags"]]
    assert reconciled, "released by some other path than reconcile-inbox"


def test_embargoed_products_become_public_on_schedule(running: Running) -> None:
    path = _deliver(running, "5", embargo_until=now_utc() + timedelta(days=365))
    assert running.settled(path).state is DeliveryState.RELEASED
    spectra = running.settings.public_dir / "demo" / "dr1" / "5" / "spectra"
    assert not any(spectra.glob("*.fits")), "embargoed files reached the public store"

    # Time travel instead of waiting a year: the release date is now in the past.
    passed = now_utc() - timedelta(seconds=1)
    with sqlite3.connect(running.settings.data_dir / "archive.db") as db:
        db.execute(
            "UPDATE products SET release_date = ? WHERE release_key = 'demo_dr1_v5' "
            "AND release_date IS NOT NULL",
            (passed.replace(tzinfo=None).isoformat(sep=" "),),
        )
    started = time.monotonic()
    interval = running.settings.embargo_interval_seconds
    while time.monotonic() - started < interval + 60 and not any(spectra.glob("*.fits")):
        time.sleep(0.5)

    assert any(spectra.glob("*.fits")), "not public after its release date"
    # At most one schedule interval late, plus a flow run's start on a busy machine.
    assert time.monotonic() - started <= interval + 60
    assert not any((running.settings.embargo_dir / "demo" / "dr1" / "5").rglob("*.fits"))


def test_rerun_after_an_ingest_failure_resumes_without_verifying_again(running: Running) -> None:
    # Stand-in for a database fault at ingest: a table in the way of the new release's.
    db = sqlite3.connect(running.settings.data_dir / "archive.db")
    db.execute('CREATE TABLE "cat_demo_dr1_v6__sources" (x INTEGER)')
    db.commit()
    path = _deliver(running, "6")

    deadline = time.monotonic() + 180
    failed: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not failed:
        failed = [r for r in running.runs_of("demo/demo-v6") if r["state_type"] == "FAILED"]
        time.sleep(0.5)
    assert failed, "the run did not fail at ingest"
    entry = running.ctx.archive.ledger.latest_at(str(path.resolve()))
    assert entry is not None and entry.state is DeliveryState.PROCESSING

    db.execute('DROP TABLE "cat_demo_dr1_v6__sources"')
    db.commit()
    db.close()
    # What "Retry" in the Prefect UI does: the same flow run, scheduled again.
    running.api(
        "POST",
        f"/flow_runs/{failed[0]['id']}/set_state",
        json={"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True},
    )
    entry = running.settled(path)

    assert entry.state is DeliveryState.RELEASED and entry.attempts == 1
    # The retried run renamed and tagged itself again: no tag twice.
    [retried] = [r for r in running.runs_of("demo/demo-v6") if r["id"] == failed[0]["id"]]
    assert sorted(retried["tags"]) == sorted(set(retried["tags"]))
    assert {"firstlight", "mission:demo"} <= set(retried["tags"])
    stages = [(s.stage, s.outcome) for s in running.ctx.archive.ledger.stages(entry.delivery_pk)]
    assert stages.count((Stage.VERIFY, "ok")) == 1 and stages.count((Stage.VALIDATE, "ok")) == 1
    assert (Stage.INGEST, "failed") in stages and (Stage.INGEST, "ok") in stages


def test_redrop_after_release_is_skipped_and_leaves_the_inbox(running: Running) -> None:
    path = _deliver(running, "1")  # the same bytes as the first test's, released there

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and path.exists():
        time.sleep(0.5)

    assert not path.exists(), "a re-drop of a released delivery stayed in the inbox"
    runs = running.runs_of("demo/demo-v1")
    assert [r["state_name"] for r in runs].count("Completed") == 1
    entry = running.ctx.archive.ledger.latest_at(str(path.resolve()))
    assert entry is not None and entry.state is DeliveryState.RELEASED and entry.attempts == 1


def test_failed_runs_are_reported_by_the_automation(running: Running, tmp_path: Path) -> None:
    staged = generated(tmp_path, version="7", rows=300)
    duplicate_source_ids(staged)
    path = running.settings.inbox_dir / staged.name
    shutil.move(staged, path)  # lands whole: one rename

    assert running.settled(path).state is DeliveryState.QUARANTINED
    deadline = time.monotonic() + 120
    reports: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not reports:
        reports = [
            r
            for r in running.api(
                "POST",
                "/flow_runs/filter",
                json={"deployments": {"name": {"any_": ["report-failure"]}}},
            )
            if r["parameters"].get("flow_run_name") == "demo/demo-v7"
            and r["state_type"] == "COMPLETED"
        ]
        time.sleep(1)
    assert reports, "no report-failure run for the failed release run"
    assert "table.key_unique" in reports[0]["parameters"]["message"]

    [run] = [r for r in running.runs_of("demo/demo-v7") if r["state_type"] == "FAILED"]
    assert run["state"]["message"].startswith("Rejected: validate failed: ")
    # Its findings as a table artifact; its logs say it in a line, with no traceback.
    artifacts = running.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
    )
    [findings] = [a for a in artifacts if a["type"] == "table"]
    assert any(row["check"] == "table.key_unique" for row in json.loads(findings["data"]))
    logs = running.api(
        "POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}}
    )
    assert any("quarantined" in log["message"] for log in logs)
    assert not [log["message"] for log in logs if "Traceback" in log["message"]]

    # Retry in the UI (the same flow run, scheduled again) stays Failed and says what to do.
    running.api(
        "POST",
        f"/flow_runs/{run['id']}/set_state",
        json={"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True},
    )
    deadline = time.monotonic() + 180
    again = run
    while time.monotonic() < deadline:
        again = running.api("GET", f"/flow_runs/{run['id']}")
        if again["run_count"] > run["run_count"] and again["state_type"] not in (
            "SCHEDULED",
            "PENDING",
            "RUNNING",
        ):
            break
        time.sleep(0.5)
    assert (again["state_type"], again["state_name"]) == ("FAILED", "Failed"), again["state"]
    assert "firstlight quarantine retry" in again["state"]["message"]
    entry = running.ctx.archive.ledger.latest_at(str(path.resolve()))
    assert entry is not None and entry.state is DeliveryState.QUARANTINED


def test_a_held_release_is_announced_logged_and_decided_from_a_shell(running: Running) -> None:
    path = generated(running.settings.inbox_dir, version="8", rows=8000)  # 20x the rows: held
    [run] = wait_for(
        "the run suspended at the gate",
        lambda: [r for r in running.runs_of("demo/demo-v8") if r["state_name"] == "Suspended"],
        300,
    )
    # The automation announced it: a report-held run naming the delivery and how to decide.
    report = wait_for(
        "a report-held run for demo/demo-v8",
        lambda: [
            r
            for r in running.api(
                "POST",
                "/flow_runs/filter",
                json={"deployments": {"name": {"any_": ["report-held"]}}},
            )
            if r["parameters"].get("flow_run_name") == "demo/demo-v8"
        ],
        180,
    )
    assert report
    # The activity log: its arrival, its run's start and its hold, one line each.
    activity = running.settings.data_dir / "logs" / "activity.log"
    wait_for(
        "the hold in the activity log",
        lambda: "HELD      demo/demo-v8" in activity.read_text(),
        120,
    )
    lines = activity.read_text().splitlines()
    assert sum("arrived   demo/demo-v8 " in line for line in lines) == 1, lines
    assert sum(f"(flow run {run['id']})" in line for line in lines if "started" in line) == 1
    assert "firstlight gate approve|reject demo/demo-v8" in activity.read_text()

    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("firstlight")),
            "gate",
            "approve",
            "demo/demo-v8",
            "--reason",
            "a deeper field",
            "--operator",
            "ana",
        ],
        env=running.stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    entry = running.settled(path, timeout=300)
    assert entry.state is DeliveryState.RELEASED, entry.reason
    wait_for(
        "the release in the activity log",
        lambda: "released  demo/demo-v8" in activity.read_text(),
        120,
    )
    # Earlier tests' releases and the quarantined v7 have their lines too.
    text = activity.read_text()
    assert "released  demo/demo-v1" in text and "rejected  demo/demo-v7: validate failed" in text


def test_make_demo_releases_through_the_stack_and_shows_progress(tmp_path: Path) -> None:
    """`make demo`'s command on a fresh data directory: its own stack, the delivery
    released, each step and the rows done printed as the run goes, nothing left running."""
    data_dir = tmp_path / "var"
    env = {
        **os.environ,
        "FIRSTLIGHT_DATA_DIR": str(data_dir),
        "FIRSTLIGHT_QUERY_PORT": str(_free_port()),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    env.pop("PREFECT_API_URL", None)
    firstlight = str(Path(sys.executable).with_name("firstlight"))
    demo = subprocess.run(
        [firstlight, "demo", "--rows", "30000", "--no-keep-running", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    assert "released" in output and "time-to-data" in output
    for step in ("verify", "validate", "ingest", "index", "promote"):
        assert f"  {step}: " in output, output
    # The run's own progress lines, read back from Prefect: the load reaches all its rows.
    assert "sources.fits loaded: 30,000 / 30,000 rows (100%)" in output, output
    wait_for(
        "no process of the demo's stack",
        lambda: not processes_with_env("FIRSTLIGHT_DATA_DIR", str(data_dir)),
        timeout=60,
    )
