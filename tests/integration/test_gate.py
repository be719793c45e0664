"""The release gate through the library: histories of normal deliveries, then drifted ones."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from firstlight.analytics.gate_model import retrain, rollback
from firstlight.config import Settings
from firstlight.domain.ledger import Decision, DeliveryState
from firstlight.errors import ConflictError
from firstlight.services.context import Context, close_contexts, context_for
from firstlight.services.gate import (
    APPROVED,
    AUTO_PASS,
    HELD,
    REJECTED,
    assess_release,
    hold_claim,
    rejection_report,
    resolve_held,
)
from firstlight.services.promotion import promote_release
from firstlight.services.quarantine import quarantine_delivery
from firstlight.services.ticket import Ticket
from firstlight.services.verification import admit_delivery
from firstlight.storage.gate_records import GateRecords
from tests.gate_history import DRIFTS, drifted_tenfold, normal, stage


def _release_normals(ctx: Context, inbox: Path, numbers: range) -> None:
    for n in numbers:
        ticket = stage(ctx, normal(inbox, n))
        assessment = assess_release(ctx, ticket)
        assert assessment.decision == AUTO_PASS, assessment.reason
        promote_release(ctx, ticket)


@pytest.mark.parametrize("kind", sorted(DRIFTS))
def test_normal_deliveries_pass_and_a_drifted_one_is_held(
    ctx: Context, settings: Settings, kind: str
) -> None:
    _release_normals(ctx, settings.inbox_dir, range(1, 6))

    ticket = stage(ctx, DRIFTS[kind](settings.inbox_dir, 50))
    held = assess_release(ctx, ticket)

    assert held.held and held.findings, held.reason
    assert held.reference_release == "survey_dr1_v5"
    record = GateRecords(ctx.archive.engine).decision(ticket.delivery_pk, ticket.attempt)
    assert record is not None and record.decision == HELD and record.decided_by == "rules"
    assert record.drift == [f.to_json() for f in held.findings]
    assert record.thresholds["psi"] == settings.gate_psi
    assert "|" in held.markdown() and held.findings[0].reason in held.markdown()
    # Not promoted by itself: the mission's current release is still the last normal one.
    [current] = [r for r in ctx.archive.releases.list_releases("survey") if r.current]
    assert current.release_key == "survey_dr1_v5"
    # A normal delivery after it still passes (the held one is not the reference).
    after = stage(ctx, normal(settings.inbox_dir, 6))
    assert assess_release(ctx, after).decision == AUTO_PASS


def test_first_delivery_of_a_mission_passes_on_rules_and_features_are_recorded(
    ctx: Context, settings: Settings
) -> None:
    ticket = stage(ctx, normal(settings.inbox_dir, 1))
    assessment = assess_release(ctx, ticket)
    assert assessment.decision == AUTO_PASS and "first delivery" in assessment.reason
    features = GateRecords(ctx.archive.engine).features(ticket.delivery_pk, ticket.attempt)
    assert features is not None
    sources = features.tables["sources"]
    assert sources.rows == features.rows == 1337
    assert set(sources.columns) >= {"phot_g_mean_mag", "ra", "dec", "bp_rp"}
    pmra = sources.columns["pmra"]  # two-parameter solutions have no proper motion
    assert 0.05 < pmra.null_fraction + pmra.nan_fraction < 0.5
    assert {"verify", "ingest", "index"} <= set(features.stage_seconds)
    assert features.instruments == ["IMAGER"] and features.sky_cells
    assert len(features.gate_vector) == 8
    # Asking again (a rerun of the step) returns the recorded decision, not a new one.
    assert assess_release(ctx, ticket).decided_by == assessment.decided_by


def test_operator_approves_or_rejects_a_held_release(ctx: Context, settings: Settings) -> None:
    _release_normals(ctx, settings.inbox_dir, range(1, 4))
    approved = stage(ctx, drifted_tenfold(settings.inbox_dir, 10))
    assert assess_release(ctx, approved).held
    record = resolve_held(
        ctx, approved, approve=True, reason="a deep field, expected", decided_by="operator:ana"
    )
    assert record.decision == APPROVED and record.decided_by == "operator:ana"
    promote_release(ctx, approved)
    assert ctx.archive.ledger.entry(approved.delivery_pk).state is DeliveryState.RELEASED

    rejected = stage(ctx, DRIFTS["magnitudes"](settings.inbox_dir, 11))
    assert assess_release(ctx, rejected).held
    record = resolve_held(
        ctx, rejected, approve=False, reason="zero point is off", decided_by="operator:ben"
    )
    report = rejection_report(record)
    assert not report.ok and "zero point is off" in report.summary()
    quarantine_delivery(ctx, rejected, report)
    entry = ctx.archive.ledger.entry(rejected.delivery_pk)
    assert entry.state is DeliveryState.QUARANTINED and "zero point" in (entry.reason or "")
    with pytest.raises(ConflictError, match="not held"):
        resolve_held(ctx, rejected, approve=True, reason="changed my mind", decided_by="x")


def test_a_held_delivery_keeps_its_claim_past_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRSTLIGHT_CLAIM_LEASE_SECONDS", "1")
    settings = Settings(data_dir=tmp_path / "var")
    ctx = context_for(settings)
    try:
        _release_normals(ctx, settings.inbox_dir, range(1, 3))
        path = drifted_tenfold(settings.inbox_dir, 10)
        first = admit_delivery(ctx, path, claim_token="run-a")
        ticket = _staged(ctx, first)
        assert assess_release(ctx, ticket).held
        hold_claim(ctx, ticket, "run-a")
        time.sleep(1.2)  # the ordinary lease has run out
        echo = admit_delivery(ctx, path, claim_token="run-b")
        assert echo.decision is Decision.SKIP and "in progress" in echo.reason
        # Without the hold, the lease lets another run take a stale claim.
        other = drifted_tenfold(settings.inbox_dir / "other", 11)
        stale = admit_delivery(ctx, other, claim_token="run-c")
        assert stale.decision is Decision.PROCEED
        time.sleep(1.2)
        assert admit_delivery(ctx, other, claim_token="run-d").decision is Decision.PROCEED
    finally:
        close_contexts()


def _staged(ctx: Context, admitted: Ticket) -> Ticket:
    from firstlight.services.indexing import index_release
    from firstlight.services.ingest import ingest
    from firstlight.services.verification import verify_delivery

    verify_delivery(ctx, admitted)
    ingest(ctx, admitted)
    index_release(ctx, admitted)
    return admitted


def _decide(ctx: Context, ticket: Ticket, *, approve: bool) -> None:
    assessment = assess_release(ctx, ticket)
    if not assessment.held:
        promote_release(ctx, ticket)
        return
    record = resolve_held(ctx, ticket, approve=approve, reason="test", decided_by="operator:t")
    if approve:
        promote_release(ctx, ticket)
    else:
        quarantine_delivery(ctx, ticket, rejection_report(record))


def test_retraining_installs_a_model_and_never_a_worse_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRSTLIGHT_GATE_MIN_HISTORY", "8")
    settings = Settings(data_dir=tmp_path / "var")
    ctx = context_for(settings)
    records = GateRecords(ctx.archive.engine)
    inbox = settings.inbox_dir
    try:
        _release_normals(ctx, inbox, range(1, 8))
        assert retrain(ctx).installed is False  # 6 to learn from (one held back): rules only
        _release_normals(ctx, inbox, range(8, 13))
        first = retrain(ctx)
        assert first.installed and first.current == 1, first.detail
        v1 = records.current_model()
        assert v1 is not None and v1.samples >= 8 and v1.window_from is not None
        # The model scores the next delivery; a thirtyfold one is anomalous to it.
        jump = stage(ctx, drifted_tenfold(inbox, 13, rows=45_000))
        assessment = assess_release(ctx, jump)
        assert assessment.model_version == 1 and assessment.decided_by == "model v1"
        assert assessment.anomaly_score is not None and assessment.anomaly_threshold is not None
        assert assessment.anomaly_score > assessment.anomaly_threshold
        # Operators approve jumps up and down (a contaminated history) ...
        record = resolve_held(ctx, jump, approve=True, reason="ok", decided_by="operator:t")
        assert record.decision == APPROVED
        promote_release(ctx, jump)
        for n in range(14, 19):
            path = normal(inbox, n) if n % 2 == 0 else drifted_tenfold(inbox, n, rows=45_000)
            _decide(ctx, stage(ctx, path), approve=True)
        # ... then reject tenfold ones: the held-back window is where that shows.
        for n in range(19, 21):
            _decide(ctx, stage(ctx, normal(inbox, n)), approve=True)
        for n in range(21, 24):
            _decide(ctx, stage(ctx, drifted_tenfold(inbox, n)), approve=False)
        assert [d.decision for d in _decisions(records)][-3:] == [REJECTED] * 3
        outcome = retrain(ctx)
        assert not outcome.installed and outcome.current == 1, outcome.detail
        candidate = records.model(outcome.version or 0)
        assert candidate is not None and candidate.state == "rejected"
        holdout = candidate.metrics["holdout"]
        assert holdout["balanced_error"] > candidate.metrics["current_on_holdout"]["balanced_error"]
        # Rollback makes an earlier version current again.
        records.set_current_model(outcome.version or 0)
        assert rollback(ctx).version == 1
        current = records.current_model()
        assert current is not None and current.version == 1
    finally:
        close_contexts()


def _decisions(records: GateRecords) -> list:  # type: ignore[type-arg]
    return [h for h in records.history() if h.decision is not None]


def test_forecast_at_arrival_and_its_error_in_stats(ctx: Context, settings: Settings) -> None:
    from firstlight.analytics.forecast import forecast_time_to_data, predict
    from firstlight.analytics.stats import delivery_stats

    inbox = settings.inbox_dir
    made = []
    for n in range(1, 11):
        ticket = stage(ctx, normal(inbox, n))
        made.append(forecast_time_to_data(ctx, ticket))
        assess_release(ctx, ticket)
        promote_release(ctx, ticket)
    assert made[0].predicted_seconds is None and made[0].model == "none"
    assert made[1].model == "median (1)" and made[-1].model == "linear (9)"
    assert all(f.inputs["files"] == 2 for f in made)  # an image and a catalogue
    forecasts = {
        k: f.predicted_seconds for k, f in GateRecords(ctx.archive.engine).forecasts().items()
    }
    summary = delivery_stats(ctx.archive.ledger, "survey", forecasts)
    assert summary.forecasts_compared == 9
    assert summary.forecast_mean_abs_error_seconds is not None
    errors = [d.forecast_error_seconds for d in summary.per_delivery[1:]]
    assert summary.forecast_mean_abs_error_seconds == pytest.approx(
        sum(abs(e) for e in errors if e is not None) / 9
    )
    from typer.testing import CliRunner

    from firstlight.cli import app

    shown = CliRunner().invoke(app, ["stats", "--mission", "survey"])
    assert shown.exit_code == 0, shown.output
    assert "forecast at arrival: mean absolute error" in shown.output
    assert "over 9 released deliveries" in shown.output
    # The line follows size: a history where time grows with bytes predicts more for more.
    history = [({"mib": m, "files": 3.0, "catalogue_mib": m}, 2.0 + 0.5 * m) for m in range(1, 11)]
    small = predict(history, {"mib": 2.0, "files": 3.0, "catalogue_mib": 2.0})
    large = predict(history, {"mib": 40.0, "files": 3.0, "catalogue_mib": 40.0})
    assert small.predicted_seconds == pytest.approx(3.0, rel=0.01)
    assert large.predicted_seconds == pytest.approx(22.0, rel=0.01)


def test_model_cli_lists_shows_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from firstlight.cli import app

    monkeypatch.setenv("FIRSTLIGHT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FIRSTLIGHT_GATE_MIN_HISTORY", "5")
    runner = CliRunner()
    ctx = context_for(Settings())
    try:
        assert "no model yet" in runner.invoke(app, ["model", "list"]).output
        _release_normals(ctx, ctx.settings.inbox_dir, range(1, 8))
        result = runner.invoke(app, ["model", "retrain"])
        assert "model v1" in result.output and "installed" in result.output
        _release_normals(ctx, ctx.settings.inbox_dir, range(8, 10))
        assert "model v2" in runner.invoke(app, ["model", "retrain"]).output
        listed = runner.invoke(app, ["model", "list", "--json"])
        assert [(m["version"], m["state"]) for m in json.loads(listed.output)] == [
            (1, "retired"),
            (2, "current"),
        ]
        shown = json.loads(runner.invoke(app, ["model", "show", "2", "--json"]).output)
        assert shown["features"][0] == "log10_rows_ratio" and shown["threshold"] > 0
        assert runner.invoke(app, ["model", "show", "9"]).exit_code == 1
        result = runner.invoke(app, ["model", "rollback"])
        assert result.exit_code == 0 and "model v1" in result.output
        assert runner.invoke(app, ["model", "rollback"]).exit_code == 1  # nothing older
    finally:
        close_contexts()


def test_gate_on_postgresql_holds_a_renamed_column(pg_url: str, tmp_path: Path) -> None:
    ctx = context_for(Settings(data_dir=tmp_path / "pg", database_url=pg_url))
    try:
        _release_normals(ctx, ctx.settings.inbox_dir, range(1, 4))
        ticket = stage(ctx, DRIFTS["renamed_column"](ctx.settings.inbox_dir, 9))
        held = assess_release(ctx, ticket)
        assert held.held and {f.kind for f in held.findings} == {"column_missing", "column_added"}
        record = resolve_held(ctx, ticket, approve=True, reason="renamed", decided_by="operator:p")
        assert record.decision == APPROVED
        promote_release(ctx, ticket)
        # The approved release is now the reference: the next delivery with the new name passes.
        again = stage(ctx, DRIFTS["renamed_column"](ctx.settings.inbox_dir, 10))
        assert assess_release(ctx, again).decision == AUTO_PASS
    finally:
        close_contexts()


def test_cli_decides_releases_held_by_ingest_without_prefect(
    ctx: Context, settings: Settings
) -> None:
    """`ingest` returns at once when held and says how to decide; `gate` then finishes it."""
    from typer.testing import CliRunner

    from firstlight.cli import app
    from firstlight.services.pipeline import run_release

    runner = CliRunner()
    _release_normals(ctx, settings.inbox_dir, range(1, 4))
    approved = drifted_tenfold(settings.inbox_dir, 10)
    rejected = drifted_tenfold(settings.inbox_dir, 11)

    result = runner.invoke(app, ["ingest", str(approved)])
    assert result.exit_code == 3, result.output
    assert "firstlight gate approve survey/survey-0010 --reason" in result.output
    assert "firstlight gate reject survey/survey-0010 --reason" in result.output
    again = runner.invoke(app, ["ingest", str(approved)])  # the same delivery, still held
    assert again.exit_code == 3 and "firstlight gate approve survey/survey-0010" in again.output
    assert run_release(ctx, rejected).status == "held"

    listed = runner.invoke(app, ["held", "--json"])
    assert listed.exit_code == 0, listed.output
    held = {h["label"]: h for h in json.loads(listed.output)}
    assert set(held) == {"survey/survey-0010", "survey/survey-0011"}
    assert held["survey/survey-0010"]["release_key"] == "survey_dr1_v10"
    assert held["survey/survey-0010"]["flow_run_id"] is None  # held in-process
    assert "drift" in held["survey/survey-0010"]["reason"]
    assert held["survey/survey-0010"]["held_since"]
    table = runner.invoke(app, ["held"]).output
    assert "survey/survey-0011" in table and "firstlight gate approve" in table

    # Both flags are required: nothing is decided without a reason and a name.
    refused = runner.invoke(app, ["gate", "approve", "survey/survey-0010", "--reason", "ok"])
    assert refused.exit_code == 2
    blank = ["gate", "reject", "survey/survey-0010", "--reason", "x", "--operator", " "]
    assert runner.invoke(app, blank).exit_code == 1
    unknown = runner.invoke(
        app, ["gate", "approve", "survey/nope", "--reason", "x", "--operator", "a"]
    )
    assert unknown.exit_code == 1 and "not held" in unknown.output
    assert ctx.archive.ledger.entry(held["survey/survey-0010"]["delivery_pk"]).state is (
        DeliveryState.PROCESSING
    )

    ok = runner.invoke(
        app,
        ["gate", "approve", "survey/survey-0010", "--reason", "deep field", "--operator", "ana"],
    )
    assert ok.exit_code == 0, ok.output
    entry = ctx.archive.ledger.entry(held["survey/survey-0010"]["delivery_pk"])
    assert entry.state is DeliveryState.RELEASED
    record = GateRecords(ctx.archive.engine).decision(entry.delivery_pk, entry.attempts)
    assert record is not None and record.decision == APPROVED
    assert record.decided_by == "operator:ana" and "deep field" in (record.reason or "")
    assert ctx.archive.releases.get("survey_dr1_v10") is not None

    no = runner.invoke(
        app,
        ["gate", "reject", "survey/survey-0011", "--reason", "zero point off", "--operator", "ben"],
    )
    assert no.exit_code == 0, no.output
    entry = ctx.archive.ledger.entry(held["survey/survey-0011"]["delivery_pk"])
    assert entry.state is DeliveryState.QUARANTINED and "zero point off" in (entry.reason or "")
    assert entry.quarantine_path and not rejected.exists()
    record = GateRecords(ctx.archive.engine).decision(entry.delivery_pk, entry.attempts)
    assert (
        record is not None and record.decision == REJECTED and record.decided_by == "operator:ben"
    )

    # Decided once: a second answer, and an unknown delivery, are refused.
    late = ["gate", "reject", "survey/survey-0010", "--reason", "x", "--operator", "cy"]
    assert runner.invoke(app, late).exit_code == 1
    assert runner.invoke(app, ["held", "--json"]).output.strip() == "[]"
