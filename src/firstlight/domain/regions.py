"""Sky regions as ObsCore's ``s_region`` holds them (STC-S), and how they relate.

A region is a circle (a cap: centre and radius) or a polygon whose edges are
great circles, in ICRS degrees. ``relate`` answers ADQL's two predicates,
CONTAINS(a, b) (every point of a lies in b) and INTERSECTS(a, b), for any
two regions, exactly up to floating point: SQLite runs it as a registered
function over ``s_region``; PostgreSQL asks pgsphere the same questions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

from firstlight.errors import InvalidInputError

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class Cap:
    ra: float
    dec: float
    radius: float  # degrees


@dataclass(frozen=True)
class Poly:
    vertices: tuple[tuple[float, float], ...]


Region = Cap | Poly


class RegionError(InvalidInputError):
    """Text that is not an STC-S circle, polygon, box or position."""


@lru_cache(maxsize=4096)
def parse_stcs(text: str) -> Region:
    """``CIRCLE ICRS ra dec r``, ``POLYGON ICRS ra1 dec1 ...``, ``BOX ...``, ``POSITION ...``."""
    words = text.split()
    if not words:
        raise RegionError("an empty region")
    kind, rest = words[0].upper(), words[1:]
    if rest and not _is_number(rest[0]):
        frame = rest[0].upper()
        if frame not in ("ICRS", "UNKNOWNFRAME"):
            raise RegionError(f"regions in {frame} are not served (ICRS only)")
        rest = rest[1:]
    try:
        values = [float(v) for v in rest]
    except ValueError as exc:
        raise RegionError(f"not a number in region {text!r}") from exc
    if kind == "CIRCLE" and len(values) == 3:
        return Cap(*values)
    if kind == "POSITION" and len(values) == 2:
        return Cap(values[0], values[1], 0.0)
    if kind == "BOX" and len(values) == 4:
        ra, dec, width, height = values
        w, h = width / 2 / math.cos(math.radians(dec)), height / 2
        return Poly(((ra - w, dec - h), (ra + w, dec - h), (ra + w, dec + h), (ra - w, dec + h)))
    if kind == "POLYGON" and len(values) >= 6 and len(values) % 2 == 0:
        return Poly(tuple(zip(values[::2], values[1::2], strict=True)))
    raise RegionError(f"not an STC-S region: {text[:60]!r}")


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def unit(ra: float, dec: float) -> Vector:
    r, d = math.radians(ra), math.radians(dec)
    return math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a: Vector, b: Vector) -> Vector:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _angle(a: Vector, b: Vector) -> float:
    """Degrees between two unit vectors (atan2: exact at small and large angles)."""
    c = _cross(a, b)
    return math.degrees(math.atan2(math.sqrt(_dot(c, c)), _dot(a, b)))


def _edges(poly: Poly) -> list[tuple[Vector, Vector]]:
    units = [unit(ra, dec) for ra, dec in poly.vertices]
    return list(zip(units, units[1:] + units[:1], strict=True))


def _inside_poly(p: Vector, poly: Poly) -> bool:
    """Winding test: the signed angles of the edges seen from p sum to +-360 inside."""
    total = 0.0
    for a, b in _edges(poly):
        na, nb = _cross(p, a), _cross(p, b)
        total += math.atan2(_dot(_cross(na, nb), p), _dot(na, nb))
    return abs(total) > math.pi


def _edge_distance(p: Vector, a: Vector, b: Vector) -> float:
    """Degrees from p to the great-circle arc a-b."""
    n = _cross(a, b)
    norm = math.sqrt(_dot(n, n))
    if norm > 0:
        n = (n[0] / norm, n[1] / norm, n[2] / norm)
        # The foot of the perpendicular lies on the arc when it is between a and b.
        foot = _cross(_cross(n, p), n)
        if _dot(_cross(a, foot), n) >= 0 and _dot(_cross(foot, b), n) >= 0:
            return abs(90.0 - _angle(p, n))
    return min(_angle(p, a), _angle(p, b))


def _arcs_cross(a1: Vector, a2: Vector, b1: Vector, b2: Vector) -> bool:
    na, nb = _cross(a1, a2), _cross(b1, b2)
    sides_b = _dot(na, b1) * _dot(na, b2)
    sides_a = _dot(nb, a1) * _dot(nb, a2)
    if sides_b > 0 or sides_a > 0:
        return False
    x = _cross(na, nb)  # the two great circles meet at +-x: on both arcs for one of them
    for s in (1.0, -1.0):
        y = (s * x[0], s * x[1], s * x[2])
        on_a = _dot(_cross(a1, y), na) >= 0 and _dot(_cross(y, a2), na) >= 0
        if on_a and _dot(_cross(b1, y), nb) >= 0 and _dot(_cross(y, b2), nb) >= 0:
            return True
    return False


def contains_point(region: Region, ra: float, dec: float) -> bool:
    p = unit(ra, dec)
    if isinstance(region, Cap):
        return _angle(p, unit(region.ra, region.dec)) <= region.radius
    return _inside_poly(p, region)


def relate(kind: str, a: Region, b: Region) -> bool:
    """CONTAINS(a, b): a lies within b; INTERSECTS(a, b): they share a point."""
    if kind == "CONTAINS":
        return _within(a, b)
    return _intersects(a, b)


def _within(a: Region, b: Region) -> bool:
    if isinstance(a, Cap):
        c = unit(a.ra, a.dec)
        if isinstance(b, Cap):
            return _angle(c, unit(b.ra, b.dec)) + a.radius <= b.radius
        return _inside_poly(c, b) and all(_edge_distance(c, x, y) >= a.radius for x, y in _edges(b))
    corners = [unit(ra, dec) for ra, dec in a.vertices]
    if isinstance(b, Cap):
        centre = unit(b.ra, b.dec)
        return all(_angle(v, centre) <= b.radius for v in corners)
    if not all(_inside_poly(v, b) for v in corners):
        return False
    return not any(_arcs_cross(x1, x2, y1, y2) for x1, x2 in _edges(a) for y1, y2 in _edges(b))


def _intersects(a: Region, b: Region) -> bool:
    if isinstance(a, Cap) and isinstance(b, Cap):
        return _angle(unit(a.ra, a.dec), unit(b.ra, b.dec)) <= a.radius + b.radius
    if isinstance(a, Cap) or isinstance(b, Cap):
        cap, poly = (a, b) if isinstance(a, Cap) else (b, a)
        assert isinstance(cap, Cap) and isinstance(poly, Poly)
        c = unit(cap.ra, cap.dec)
        if _inside_poly(c, poly):
            return True
        return any(_edge_distance(c, x, y) <= cap.radius for x, y in _edges(poly))
    assert isinstance(a, Poly) and isinstance(b, Poly)
    if any(_inside_poly(unit(ra, dec), b) for ra, dec in a.vertices):
        return True
    if any(_inside_poly(unit(ra, dec), a) for ra, dec in b.vertices):
        return True
    return any(_arcs_cross(x1, x2, y1, y2) for x1, x2 in _edges(a) for y1, y2 in _edges(b))


def sql_relate(kind: str, a: str | None, b: str | None) -> int | None:
    """The registered SQL function: ``relate`` of two STC-S texts; NULL for a NULL region."""
    if a is None or b is None:
        return None
    try:
        return int(relate(kind.upper(), parse_stcs(a), parse_stcs(b)))
    except RegionError:
        return None


def region_point(region: str | None, ra: float | None, dec: float | None) -> int | None:
    """The registered SQL function: 1 when (ra, dec) lies in the STC-S region."""
    if region is None or ra is None or dec is None:
        return None
    try:
        return int(contains_point(parse_stcs(region), ra, dec))
    except RegionError:
        return None


def polygon_area(vertices: tuple[tuple[float, float], ...]) -> float:
    """Square degrees inside a polygon of great-circle edges (fan of spherical triangles)."""
    units = [unit(ra, dec) for ra, dec in vertices]
    total = 0.0
    a = units[0]
    for b, c in itertools.pairwise(units[1:]):
        # Van Oosterom and Strackee: tan(E/2) = a.(b x c) / (1 + a.b + b.c + c.a)
        numerator = _dot(a, _cross(b, c))
        denominator = 1 + _dot(a, b) + _dot(b, c) + _dot(c, a)
        total += 2 * math.atan2(numerator, denominator)
    return abs(total) * (180 / math.pi) ** 2


def area(region: Region) -> float:
    if isinstance(region, Cap):
        return 2 * math.pi * (1 - math.cos(math.radians(region.radius))) * (180 / math.pi) ** 2
    return polygon_area(region.vertices)


def region_area(region: str | None) -> float | None:
    """The registered SQL function: a region's area in square degrees."""
    if region is None:
        return None
    try:
        return area(parse_stcs(region))
    except RegionError:
        return None


def centroid(region: Region) -> tuple[float, float]:
    """ADQL's CENTROID as this archive defines it: a circle's centre; a polygon's
    vertices' unit vectors averaged and normalised (ra in [0, 360), dec in degrees).

    The vertex mean, not the area's centroid: what most TAP services answer, and
    the same point for the regions archives hold (boxes, footprints of four corners).
    """
    if isinstance(region, Cap):
        return region.ra % 360.0, region.dec
    x = y = z = 0.0
    for ra, dec in region.vertices:
        vx, vy, vz = unit(ra, dec)
        x, y, z = x + vx, y + vy, z + vz
    return math.degrees(math.atan2(y, x)) % 360.0, math.degrees(math.atan2(z, math.hypot(x, y)))


def region_centroid(region: str | None, coordinate: int) -> float | None:
    """The registered SQL function: a region's centroid's ra (``coordinate`` 0) or dec (1)."""
    if region is None:
        return None
    try:
        return centroid(parse_stcs(region))[coordinate]
    except RegionError:
        return None
