"""The one reader of what is public at an instant (storage.visibility), moving the date."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from firstlight.config import Settings
from firstlight.domain.manifest import now_utc
from firstlight.services.context import Context
from firstlight.services.promotion import promote_release
from firstlight.storage.schema import observations, products
from firstlight.storage.visibility import PublicAt
from tests.deliveries import generated
from tests.steps import stage_release


def test_embargoed_parts_appear_on_their_date_and_staging_never(
    ctx: Context, settings: Settings
) -> None:
    until = now_utc() + timedelta(days=30)
    ticket = stage_release(
        ctx, generated(settings.data_dir / "producer", rows=50, embargo_until=until)
    )
    before, after = PublicAt(until - timedelta(seconds=1)), PublicAt(until)
    with ctx.archive.engine.connect() as conn:
        staged = (after.releases(conn), after.tables(conn), after.release(conn, "demo", None))
    promote_release(ctx, ticket)

    with ctx.archive.engine.connect() as conn:
        seen = {}
        for name, public in (("before", before), ("after", after)):
            releases = public.releases(conn)
            n_obs = conn.execute(public.observations(func.count(observations.c.id))).scalar()
            keys = conn.execute(select(products.c.storage_key).order_by(products.c.id)).scalars()
            files = [k for k in keys if public.product_by_key(conn, k) is not None]
            seen[name] = (
                [(r.release_key, r.current) for r in releases],
                [t.table_name for t in public.tables(conn)],
                n_obs,
                len(files),
                public.release(conn, "demo", None),
                public.release(conn, "demo", "dr1"),
            )

    current = [("demo_dr1_v1", True)]
    assert staged == ([], [], None)  # a staging release is never public
    # 2 of 5 products (spectrum, timeseries) are embargoed; the catalogue is not.
    assert seen["before"] == (current, ["sources"], 2, 3, "demo_dr1_v1", "demo_dr1_v1")
    assert seen["after"] == (current, ["sources"], 4, 5, "demo_dr1_v1", "demo_dr1_v1")
