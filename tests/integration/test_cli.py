"""The firstlight command as a producer and an operator use it."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from firstlight.cli import app
from firstlight.config import Settings
from firstlight.query.service.app import ServiceThread, server
from firstlight.services.context import Context
from firstlight.services.pipeline import run_release
from tests.deliveries import duplicate_source_ids, generated
from tests.steps import release

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_api")
def test_producer_manifest_is_accepted_by_ingest(settings: Settings) -> None:
    code, _ = _run(
        "synth",
        str(settings.data_dir / "gen"),
        "--mission",
        "xmm",
        "--release",
        "y2026",
        "--rows",
        "800",
        "--seed",
        "5",
    )
    assert code == 0
    delivery = next((settings.data_dir / "gen").iterdir())
    (delivery / "manifest.json").unlink()  # a producer starts from bare files

    code, output = _run(
        "manifest",
        str(delivery),
        "--mission",
        "xmm",
        "--delivery-id",
        "obs-42",
        "--release",
        "y2026",
        "--version",
        "3",
        "--producer",
        "XMM SOC",
    )
    assert code == 0, output
    manifest = json.loads((delivery / "manifest.json").read_text())
    assert manifest["delivery_id"] == "obs-42" and len(manifest["files"]) == 5
    [cat] = [f for f in manifest["files"] if f["product_type"] == "catalogue"]
    assert cat["table"]["primary_key"] == "source_id" and cat["table"]["ra"] == "ra"

    code, output = _run("ingest", str(delivery))
    assert code == 0, output
    assert "released" in output and "xmm_y2026_v3" in output
    # Validation's passes over the catalogue and its load report rows done of all.
    lines = output.splitlines()
    for done in ("checked", "expectations", "loaded"):
        said = [line for line in lines if f"{cat['path']} {done}: " in line]
        assert said and said[-1].strip().endswith("800 / 800 rows (100%)"), output
        assert len(said) <= 11  # a line a tenth at most, not one a chunk

    code, output = _run("releases", "--json")
    assert code == 0
    [rel] = json.loads(output)
    assert (rel["release_key"], rel["current"]) == ("xmm_y2026_v3", True)

    code, output = _run("cone", "150.0", "2.0", "0.2", "--mission", "xmm", "--json", "--limit", "5")
    assert code == 0
    result = json.loads(output)
    assert result["release"] == "xmm_y2026_v3" and 0 < len(result["rows"]) <= 5
    assert all(row["distance"] <= 0.2 for row in result["rows"])


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_api")
def test_ingest_exits_non_zero_with_the_reason(settings: Settings) -> None:
    code, _ = _run("synth", str(settings.data_dir / "gen"), "--rows", "500")
    assert code == 0
    delivery = next((settings.data_dir / "gen").iterdir())
    duplicate_source_ids(delivery)
    code, output = _run("ingest", str(delivery))
    assert code == 1
    assert "rejected" in output and "table.key_unique" in output
    assert "sources.fits" in output


@pytest.mark.flow
@pytest.mark.usefixtures("prefect_api")
def test_demo_once_releases_and_queries(settings: Settings) -> None:
    code, output = _run("demo", "--once", "--rows", "3000")
    assert code == 0, output
    assert "released" in output and "demo_dr1_v1" in output
    code, output = _run("demo", "--once", "--rows", "3000")
    assert code == 0, output
    code, output = _run("releases", "--mission", "demo", "--json")
    current = [r["release_key"] for r in json.loads(output) if r["current"]]
    assert current == ["demo_dr1_v2"]


def test_cone_on_unknown_mission_fails_clearly(settings: Settings) -> None:
    code, output = _run("cone", "10", "10", "0.1", "--mission", "nope")
    assert code == 1 and "mission 'nope' has no public release" in output


def test_ingest_of_missing_folder_is_a_usage_error(tmp_path: Path, settings: Settings) -> None:
    code, output = _run("ingest", str(tmp_path / "absent"))
    assert code == 2 and "not a folder" in output


def test_schema_command_prints_the_committed_schema() -> None:
    code, output = _run("schema")
    committed = Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json"
    assert code == 0 and json.loads(output) == json.loads(committed.read_text())


def test_rollback_switches_back_and_says_when_it_cannot(ctx: Context, settings: Settings) -> None:
    release(ctx, generated(settings.data_dir / "producer", version="1", rows=300))
    release(ctx, generated(settings.data_dir / "producer", version="2", rows=400))

    code, output = _run("rollback", "demo")
    assert code == 0 and "demo_dr1_v2 -> demo_dr1_v1 is current" in output
    code, output = _run("releases", "--mission", "demo", "--json")
    assert [r["release_key"] for r in json.loads(output) if r["current"]] == ["demo_dr1_v1"]

    code, output = _run("rollback", "demo")
    assert code == 1 and "demo_dr1_v1 is the oldest promoted release" in output


def test_stats_gives_time_to_data_per_delivery_and_stage(ctx: Context, settings: Settings) -> None:
    release(ctx, generated(settings.data_dir / "producer", version="1", rows=300))
    release(ctx, generated(settings.data_dir / "producer", version="2", rows=300))

    code, output = _run("stats", "--json")

    assert code == 0
    stats = json.loads(output)
    assert stats["deliveries"] == 2 and stats["by_state"] == {"released": 2}
    assert 0 < stats["time_to_data_p50"] <= stats["time_to_data_p90"]
    for delivery in stats["per_delivery"]:
        assert set(delivery["stage_seconds"]) == {
            "verify",
            "validate",
            "ingest",
            "index",
            "promote",
        }
        assert delivery["time_to_data_seconds"] >= sum(delivery["stage_seconds"].values()) * 0.99


def test_time_to_data_of_an_old_folder_moved_into_the_inbox_starts_at_its_arrival(
    ctx: Context, settings: Settings
) -> None:
    """`mv` keeps a producer's mtimes (here two hours old): stats count from the watcher."""
    from firstlight.events.arrival import CollectingSink
    from firstlight.events.local_inbox import InboxWatcher
    from tests.processes import wait_for

    old = generated(settings.data_dir / "producer", rows=300)
    two_hours_ago = time.time() - 7200
    for path in [old, *old.rglob("*")]:
        os.utime(path, (two_hours_ago, two_hours_ago))
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    sink = CollectingSink()
    with InboxWatcher(settings.inbox_dir, sink, settle_seconds=600, poll_seconds=0.2):
        moved_at = datetime.now(UTC)
        moved = old.rename(settings.inbox_dir / old.name)
        wait_for("the watcher's announcement", lambda: sink.arrivals, 60)
    [arrival] = sink.arrivals
    assert arrival.landed_at is not None and arrival.landed_at >= moved_at

    ticket = run_release(ctx, moved, landed_at=arrival.landed_at).ticket
    entry = ctx.archive.ledger.entry(ticket.delivery_pk)
    assert entry.state.value == "released" and entry.arrived_at == arrival.landed_at

    code, output = _run("stats", "--json")
    assert code == 0
    [delivery] = json.loads(output)["per_delivery"]
    # From the arrival: well under the 7,200 s the files' timestamps would claim.
    assert 0 < delivery["time_to_data_seconds"] < 3600
    finished = entry.finished_at
    assert finished is not None
    assert delivery["time_to_data_seconds"] == pytest.approx(
        (finished - arrival.landed_at).total_seconds()
    )


