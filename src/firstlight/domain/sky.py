"""Positions on the sky: HEALPix indexing and angular distances (pure numpy).

Stored positions carry a NESTED HEALPix index at a fine order. A pixel at a
coarser order k covers one contiguous range of fine indexes, so a cone search
becomes a few B-tree range scans (the prefilter) followed by an exact
distance test: this works on any database with an ordinary index.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import numpy.typing as npt
from astropy_healpix import HEALPix, lonlat_to_healpix

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Roughly 60 deg / nside: the side of a HEALPix pixel.
_PIXEL_SIDE_DEG_AT_NSIDE1 = 58.6


def healpix_index(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, order: int) -> IntArray:
    """NESTED HEALPix index at ``order`` for each position (degrees, ICRS)."""
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    pix = lonlat_to_healpix(ra * u.deg, dec * u.deg, 2**order, order="nested")
    return np.asarray(pix, dtype=np.int64)


def cone_ranges(
    ra_deg: float, dec_deg: float, radius_deg: float, order: int
) -> list[tuple[int, int]]:
    """Inclusive ranges of order-``order`` NESTED indexes covering a cone.

    The cone is covered at a coarse order chosen so that it takes a handful of
    pixels; each coarse pixel maps to one contiguous fine range.
    """
    if not 0 < radius_deg <= 180:
        raise ValueError(f"radius must be in (0, 180] degrees, got {radius_deg}")
    coarse = _coarse_order(radius_deg, order)
    hp = HEALPix(nside=2**coarse, order="nested")
    pixels = np.sort(
        np.asarray(
            hp.cone_search_lonlat(ra_deg * u.deg, dec_deg * u.deg, radius=radius_deg * u.deg)
        )
    )
    shift = 2 * (order - coarse)
    ranges: list[tuple[int, int]] = []
    for p in pixels.tolist():
        lo, hi = p << shift, ((p + 1) << shift) - 1
        if ranges and ranges[-1][1] + 1 == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def _coarse_order(radius_deg: float, order: int) -> int:
    # Pixels about as large as the radius: a cone then touches ~4 to 12 of them.
    k = math.floor(math.log2(_PIXEL_SIDE_DEG_AT_NSIDE1 / radius_deg))
    return max(0, min(order, k))


def angular_separation_deg(
    ra1: npt.ArrayLike, dec1: npt.ArrayLike, ra2: npt.ArrayLike, dec2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance in degrees (haversine: exact at small angles)."""
    r1, d1, r2, d2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2))
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.asarray(np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))), dtype=np.float64)


def angular_separation_scalar(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Scalar form, registered as an SQL function on SQLite."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(math.sqrt(min(1.0, max(0.0, h)))))


# q3c's radial query and join keep distances strictly below the radius, and below
# about 3e-6 deg they miss points (measured: at 1e-7 deg q3c finds half the sources
# at distance 0). Its index search is given at least Q3C_MIN_DEG plus a margin; an
# exact, inclusive distance test then decides.
Q3C_PAD_DEG = 1e-9
Q3C_MIN_DEG = 1e-4


def q3c_search_radius(radius_deg: float) -> float:
    """The radius to give q3c's index search so it misses nothing within ``radius_deg``."""
    return max(radius_deg, Q3C_MIN_DEG) + Q3C_PAD_DEG
