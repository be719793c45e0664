"""Coverage kept per embargo group: a group shows from its date on, never a second early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import astropy.units as u
import pytest
from astropy.coordinates import Latitude, Longitude
from mocpy import MOC

from firstlight.storage.coverage import CoverageStore

WHEN = datetime(2027, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)


def _cone(ra: float, dec: float) -> MOC:
    return MOC.from_cone(Longitude(ra, u.deg), Latitude(dec, u.deg), radius=2 * u.deg, max_depth=8)


def test_groups_join_the_coverage_on_their_date(tmp_path: Path) -> None:
    store = CoverageStore(tmp_path)
    public, dark = _cone(10, 10), _cone(200, -40)
    store.save("m_dr1_v1", {None: public, WHEN: dark})

    before = store.load("m_dr1_v1", WHEN - timedelta(microseconds=1))
    at_date = store.load("m_dr1_v1", WHEN)  # stamps are whole seconds, rounded up
    after = store.load("m_dr1_v1", WHEN + timedelta(seconds=1))

    assert before == public and at_date == public
    assert after == public.union(dark)
    assert store.groups("m_dr1_v1") == [None, WHEN.replace(microsecond=0) + timedelta(seconds=1)]


def test_a_rerun_replaces_the_groups_and_unknown_releases_have_none(tmp_path: Path) -> None:
    store = CoverageStore(tmp_path)
    store.save("m_dr1_v1", {WHEN: _cone(10, 10)})
    store.save("m_dr1_v1", {None: _cone(50, 0)})

    assert store.groups("m_dr1_v1") == [None]
    assert store.load("other_dr1_v1", WHEN) is None
    with pytest.raises(ValueError, match="not a release key"):
        store.load("../etc", WHEN)
