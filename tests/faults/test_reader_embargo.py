"""The database is the embargo guard: the query service's role, reading every table and
view directly, sees only what is public at the moment (issue 12 item 3).

Before: as ``firstlight_reader``, ``observations`` counted embargoed rows, ``products``
listed embargoed files' keys and hashes, and an embargoed catalogue read whole through
its release schema and the mission's view. The dates are moved, not the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from firstlight.producer.manifest_builder import build_manifest, write_manifest
from firstlight.producer.synth import synthesize_delivery
from firstlight.services.context import Context
from firstlight.services.embargo import release_embargoed
from firstlight.storage.reader import open_query_engine
from tests.deliveries import generated
from tests.faults import invariants
from tests.steps import release, stage_release

ROWS = 300


def _dark_delivery(root: Path, until: datetime) -> Path:
    """Mission "dark": a catalogue and an image, all embargoed until ``until``."""
    path = synthesize_delivery(
        root, mission="dark", delivery_id="dark-v1", catalogue_rows=ROWS, images=1, spectra=0,
        timeseries=0, center_ra=40.0, center_dec=-30.0,
    )  # fmt: skip
    (path / "manifest.json").unlink()
    write_manifest(
        path,
        build_manifest(
            path, mission="dark", delivery_id="dark-v1", release_name="dr1",
            release_version="1", producer="tests", release_date=until,
        ),
    )  # fmt: skip
    return path


@pytest.fixture
def reader(pg: Context, tmp_path: Path) -> Iterator[Engine]:
    until = datetime.now(UTC) + timedelta(days=365)
    release(pg, generated(tmp_path / "demo", rows=ROWS, embargo_until=until))
    release(pg, _dark_delivery(tmp_path / "dark", until))
    stage_release(pg, generated(tmp_path / "demo2", version="2", rows=ROWS))  # never promoted
    engine = open_query_engine(pg.settings)
    yield engine
    engine.dispose()


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_reader_role_sees_only_what_is_public_now(pg: Context, reader: Engine) -> None:
    owner = pg.archive.engine
    counts = invariants.reader_sees_nothing_embargoed(pg, reader)
    embargoed_obs = _count(
        owner, "SELECT count(*) FROM observations WHERE obs_release_date > now()"
    )
    assert embargoed_obs > 0
    staged = _count(owner, "SELECT count(*) FROM observations WHERE release_key = 'demo_dr1_v2'")
    all_obs = _count(owner, "SELECT count(*) FROM observations")
    assert counts["public.observations"] == all_obs - embargoed_obs - staged
    assert counts["dark_dr1_v1.sources"] == -1 and counts["dark.sources"] == -1
    assert counts["demo_dr1_v1.sources"] == ROWS and counts["demo.sources"] == ROWS
    assert counts["public.deliveries"] == -1
    assert counts["public.releases"] == 2  # the staging release is not listed

    # The release date comes: move the dates (not the clock), run the embargo schedule.
    with owner.begin() as conn:
        past = "now() - interval '1 second'"
        conn.execute(text(f"UPDATE products SET release_date = {past} WHERE release_date > now()"))
        conn.execute(
            text(
                f"UPDATE observations SET obs_release_date = {past} WHERE obs_release_date > now()"
            )
        )
        conn.execute(
            text(f"UPDATE release_tables SET release_date = {past} WHERE release_date > now()")
        )
    rows_visible_at_once = _count(reader, "SELECT count(*) FROM observations")
    assert rows_visible_at_once == all_obs - staged  # row security needs no rebuild
    release_embargoed(pg)  # grants the catalogues whose date has passed
    after = invariants.reader_sees_nothing_embargoed(pg, reader)
    assert after["dark_dr1_v1.sources"] == ROWS and after["dark.sources"] == ROWS
    assert after["public.products"] == _count(
        owner,
        "SELECT count(*) FROM products p JOIN releases r USING (release_key) "
        "WHERE r.promoted_at IS NOT NULL",
    )
    assert invariants.public_files_match(pg) > 0


@pytest.mark.faults
def test_a_date_moved_back_into_the_future_is_dark_again(pg: Context, reader: Engine) -> None:
    """An operator extending an embargo: rows vanish at once, the catalogue's grant goes."""
    with pg.archive.engine.begin() as conn:
        conn.execute(text("UPDATE release_tables SET release_date = now() + interval '30 days'"))
        conn.execute(text("UPDATE observations SET obs_release_date = now() + interval '30 days'"))
    release_embargoed(pg)
    counts = invariants.reader_sees_nothing_embargoed(pg, reader)
    assert counts["demo.sources"] == -1 and counts["public.observations"] == 0
