"""The remembered list of public tables (query.public.public_tables_now) is the list
public_tables gives at that instant: across a promotion, an embargoed catalogue's date
and a second release."""

from __future__ import annotations

from datetime import timedelta

from firstlight.config import Settings
from firstlight.domain.manifest import now_utc
from firstlight.query.public import ObscoreSource, public_tables, public_tables_now
from firstlight.services.context import Context
from firstlight.services.promotion import promote_release
from tests.deliveries import generated
from tests.steps import stage_release


def test_remembered_tables_follow_promotions_and_release_dates(
    ctx: Context, settings: Settings
) -> None:
    until = now_utc() + timedelta(days=30)
    instants = (until - timedelta(seconds=1), until)
    seen: list[list[str]] = []

    def look() -> None:
        for now in instants:
            with ctx.archive.engine.connect() as conn:
                fresh = public_tables(conn, ctx.archive, now=now)
                remembered = public_tables_now(conn, ctx.archive, now=now)
                again = public_tables_now(conn, ctx.archive, now=now)
            assert remembered == fresh == again
            obscore = [t.source for t in again if isinstance(t.source, ObscoreSource)]
            assert [s.now for s in obscore] == [now]  # the instant asked, not the cached one
            seen.append([t.table_name for t in fresh])

    look()  # nothing promoted yet
    ticket = stage_release(
        ctx, generated(settings.data_dir / "producer", rows=50, embargo_until=until)
    )
    look()  # staged only
    promote_release(ctx, ticket)
    look()  # promoted
    promote_release(
        ctx, stage_release(ctx, generated(settings.data_dir / "producer2", version="2", rows=50))
    )
    look()  # a second release, now current

    names = seen
    assert "demo.sources" not in names[2]  # before promotion
    assert "demo.sources" in names[4] and "demo_dr1_v1.sources" in names[4]
    assert "demo_dr1_v2.sources" in names[6]
