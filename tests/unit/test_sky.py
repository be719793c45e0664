"""HEALPix cone prefilter: every position inside a cone falls in one of its ranges."""

from __future__ import annotations

import numpy as np
import pytest

from firstlight.domain.sky import (
    angular_separation_deg,
    angular_separation_scalar,
    cone_ranges,
    healpix_index,
)


@pytest.mark.parametrize(
    ("ra", "dec", "radius"),
    [(150.0, 2.0, 0.05), (0.01, -30.0, 1.0), (359.9, 0.0, 0.5), (10.0, 89.9, 0.3), (200, -89.5, 2)],
)
def test_cone_ranges_cover_every_point_in_the_cone(ra: float, dec: float, radius: float) -> None:
    rng = np.random.default_rng(7)
    # Random points in a box around the centre, kept only when inside the cone.
    pts_ra = (ra + rng.uniform(-3, 3, 20000) * radius / max(np.cos(np.radians(dec)), 0.01)) % 360
    pts_dec = np.clip(dec + rng.uniform(-1.5, 1.5, 20000) * radius, -90, 90)
    inside = angular_separation_deg(ra, dec, pts_ra, pts_dec) <= radius
    assert inside.sum() > 100
    hpx = healpix_index(pts_ra[inside], pts_dec[inside], 16)
    ranges = cone_ranges(ra, dec, radius, 16)
    covered = np.zeros(len(hpx), dtype=bool)
    for lo, hi in ranges:
        covered |= (hpx >= lo) & (hpx <= hi)
    assert covered.all()
    assert len(ranges) <= 16  # a handful of index range scans, not thousands


def test_separation_matches_known_values() -> None:
    assert angular_separation_scalar(0, 0, 90, 0) == pytest.approx(90)
    assert angular_separation_scalar(10, 89, 190, 89) == pytest.approx(2)
    assert angular_separation_scalar(359.999, 0, 0.001, 0) == pytest.approx(0.002)
    assert float(angular_separation_deg(1, 1, 1, 1)) == 0


def test_bad_radius_is_refused() -> None:
    with pytest.raises(ValueError, match="radius"):
        cone_ranges(0, 0, 0, 16)