def test_search_finds_observations_by_target_and_instrument(
    ctx: Context, settings: Settings
) -> None:
    release(ctx, generated(settings.data_dir / "producer", rows=200))

    code, output = _run("search", "field", "--mission", "demo", "--json")
    assert code == 0
    rows = json.loads(output)["rows"]
    assert [r["dataproduct_type"] for r in rows] == ["image", "image"]

    code, output = _run("search", "spectro", "--mission", "demo", "--json")  # a prefix
    assert [r["dataproduct_type"] for r in json.loads(output)["rows"]] == ["spectrum"]

    code, output = _run("search", "field nothing-like-this", "--mission", "demo", "--json")
    assert code == 0 and json.loads(output)["rows"] == []  # every word must match

    code, output = _run("search", '" OR 1=1 --', "--mission", "demo", "--json")
    assert code == 0 and json.loads(output)["rows"] == []  # words, never query syntax


def test_quarantine_list_show_and_retry_after_a_fix(ctx: Context, settings: Settings) -> None:
    from tests.deliveries import remanifest
    from tests.steps import release_or_quarantine

    clean = generated(settings.data_dir / "clean", rows=300)
    broken = generated(settings.data_dir / "producer", rows=300)
    duplicate_source_ids(broken)
    release_or_quarantine(ctx, broken)

    code, output = _run("quarantine", "list", "--json")
    assert code == 0
    [held] = json.loads(output)
    assert held["state"] == "quarantined" and "table.key_unique" in held["reason"]
    code, output = _run("quarantine", "show", str(held["delivery_pk"]), "--json")
    shown = json.loads(output)
    checks = {f["check"] for f in shown["findings"]}
    assert "table.key_unique" in checks
    # The attempt's Data Docs (the observation suite ran) are linked.
    assert Path(shown["entry"]["data_docs"]).name == "index.html"
    assert Path(shown["entry"]["data_docs"]).is_file()
    # ... over http, as the query service serves them: a browser refuses file:// links.
    url = urlsplit(shown["data_docs_url"])
    assert (url.scheme, url.netloc) == ("http", f"127.0.0.1:{settings.query_port}")
    assert url.path == f"/operations/data-docs/{held['delivery_pk']}/index.html"
    service = ServiceThread(server(settings, port=0))
    service.start(timeout=120)
    try:
        page = httpx.get(service.url + url.path, timeout=60)
    finally:
        service.stop()
    assert page.status_code == 200 and "Data Docs" in page.text
    code, output = _run("quarantine", "show", str(held["delivery_pk"]))
    assert code == 0 and f"Data Docs: {shown['data_docs_url']}" in output
    assert "file://" not in output
    # MISSION/DELIVERY_ID names it as well as the ledger id does.
    by_name = f"{held['mission']}/{held['delivery_id']}"
    code, output = _run("quarantine", "show", by_name)
    assert code == 0 and f"{by_name} (ledger id {held['delivery_pk']}" in output
    assert "table.key_unique" in output and "reason: " in output and "None" not in output
    code, output = _run("quarantine", "list", "demo/no-such-delivery", "--json")
    assert code == 0 and json.loads(output) == []
    code, output = _run("quarantine", "show", "demo/no-such-delivery")
    assert code == 1 and "not found: no delivery demo/no-such-delivery" in output
    code, output = _run("quarantine", "show", "lyra-dr5-5")
    assert code == 1 and "MISSION/DELIVERY_ID" in output

    # The operator fixes the quarantined copy (here: the producer's corrected catalogue).
    copy = Path(held["quarantine_path"]) / "delivery"
    (copy / "catalogue" / "sources.fits").write_bytes(
        (clean / "catalogue" / "sources.fits").read_bytes()
    )
    remanifest(copy)
    code, output = _run("quarantine", "retry", by_name)
    assert code == 0
    [retried] = [p for p in settings.inbox_dir.iterdir() if "-retry-" in p.name]

    assert release_or_quarantine(ctx, retried).decision.value == "proceed"
    current = [r.release_key for r in ctx.archive.releases.list_releases("demo") if r.current]
    assert current == ["demo_dr1_v1"]
    code, output = _run("quarantine", "retry", "999")
    assert code == 1 and "no delivery 999 in the ledger" in output
    # The retried delivery was released: show says so, retry refuses (exit 1, no traceback).
    code, output = _run("quarantine", "show", by_name)
    assert code == 0 and "is not quarantined: released as demo_dr1_v1" in output
    assert "None" not in output
    code, output = _run("quarantine", "retry", by_name)
    assert code == 1 and "refused: " in output and "released, not quarantined" in output


