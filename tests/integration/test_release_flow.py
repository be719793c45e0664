"""The release flow under Prefect: released, quarantined, or skipped; never half."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from firstlight.config import Settings
from firstlight.domain.findings import DeliveryRejected
from firstlight.domain.ledger import DeliveryState, Stage
from firstlight.formats.digest import sha256_file
from firstlight.query.cone import cone_search
from firstlight.services.context import Context
from flows.release_delivery import release_delivery
from tests.deliveries import duplicate_source_ids, generated, tree_digest
from tests.steps import archive_counts

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("prefect_api")]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def prefect_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record the run's and its tasks' loggers write (Prefect's own loggers included)."""
    handler = _Records()
    logger = logging.getLogger("prefect")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def test_delivery_in_the_inbox_becomes_the_current_release(
    ctx: Context, settings: Settings, prefect_logs: list[logging.LogRecord]
) -> None:
    path = generated(settings.inbox_dir, rows=2500)
    delivered = tree_digest(path)

    outcome = release_delivery(str(path))

    assert outcome.status == "released" and outcome.release_key == "demo_dr1_v1"
    [rel] = ctx.archive.releases.list_releases("demo")
    assert rel.current and rel.promoted_at is not None
    entry = ctx.archive.ledger.entry(outcome.delivery_pk)
    assert entry.state is DeliveryState.RELEASED
    stages = [(s.stage, s.outcome) for s in ctx.archive.ledger.stages(outcome.delivery_pk)]
    assert stages == [
        (Stage.VERIFY, "ok"),
        (Stage.VALIDATE, "ok"),
        (Stage.INGEST, "ok"),
        (Stage.INDEX, "ok"),
        (Stage.GATE, "ok"),
        (Stage.PROMOTE, "ok"),
    ]
    # Every file in the public store under its versioned key, bytes unchanged.
    public = settings.public_dir / "demo" / "dr1" / "1"
    for rel_path, data in delivered.items():
        if rel_path != "manifest.json":
            assert (public / rel_path).read_bytes() == data
    assert not path.exists(), "the inbox copy stays until the ledger says released"
    # The catalogue answers a cone search: every row inside the cone, nearest first.
    result = cone_search(
        ctx.archive,
        mission="demo",
        ra=150.0,
        dec=2.0,
        radius=0.3,
        limit=10_000,
    )
    distances = [row[-1] for row in result.rows]
    assert result.rows and all(d <= 0.3 for d in distances) and distances == sorted(distances)
    assert archive_counts(ctx)["catalogue_tables"] == 1
    # The run's log tells validation's and ingest's rows done of all, a few lines a pass.
    messages = [r.getMessage() for r in prefect_logs]
    for done in ("checked", "expectations", "loaded"):
        said = [m for m in messages if m.startswith(f"catalogue/sources.fits {done}: ")]
        assert said and said[-1].endswith("2,500 / 2,500 rows (100%)"), messages
        assert len(said) <= 4  # 700-row chunks: one line each at most, the end once


def test_failing_delivery_is_quarantined_and_leaves_nothing(
    ctx: Context, settings: Settings, prefect_logs: list[logging.LogRecord]
) -> None:
    path = generated(settings.inbox_dir, rows=900)
    duplicate_source_ids(path, rows=(3, 7))
    delivered = tree_digest(path)

    state = release_delivery(str(path), return_state=True)

    assert state.is_failed()
    assert "table.key_unique" in str(state.message)
    with pytest.raises(DeliveryRejected, match="source_id"):
        state.result()
    [entry] = ctx.archive.ledger.entries()
    assert entry.state is DeliveryState.QUARANTINED and entry.quarantine_path
    quarantined = Path(entry.quarantine_path)
    assert tree_digest(quarantined / "delivery") == delivered  # byte-identical
    report = json.loads((quarantined / "report.json").read_text())
    [finding] = [f for f in report["report"]["findings"] if f["check"] == "table.key_unique"]
    assert finding["file"] == "catalogue/sources.fits" and finding["column"] == "source_id"
    assert set(finding["sample_rows"]) >= {7}
    assert archive_counts(ctx) == dict.fromkeys(
        ("releases", "products", "observations", "release_tables", "catalogue_tables"), 0
    )
    assert not any(settings.public_dir.rglob("*.fits"))
    # An expected rejection: one clear error line, no traceback anywhere in the run's logs.
    assert [r for r in prefect_logs if r.exc_info or "Traceback" in r.getMessage()] == []
    errors = [r.getMessage() for r in prefect_logs if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "quarantined" in errors[0] and "table.key_unique" in errors[0]
    # The run carries its findings as a table: file, check, rows, message.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    # The Prefect API is the session's: other tests' runs have findings artifacts too.
    this_run = ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["findings-demo"]), flow_run_id=this_run
            )
        )
    assert artifact.type == "table"
    rows = json.loads(str(artifact.data))
    [row] = [r for r in rows if r["check"] == "table.key_unique"]
    assert row["file"] == "catalogue/sources.fits" and "7" in row["rows"]
    assert "source_id" in row["message"]


def test_failure_after_ingest_drops_the_staging_release(
    ctx: Context, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery rejected at promotion (fixity) leaves no rows and no tables."""
    from firstlight.domain.findings import Finding, Report
    from firstlight.services import promotion

    def reject(*_: object) -> None:
        raise DeliveryRejected(
            Report("promote", [Finding(check="promote.fixity", reason="sha256 mismatch")])
        )

    monkeypatch.setattr(promotion, "promote_release", reject)
    monkeypatch.setattr("tasks.steps.promote_release", reject)
    path = generated(settings.inbox_dir, rows=600)

    state = release_delivery(str(path), return_state=True)

    assert state.is_failed() and "promote.fixity" in str(state.message)
    assert archive_counts(ctx) == dict.fromkeys(
        ("releases", "products", "observations", "release_tables", "catalogue_tables"), 0
    )


def test_redelivering_the_same_delivery_changes_nothing(ctx: Context, settings: Settings) -> None:
    path = generated(settings.data_dir / "producer", rows=700)
    first = release_delivery(str(path))
    counts = archive_counts(ctx)
    public = {p: sha256_file(p) for p in settings.public_dir.rglob("*") if p.is_file()}

    again = release_delivery(str(path))

    assert (first.status, again.status) == ("released", "skipped")
    assert again.delivery_pk == first.delivery_pk
    assert archive_counts(ctx) == counts
    assert {p: sha256_file(p) for p in settings.public_dir.rglob("*") if p.is_file()} == public
    [entry] = ctx.archive.ledger.entries()
    assert entry.state is DeliveryState.RELEASED and entry.attempts == 1
    admit = [s for s in ctx.archive.ledger.stages(entry.delivery_pk) if s.stage is Stage.ADMIT]
    assert [(s.outcome, s.detail) for s in admit] == [
        ("skipped", "already released as demo_dr1_v1; nothing to do")
    ]
