"""The ledger decides what is new work: skip the same, reject conflicts, one claim at a time."""

from __future__ import annotations

import pytest

from firstlight.domain.findings import Finding, Report, Severity
from firstlight.domain.ledger import Admission, Decision, DeliveryState, Stage
from firstlight.services.context import Context
from firstlight.storage.ledger import Ledger


def _admit(
    ledger: Ledger,
    sha: str = "a" * 64,
    *,
    token: str = "run-1",
    delivery_id: str = "d1",
    release_key: str | None = "m_dr1_v1",
) -> Admission:
    return ledger.admit(
        mission="m",
        delivery_id=delivery_id,
        manifest_sha256=sha,
        release_key=release_key,
        location=f"/inbox/{delivery_id}",
        claim_token=token,
    )


def test_new_delivery_proceeds_and_released_one_is_skipped(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = _admit(ledger)
    assert first.decision is Decision.PROCEED and first.attempt == 1
    ledger.finish(first.delivery_pk, DeliveryState.RELEASED, reason="ok")

    again = _admit(ledger, token="run-2")

    assert again.decision is Decision.SKIP and again.delivery_pk == first.delivery_pk
    entry = ledger.entry(first.delivery_pk)
    assert entry.state is DeliveryState.RELEASED and entry.attempts == 1
    [skip] = [s for s in ledger.stages(first.delivery_pk) if s.stage is Stage.ADMIT]
    assert skip.outcome == "skipped" and "already released" in (skip.detail or "")
    assert len(ledger.entries()) == 1


def test_same_id_other_bytes_after_release_is_rejected(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = _admit(ledger)
    ledger.finish(first.delivery_pk, DeliveryState.RELEASED)

    other = _admit(ledger, "b" * 64, token="run-2", release_key="m_dr1_v2")

    assert other.decision is Decision.REJECT
    assert "already released as m_dr1_v1 with a different manifest" in other.reason
    assert other.delivery_pk != first.delivery_pk  # its own line, its own terminal state


def test_delivery_in_progress_elsewhere_is_skipped(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = _admit(ledger, token="run-1")
    duplicate = _admit(ledger, token="run-2")
    assert duplicate.decision is Decision.SKIP
    assert "in progress in another run" in duplicate.reason
    resumed = _admit(ledger, token="run-1")  # the same run coming back resumes its claim
    assert resumed.decision is Decision.PROCEED and resumed.attempt == first.attempt


def test_expired_claim_is_taken_over(ctx: Context) -> None:
    impatient = Ledger(ctx.archive.engine, claim_lease_seconds=0)
    first = _admit(impatient, token="crashed-run")
    taken = _admit(impatient, token="run-2")
    assert taken.decision is Decision.PROCEED and taken.attempt == first.attempt + 1


def test_failed_delivery_may_come_again(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = _admit(ledger)
    ledger.finish(first.delivery_pk, DeliveryState.QUARANTINED, reason="bad")
    again = _admit(ledger, token="run-2")
    assert again.decision is Decision.PROCEED and again.attempt == 2
    assert ledger.entry(first.delivery_pk).state is DeliveryState.PROCESSING


def test_existing_release_of_another_delivery_is_rejected(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = _admit(ledger)
    ctx.archive.releases.create_staging(
        "m_dr1_v1", mission="m", name="dr1", version="1", delivery_pk=first.delivery_pk
    )
    other = _admit(ledger, "c" * 64, token="run-2", delivery_id="d2")
    assert other.decision is Decision.REJECT
    assert "release m_dr1_v1 already exists" in other.reason


def test_stage_records_success_and_failure(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    adm = _admit(ledger, release_key=None)
    with ledger.stage(adm.delivery_pk, adm.attempt, Stage.VERIFY):
        pass
    with pytest.raises(RuntimeError), ledger.stage(adm.delivery_pk, adm.attempt, Stage.VALIDATE):
        raise RuntimeError("disk full")
    stages = ledger.stages(adm.delivery_pk)
    assert [(s.stage, s.outcome) for s in stages] == [
        (Stage.VERIFY, "ok"),
        (Stage.VALIDATE, "failed"),
    ]
    assert stages[1].detail == "disk full" and stages[0].seconds >= 0


def test_findings_are_kept_per_attempt(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    adm = _admit(ledger, release_key=None)
    report = Report(
        "validate",
        [
            Finding(
                "table.key_unique",
                "2 rows share ids",
                file="c.fits",
                column="id",
                failing_count=2,
                sample_rows=(3, 7),
            ),
            Finding(
                "fits.structure", "fixed a card", file="i.fits", hdu=0, severity=Severity.WARNING
            ),
        ],
    )
    ledger.record_findings(adm.delivery_pk, adm.attempt, report)
    assert ledger.findings(adm.delivery_pk) == report.findings


def test_finish_needs_a_terminal_state(ctx: Context) -> None:
    adm = _admit(ctx.archive.ledger, release_key=None)
    with pytest.raises(ValueError, match="not a terminal state"):
        ctx.archive.ledger.finish(adm.delivery_pk, DeliveryState.PROCESSING)
