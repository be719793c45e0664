"""Embargoed products stay dark: not in the public store, not in query results."""

from __future__ import annotations

from datetime import timedelta

from firstlight.config import Settings
from firstlight.domain.manifest import now_utc
from firstlight.query.cone import cone_search_observations
from firstlight.services.context import Context
from tests.deliveries import generated
from tests.steps import release


def _visible_types(ctx: Context) -> list[str]:
    result = cone_search_observations(
        ctx.archive,
        mission="demo",
        ra=150.0,
        dec=2.0,
        radius=3.0,
    )
    return sorted(row["dataproduct_type"] for row in result.as_dicts())


def test_future_release_date_keeps_products_dark(ctx: Context, settings: Settings) -> None:
    path = generated(
        settings.data_dir / "producer", rows=300, embargo_until=now_utc() + timedelta(days=365)
    )
    summary = release(ctx, path)

    assert (summary.public_files, summary.embargoed_files) == (3, 2)
    public = {p.name for p in settings.public_dir.rglob("*.fits")}
    dark = {p.name for p in settings.embargo_dir.rglob("*.fits")}
    assert dark and not public & dark
    assert all(
        p.parent.name in {"spectra", "timeseries"} for p in settings.embargo_dir.rglob("*.fits")
    )
    assert _visible_types(ctx) == ["image", "image"]


def test_past_release_date_is_public(ctx: Context, settings: Settings) -> None:
    path = generated(
        settings.data_dir / "producer", rows=300, embargo_until=now_utc() - timedelta(days=1)
    )
    summary = release(ctx, path)

    assert (summary.public_files, summary.embargoed_files) == (5, 0)
    assert _visible_types(ctx) == ["image", "image", "spectrum", "timeseries"]