def test_a_delivery_rejected_uncopied_is_listed_shown_and_not_retried(
    ctx: Context, settings: Settings
) -> None:
    from tests.steps import release_or_quarantine

    delivery = generated(settings.data_dir / "producer", rows=100)
    os.mkfifo(delivery / "pipe")  # cannot be copied byte-identically: rejected in place
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    moved = delivery.rename(settings.inbox_dir / delivery.name)
    release_or_quarantine(ctx, moved)

    code, output = _run("quarantine", "list", "--json")
    [rejected] = json.loads(output)
    assert rejected["state"] == "rejected" and rejected["quarantine_path"] is None
    name = f"{rejected['mission']}/{rejected['delivery_id']}"
    code, output = _run("quarantine", "show", name)
    assert code == 0 and "not copied to quarantine" in output and "named pipe" in output
    assert "[quarantine.uncopyable]" in output and "None" not in output
    code, output = _run("quarantine", "retry", name)
    assert code == 1 and "without a quarantine copy" in output


def test_quarantine_show_of_a_gate_rejection_has_its_findings_and_decision(
    ctx: Context, settings: Settings
) -> None:
    from firstlight.services.gate import assess_release, rejection_report, resolve_held
    from firstlight.services.promotion import promote_release
    from firstlight.services.quarantine import quarantine_delivery
    from tests.gate_history import drifted_magnitudes, normal, stage

    for n in range(1, 4):
        ticket = stage(ctx, normal(settings.inbox_dir, n))
        assert not assess_release(ctx, ticket).held
        promote_release(ctx, ticket)
    drifted = stage(ctx, drifted_magnitudes(settings.inbox_dir, 11))
    assert assess_release(ctx, drifted).held
    name = f"survey/{drifted.delivery_id}"
    code, output = _run("quarantine", "show", name)
    assert code == 0 and "is not quarantined: held by the gate for an operator" in output
    assert "gate: held by rules" in output and "None" not in output

    record = resolve_held(
        ctx, drifted, approve=False, reason="zero point is off", decided_by="operator:ben"
    )
    quarantine_delivery(ctx, drifted, rejection_report(record))
    report = json.loads(
        (Path(ctx.archive.ledger.lookup(name).quarantine_path or "") / "report.json").read_text()
    )
    code, output = _run("quarantine", "show", name, "--json")
    assert code == 0
    shown = json.loads(output)
    assert shown["quarantined"] is True
    assert shown["gate"]["decision"] == "rejected" and shown["gate"]["decided_by"] == "operator:ben"
    checks = [f["check"] for f in shown["findings"]]
    assert "gate.rejected" in checks and any(c.startswith("gate.drift.") for c in checks)
    assert {f["check"] for f in report["report"]["findings"]} <= set(checks)
    code, output = _run("quarantine", "show", name)
    assert code == 0 and "gate: rejected by operator:ben" in output
    assert "zero point is off" in output and "(warning)" in output
    assert "bytes and report.json in " in output and "None" not in output

    released = f"survey/{ctx.archive.ledger.entry(1).delivery_id}"
    code, output = _run("quarantine", "show", released)
    assert code == 0 and "is not quarantined: released as survey_dr1_v1" in output
    assert "gate: auto-pass" in output and "None" not in output
