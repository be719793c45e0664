"""The ledger decides what is new work: skip the same, reject conflicts."""

from __future__ import annotations

import pytest

from firstlight.domain.ledger import Decision, DeliveryState, Stage
from firstlight.services.context import Context


def test_new_delivery_proceeds_and_released_one_is_skipped(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = ledger.admit(
        mission="m",
        delivery_id="d1",
        manifest_sha256="a" * 64,
        release_key="m_dr1_v1",
        location="/inbox/d1",
    )
    assert first.decision is Decision.PROCEED and first.attempt == 1
    ledger.finish(first.delivery_pk, DeliveryState.RELEASED, reason="ok")
    again = ledger.admit(
        mission="m",
        delivery_id="d1",
        manifest_sha256="a" * 64,
        release_key="m_dr1_v1",
        location="/inbox/d1",
    )
    assert again.decision is Decision.SKIP
    assert again.delivery_pk == first.delivery_pk and again.attempt == 2
    entry = ledger.entry(first.delivery_pk)
    assert entry.state is DeliveryState.RELEASED and entry.attempts == 2
    assert len(ledger.entries()) == 1


def test_same_id_other_bytes_after_release_is_rejected(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = ledger.admit(
        mission="m",
        delivery_id="d1",
        manifest_sha256="a" * 64,
        release_key="m_dr1_v1",
        location="x",
    )
    ledger.finish(first.delivery_pk, DeliveryState.RELEASED)
    other = ledger.admit(
        mission="m",
        delivery_id="d1",
        manifest_sha256="b" * 64,
        release_key="m_dr1_v2",
        location="y",
    )
    assert other.decision is Decision.REJECT
    assert "already released as m_dr1_v1 with a different manifest" in other.reason
    assert other.delivery_pk != first.delivery_pk  # its own line, its own terminal state


def test_failed_delivery_may_come_again(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = ledger.admit(
        mission="m",
        delivery_id="d1",
        manifest_sha256="a" * 64,
        release_key="m_dr1_v1",
        location="x",
    )
    ledger.finish(first.delivery_pk, DeliveryState.QUARANTINED, reason="bad")
    again = ledger.admit(
        mission="m",
        delivery_id="d1",
        manifest_sha256="a" * 64,
        release_key="m_dr1_v1",
        location="x",
    )
    assert again.decision is Decision.PROCEED and again.attempt == 2
    assert ledger.entry(first.delivery_pk).state is DeliveryState.PROCESSING


def test_existing_release_of_another_delivery_is_rejected(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    first = ledger.admit(
        mission="m",
        delivery_id="d1",
        manifest_sha256="a" * 64,
        release_key="m_dr1_v1",
        location="x",
    )
    ctx.archive.releases.create_staging(
        "m_dr1_v1", mission="m", name="dr1", version="1", delivery_pk=first.delivery_pk
    )
    other = ledger.admit(
        mission="m",
        delivery_id="d2",
        manifest_sha256="c" * 64,
        release_key="m_dr1_v1",
        location="y",
    )
    assert other.decision is Decision.REJECT
    assert "release m_dr1_v1 already exists" in other.reason


def test_stage_records_success_and_failure(ctx: Context) -> None:
    ledger = ctx.archive.ledger
    adm = ledger.admit(
        mission="m", delivery_id="d1", manifest_sha256="a" * 64, release_key=None, location="x"
    )
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


def test_finish_needs_a_terminal_state(ctx: Context) -> None:
    adm = ctx.archive.ledger.admit(
        mission="m", delivery_id="d1", manifest_sha256="a" * 64, release_key=None, location="x"
    )
    with pytest.raises(ValueError, match="not a terminal state"):
        ctx.archive.ledger.finish(adm.delivery_pk, DeliveryState.PROCESSING)
