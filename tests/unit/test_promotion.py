"""Promotion: readers see the old release or the new one whole, never a mix."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from firstlight.config import Settings
from firstlight.errors import NotFoundError
from firstlight.producer.synth import synthesize_delivery
from firstlight.query.cone import ConeResult, cone_search, cone_search_observations
from firstlight.services.context import Context
from firstlight.services.promotion import promote_release
from firstlight.storage.releases import ReleaseStateError
from tests.steps import release, stage_release


def _deliver(settings: Settings, version: str, rows: int) -> Path:
    return synthesize_delivery(
        settings.data_dir / "producer",
        mission="demo",
        delivery_id=f"demo-v{version}",
        release_version=version,
        seed=int(version),
        catalogue_rows=rows,
    )


def _whole_field(ctx: Context) -> ConeResult:
    return cone_search(
        ctx.archive,
        mission="demo",
        ra=150.0,
        dec=2.0,
        radius=1.5,
        limit=100_000,
    )


def test_staging_is_invisible_and_promotion_switches_whole(
    ctx: Context, settings: Settings
) -> None:
    release(ctx, _deliver(settings, "1", 1200))
    assert {len(_whole_field(ctx).rows)} == {1200}
    ticket = stage_release(ctx, _deliver(settings, "2", 1900))

    # Staged and indexed, but not promoted: queries still see release 1 only.
    before = _whole_field(ctx)
    assert (before.release_key, len(before.rows)) == ("demo_dr1_v1", 1200)

    seen: list[tuple[str, int, bool]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            obs = cone_search_observations(
                ctx.archive,
                mission="demo",
                ra=150.0,
                dec=2.0,
                radius=3.0,
            )
            files_there = all(
                Path(unquote(urlparse(row[obs.columns.index("access_url")]).path)).is_file()
                for row in obs.rows
            )
            cat = _whole_field(ctx)
            seen.append((cat.release_key, len(cat.rows), files_there))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        summary = promote_release(ctx, ticket)
        after = _whole_field(ctx)
    finally:
        stop.set()
        reader.join()

    assert summary.previous_release_key == "demo_dr1_v1"
    assert (after.release_key, len(after.rows)) == ("demo_dr1_v2", 1900)
    assert seen, "the reader never ran"
    counts = {"demo_dr1_v1": 1200, "demo_dr1_v2": 1900}
    for key, rows, files_there in seen:
        assert rows == counts[key], f"{key} seen with {rows} rows"
        assert files_there, f"{key} visible before all its public files were stored"


def test_earlier_release_stays_queryable_by_name(ctx: Context, settings: Settings) -> None:
    release(ctx, _deliver(settings, "1", 500))
    release(ctx, _deliver(settings, "2", 800))
    old = cone_search(
        ctx.archive,
        mission="demo",
        ra=150.0,
        dec=2.0,
        radius=1.5,
        limit=10_000,
        release="demo_dr1_v1",
    )
    assert (old.release_key, len(old.rows)) == ("demo_dr1_v1", 500)
    current = [r.release_key for r in ctx.archive.releases.list_releases("demo") if r.current]
    assert current == ["demo_dr1_v2"]


def test_unindexed_release_cannot_be_promoted(ctx: Context, settings: Settings) -> None:
    from firstlight.services.ingest import ingest
    from firstlight.services.validation import validate
    from firstlight.services.verification import admit_delivery, verify_delivery

    path = _deliver(settings, "1", 300)
    ticket = admit_delivery(ctx, path)
    verify_delivery(ctx, ticket)
    validate(ctx, ticket)
    ingest(ctx, ticket)
    with pytest.raises(ReleaseStateError, match="not indexed yet"):
        ctx.archive.releases.promote("demo_dr1_v1")
    with pytest.raises(NotFoundError, match="no public release"):
        _whole_field(ctx)


def test_promoted_release_is_immutable(ctx: Context, settings: Settings) -> None:
    release(ctx, _deliver(settings, "1", 300))
    with pytest.raises(ReleaseStateError, match="immutable"):
        ctx.archive.releases.discard("demo_dr1_v1")
    with pytest.raises(ReleaseStateError, match="immutable"):
        ctx.archive.releases.create_staging(
            "demo_dr1_v1", mission="demo", name="dr1", version="1", delivery_pk=1
        )
