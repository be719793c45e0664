"""The operations page over a ledger with a quarantined delivery and a held one: reasons,
the report link, the held run's link to the Prefect UI (its form is there)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from firstlight.domain.manifest import now_utc
from firstlight.query.service.app import ServiceThread, create_app, server
from firstlight.services.context import Context
from firstlight.storage.gate_records import GateDecisionRecord, GateRecords
from tests.deliveries import generated
from tests.steps import release_or_quarantine

RUN_ID = "0b5c3c4e-3f7e-4c55-9a53-6c1d0b7e2f10"


def test_operations_lists_quarantine_and_held_releases(ctx: Context) -> None:
    broken = generated(ctx.settings.inbox_dir, rows=50)
    (broken / "images" / "demo_field01_g.fits").write_bytes(b"not the bytes listed")
    release_or_quarantine(ctx, broken)
    held = ctx.archive.ledger.admit(
        mission="demo", delivery_id="demo-held", manifest_sha256="a" * 64, release_key=None,
        location=str(ctx.settings.inbox_dir / "held"), claim_token=RUN_ID,
    )  # fmt: skip
    now = now_utc()
    GateRecords(ctx.archive.engine).save_decision(
        GateDecisionRecord(
            delivery_pk=held.delivery_pk, attempt=1, decision="held", decided_by="rules",
            reason="row_count: 3x the current release", drift=[], anomaly_score=None,
            anomaly_threshold=None, thresholds={}, model_version=None, held_at=now,
            decided_at=now,
        )
    )  # fmt: skip
    ctx.settings.prefect_ui_url = "http://prefect.example:4200"

    app = create_app(ctx.settings, clock=lambda: now + timedelta(seconds=1))
    service = ServiceThread(server(ctx.settings, host="127.0.0.1", port=0, app=app))
    service.start()
    try:
        client = httpx.Client(base_url=service.url, timeout=60)
        page = client.get("/operations")
        data = client.get("/operations", headers={"Accept": "application/json"}).json()
        (entry,) = data["operations"]["quarantine"]
        report = client.get(f"/operations/reports/{entry['delivery_pk']}")
        missing = client.get(f"/operations/reports/{held.delivery_pk}")
        again = generated(ctx.settings.inbox_dir / "v2", version="2", rows=50)
        (again / "images" / "demo_field01_g.fits").write_bytes(b"other bytes")
        release_or_quarantine(ctx, again)  # the ledger changes: the page must not be stale
        later = client.get("/operations?format=json").json()["operations"]
        client.close()
    finally:
        service.stop()

    assert entry["state"] == "quarantined" and "demo_field01_g.fits" in entry["reason"]
    assert report.status_code == 200 and report.json()["findings"]
    assert missing.status_code == 404  # only quarantined and rejected deliveries have one
    (waiting,) = data["operations"]["held"]
    assert (waiting["delivery_id"], waiting["flow_run_id"]) == ("demo-held", RUN_ID)
    assert f'href="http://prefect.example:4200/runs/flow-run/{RUN_ID}"' in page.text
    assert "row_count: 3x the current release" in page.text
    assert data["operations"]["by_state"] == {"quarantined": 1, "processing": 1}
    assert later["by_state"] == {"quarantined": 2, "processing": 1}
    assert [q["delivery_id"] for q in later["quarantine"]] == ["demo-v2", "demo-v1"]


def test_operations_can_be_kept_off_a_public_port(ctx: Context) -> None:
    ctx.settings.pages_operations = False
    app = create_app(ctx.settings)
    service = ServiceThread(server(ctx.settings, host="127.0.0.1", port=0, app=app))
    service.start()
    try:
        page = httpx.get(f"{service.url}/operations", timeout=60)
        plot = httpx.get(f"{service.url}/operations/time-to-data.png", timeout=60)
        home = httpx.get(f"{service.url}/", timeout=60)
    finally:
        service.stop()

    assert (page.status_code, plot.status_code) == (404, 404)
    assert home.status_code == 200 and "/operations" not in home.text
