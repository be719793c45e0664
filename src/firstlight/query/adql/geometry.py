"""ADQL geometry rewritten for a backend's spatial index.

``CONTAINS(POINT(ra, dec), CIRCLE(ra0, dec0, r)) = 1``, ``INTERSECTS`` of a
point, ``DISTANCE(...) < r``, ``BOX`` and ``POLYGON`` become:

- ``Q3cSpatial`` (PostgreSQL): q3c (``q3c_join`` for cones, constant or not:
  its 4 index ranges plan far faster than ``q3c_radial_query``'s 50;
  ``q3c_poly_query``), which use the q3c index on (ra, dec), then the exact,
  inclusive ``q3c_dist`` test;
- ``HealpixSpatial`` (SQLite, Oracle): HEALPix ranges on the ``_hpx`` B-tree
  (``cone_ranges``) as a prefilter, then the exact test: the angular distance
  (the dialect's: ``query.dialects`` says how each database measures it) or, for
  polygons (edges are great circles, as in q3c), the side of every edge's
  plane for a convex one, else a crossing count in the gnomonic projection
  (where great circles become straight lines).

``CENTROID`` becomes a POINT before anything else sees it: of a constant
shape, its value (``domain.regions.centroid`` defines it); of ``s_region``,
the backend's per-row computation of the same definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from firstlight.domain.regions import Cap, Poly, centroid, polygon_area
from firstlight.domain.sky import (
    Q3C_MIN_DEG,
    Q3C_PAD_DEG,
    angular_separation_scalar,
    cone_ranges,
    q3c_search_radius,
)
from firstlight.query.adql.errors import AdqlError

_RAD = math.pi / 180


@dataclass(frozen=True)
class Point:
    ra: exp.Expr
    dec: exp.Expr


@dataclass(frozen=True)
class Circle:
    center: Point
    radius: exp.Expr


@dataclass(frozen=True)
class Polygon:
    vertices: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class RegionColumn:
    """A column holding regions as STC-S text: ObsCore's ``s_region``."""

    column: exp.Expr


Shape = Point | Circle | Polygon | RegionColumn
REGION_COLUMNS = frozenset({"s_region"})
Distance = Callable[["Point", "Point"], exp.Expr]  # degrees between two points, in SQL


@dataclass(frozen=True)
class Indexed:
    """The position columns of a table alias and, on HEALPix backends, its index column."""

    ra: str
    dec: str
    healpix: str | None
    # s_region as pgsphere's (circle, polygon) columns, GiST-indexed, where stored.
    regions: tuple[str, str] | None = None


def number(node: exp.Expr) -> float | None:
    """The value of a numeric constant (``2``, ``-1.5``, ``(3)``), else None."""
    if isinstance(node, exp.Paren):
        return number(node.this)
    if isinstance(node, exp.Neg):
        inner = number(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        return float(node.this)
    return None


def _name(node: exp.Expr) -> str | None:
    return str(node.this).upper() if isinstance(node, exp.Anonymous) else None


MAX_VERTICES = 200


def _args(node: exp.Expr) -> list[exp.Expr]:
    args = list(node.expressions)
    # ADQL 2.0's coordinate system argument: every position here is ICRS, so any
    # other is an error (never silently mixed with ICRS).
    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        frame = str(args[0].this).strip().upper()
        if frame not in ("", "ICRS") and not frame.startswith("ICRS "):
            raise AdqlError.at(
                args[0],
                f"coordinate system {args[0].this!r} is not served: every position here is "
                "ICRS (write 'ICRS' or leave it out)",
            )
        args = args[1:]
    return args


def _constants(node: exp.Expr, args: list[exp.Expr]) -> list[float]:
    values = [number(a) for a in args]
    if any(v is None for v in values):
        raise AdqlError.at(node, f"{_name(node)} takes numeric constants here")
    return [v for v in values if v is not None]


def shape(node: exp.Expr) -> Shape:
    name, args = _name(node), _args(node) if isinstance(node, exp.Anonymous) else []
    if name == "POINT" and len(args) == 2:
        return Point(args[0], args[1])
    if name == "CIRCLE" and len(args) == 3:
        return Circle(Point(args[0], args[1]), args[2])
    if name == "CIRCLE" and len(args) == 2 and _name(args[0]) == "POINT":
        center = shape(args[0])
        if isinstance(center, Point):
            return Circle(center, args[1])
    if name == "BOX" and len(args) == 4:
        return Polygon(_box_corners(node, *_constants(node, args)))
    if name == "POLYGON":
        return _polygon(node, args)
    if name in _USAGE:
        raise AdqlError.at(node, f"{name} takes {_USAGE[name]}")
    if isinstance(node, exp.Column) and node.name in REGION_COLUMNS:
        return RegionColumn(node)
    what = f"the column {node.name}" if isinstance(node, exp.Column) else name or node.key.upper()
    raise AdqlError.at(node, f"expected a POINT, CIRCLE, BOX or POLYGON, found {what}")


def _polygon(node: exp.Expr, args: list[exp.Expr]) -> Polygon:
    if all(_name(a) == "POINT" for a in args) and len(args) >= 3:
        flat = [c for a in args for c in _args(a)]
    else:
        flat = args
    values = _constants(node, flat)
    if len(values) % 2 or len(values) < 6:
        raise AdqlError.at(node, "POLYGON needs at least three (ra, dec) vertices")
    if len(values) > 2 * MAX_VERTICES:
        raise AdqlError.at(node, f"POLYGON takes at most {MAX_VERTICES} vertices")
    return Polygon(tuple(zip(values[::2], values[1::2], strict=True)))


_USAGE = {
    "POINT": "two coordinates: POINT(ra, dec)",
    "CIRCLE": "a centre and a radius: CIRCLE(ra, dec, radius) or CIRCLE(POINT(ra, dec), radius)",
    "BOX": "a centre and two sizes: BOX(ra, dec, width, height)",
}


def _box_corners(
    node: exp.Expr, ra: float, dec: float, width: float, height: float
) -> tuple[tuple[float, float], ...]:
    """ADQL 2.1's BOX: width and height are angles on the sky, so the width spans
    width / cos(dec) in right ascension (a box of 1 deg at dec 60 covers 2 deg of ra)."""
    h = height / 2
    if width < 0 or height < 0:
        raise AdqlError.at(node, "BOX takes a non-negative width and height")
    if abs(dec) + h >= 90:
        raise AdqlError.at(node, "BOX reaches a pole: use a CIRCLE or a POLYGON there")
    w = width / 2 / math.cos(math.radians(dec))
    return ((ra - w, dec - h), (ra + w, dec - h), (ra + w, dec + h), (ra - w, dec + h))


# Builders that never copy a fresh node (sqlglot's operators and helpers copy
# their operands: quadratic on the large expressions built here). A node that
# already sits in a tree (a user's column) is copied, as it may appear twice.
def _own(e: exp.Expr) -> exp.Expr:
    return e.copy() if e.parent is not None else e


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=[_own(a) for a in args])


def _lit(value: float) -> exp.Expr:
    return exp.convert(float(value))


def _add(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Add(this=_own(a), expression=_own(b))


def _sub(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Sub(this=_own(a), expression=_own(b))


def _mul(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Mul(this=_own(a), expression=_own(b))


def _div(a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return exp.Div(this=_own(a), expression=_own(b))


def _paren(e: exp.Expr) -> exp.Expr:
    return exp.Paren(this=_own(e))


def _and(*terms: exp.Expr) -> exp.Expr:
    return exp.and_(*[_own(t) for t in terms], copy=False)


def _cmp(kind: type[exp.Binary], a: exp.Expr, b: exp.Expr) -> exp.Expr:
    return kind(this=_own(a), expression=_own(b))


class Spatial:
    """How one backend tests positions: the measure it is given and its index."""

    def __init__(
        self, distance: Distance, healpix_order: int, indexed: Mapping[str, Indexed]
    ) -> None:
        self.distance = distance
        self.healpix_order = healpix_order
        self.indexed = indexed

    def _index(self, p: Point) -> tuple[str, Indexed] | None:
        if not (isinstance(p.ra, exp.Column) and isinstance(p.dec, exp.Column)):
            return None
        alias = p.ra.table
        found = self.indexed.get(alias)
        if found is None or p.dec.table != alias:
            return None
        if (p.ra.name, p.dec.name) != (found.ra, found.dec):
            return None
        return alias, found

    def exact_cone(self, p: Point, c: Circle) -> exp.Expr:
        """Distance <= radius: inclusive, so a radius of 0 finds the centre itself."""
        return _cmp(exp.LTE, self.distance(p, c.center), _paren(c.radius))

    def cone(self, p: Point, c: Circle) -> exp.Expr:
        raise NotImplementedError

    def distance_below(
        self, p: Point, center: Point, radius: float, comparison: exp.Expr
    ) -> exp.Expr:
        raise NotImplementedError

    def polygon(self, p: Point, poly: Polygon) -> exp.Expr:
        raise NotImplementedError

    def region_has_point(self, region: RegionColumn, p: Point) -> exp.Expr:
        """The point lies in the row's region (SQLite's registered function)."""
        return _fn("adql_region_point", region.column, p.ra, p.dec)

    def region_area(self, region: RegionColumn) -> exp.Expr:
        """The row's region's area in square degrees."""
        return _fn("adql_region_area", region.column)

    def region_centroid(self, region: RegionColumn) -> Point:
        """The row's region's centroid (SQLite's registered function, once per coordinate)."""
        col = region.column
        return Point(
            _fn("adql_region_centroid", col, exp.convert(0)),
            _fn("adql_region_centroid", col, exp.convert(1)),
        )

    def region_relation(self, kind: str, a: Shape, b: Shape) -> exp.Expr:
        """CONTAINS(a, b) or INTERSECTS(a, b) where one side is a region column."""
        return _cmp(
            exp.EQ,
            _fn("adql_region_relate", exp.Literal.string(kind), _stcs(a), _stcs(b)),
            exp.convert(1),
        )


def _area(geometry: Shape) -> float:
    """Square degrees of a constant shape (a polygon's by its spherical excess)."""
    if isinstance(geometry, Point):
        return 0.0
    if isinstance(geometry, Circle):
        r = math.radians(number(geometry.radius) or 0.0)
        return 2 * math.pi * (1 - math.cos(r)) * (180 / math.pi) ** 2
    assert isinstance(geometry, Polygon)
    return polygon_area(geometry.vertices)


def _constant_shape(shape: Shape) -> bool:
    if isinstance(shape, Point):
        return number(shape.ra) is not None and number(shape.dec) is not None
    if isinstance(shape, Circle):
        return _constant_shape(shape.center) and number(shape.radius) is not None
    return isinstance(shape, Polygon)


def _values(shape: Shape) -> list[float]:
    if isinstance(shape, Point):
        return [number(shape.ra) or 0.0, number(shape.dec) or 0.0]
    if isinstance(shape, Circle):
        return [*_values(shape.center), number(shape.radius) or 0.0]
    assert isinstance(shape, Polygon)
    return [v for xy in shape.vertices for v in xy]


def _stcs(shape: Shape) -> exp.Expr:
    """A region column as it is, a constant shape as STC-S text."""
    if isinstance(shape, RegionColumn):
        return shape.column
    kind = {Point: "POSITION", Circle: "CIRCLE", Polygon: "POLYGON"}[type(shape)]
    return exp.Literal.string(f"{kind} ICRS " + " ".join(repr(v) for v in _values(shape)))


class HealpixSpatial(Spatial):
    """HEALPix ranges on the ``_hpx`` B-tree as a prefilter, then the exact test."""

    def _prefilter(self, p: Point, ra: float, dec: float, radius: float) -> exp.Expr | None:
        """HEALPix ranges covering the cone, on the point's table's index (or None)."""
        found = self._index(p)
        if found is None or found[1].healpix is None:
            return None
        alias, idx = found
        ranges = cone_ranges(ra % 360.0, dec, min(max(radius, 1e-9), 180.0), self.healpix_order)
        terms = [
            exp.Between(
                this=exp.column(idx.healpix or "", table=alias),
                low=exp.convert(lo),
                high=exp.convert(hi),
            )
            for lo, hi in ranges
        ]
        return exp.Paren(this=exp.or_(*terms, copy=False)) if terms else exp.false()

    def cone(self, p: Point, c: Circle) -> exp.Expr:
        cra, cdec, r = number(c.center.ra), number(c.center.dec), number(c.radius)
        exact = self.exact_cone(p, c)
        if cra is None or cdec is None or r is None:
            return exact
        prefilter = self._prefilter(p, cra, cdec, r)
        return exact if prefilter is None else _and(prefilter, exact)

    def distance_below(
        self, p: Point, center: Point, radius: float, comparison: exp.Expr
    ) -> exp.Expr:
        """``DISTANCE(p, center) < radius`` with the index: a cone filter and the comparison."""
        cra, cdec = number(center.ra), number(center.dec)
        if cra is None or cdec is None:
            return comparison
        prefilter = self._prefilter(p, cra, cdec, radius)
        return comparison if prefilter is None else _and(prefilter, comparison)

    def polygon(self, p: Point, poly: Polygon) -> exp.Expr:
        ra0, dec0 = _centre(poly.vertices)
        radius = max(angular_separation_scalar(ra0, dec0, ra, dec) for ra, dec in poly.vertices)
        normals = _convex_normals(poly.vertices)
        exact = (
            _inside_convex(p, normals)
            if normals is not None
            else _inside_projected(p, poly, ra0, dec0)
        )
        prefilter = self._prefilter(p, ra0, dec0, radius * 1.0001 + 1e-9)
        return exact if prefilter is None else _and(prefilter, exact)


def _q3c_radius(radius: exp.Expr) -> exp.Expr:
    """q3c's search radius (``domain.sky.q3c_search_radius``), the exact test deciding."""
    r = number(radius)
    if r is not None:
        return _lit(q3c_search_radius(r))
    widened = _fn("GREATEST", _paren(radius), _lit(Q3C_MIN_DEG))
    return _add(widened, _lit(Q3C_PAD_DEG))


class Q3cSpatial(Spatial):
    """q3c (PostgreSQL): its radial, join and polygon queries use the (ra, dec) index."""

    def cone(self, p: Point, c: Circle) -> exp.Expr:
        cra, cdec = number(c.center.ra), number(c.center.dec)
        padded = _q3c_radius(c.radius)
        if cra is not None and cdec is not None:
            # q3c_join, not q3c_radial_query: the same rows, but its index condition is
            # 4 ranges where q3c_radial_query's is 50, whose planning dominated a small
            # cone (36 arcsec on 300k rows: 0.1 ms planning and 0.3 ms in all, against
            # 3.2 ms and 9 ms; bench/tap.py).
            found = _fn("q3c_join", c.center.ra, c.center.dec, p.ra, p.dec, padded)
        elif self._index(p) is None and self._index(c.center) is not None:
            # A crossmatch written from the unindexed side (an uploaded table's point in
            # a catalogue's circles): the distance is symmetric, so the catalogue's index
            # serves it the other way round.
            found = _fn("q3c_join", p.ra, p.dec, c.center.ra, c.center.dec, padded)
        else:
            found = _fn("q3c_join", c.center.ra, c.center.dec, p.ra, p.dec, padded)
        return _and(found, self.exact_cone(p, c))

    def distance_below(
        self, p: Point, center: Point, radius: float, comparison: exp.Expr
    ) -> exp.Expr:
        if number(center.ra) is None or number(center.dec) is None or self._index(p) is None:
            return comparison
        cone = _fn("q3c_join", center.ra, center.dec, p.ra, p.dec, _q3c_radius(_lit(radius)))
        return _and(cone, comparison)

    def polygon(self, p: Point, poly: Polygon) -> exp.Expr:
        flat = exp.Array(expressions=[_lit(v) for xy in poly.vertices for v in xy])
        return _fn("q3c_poly_query", p.ra, p.dec, exp.cast(flat, "DOUBLE[]"))

    # Regions: pgsphere's types, read from the row's STC-S text (circle or polygon).

    def _by_kind(
        self,
        region: RegionColumn,
        test: Callable[[exp.Expr], exp.Expr],
        otherwise: exp.Expr | None = None,
        *,
        indexable: bool = True,
    ) -> exp.Expr:
        """``test`` of the row's region as pgsphere's circle or polygon: its stored,
        GiST-indexed values where the archive has them, else read from its text.

        ``indexable=False``: a CASE, which the planner never negates into the test's
        NEGATOR (pgsphere 1.2's ``spoly !&& spoly`` is false for disjoint polygons).
        """
        col = region.column
        alias = col.table if isinstance(col, exp.Column) else ""
        found = self.indexed.get(alias)
        if found is None or found.regions is None:
            return _by_region_kind(region, test, otherwise)
        circle, polygon = (exp.column(c, table=alias) for c in found.regions)
        if otherwise is not None:  # a value (AREA): the one of the row's kind
            return _fn("COALESCE", test(polygon), test(circle))
        if not indexable:
            kinds = [
                exp.If(
                    this=exp.Not(this=exp.Is(this=c, expression=exp.Null())), true=test(c.copy())
                )
                for c in (polygon, circle)
            ]
            return exp.Case(ifs=kinds, default=exp.false())

        # The row's own kind answers (the other column is NULL: never a NULL answer, so
        # NOT works), and each side can use its GiST index.
        def side(column: exp.Expr) -> exp.Expr:
            known = exp.Not(this=exp.Is(this=column, expression=exp.Null()))
            return _paren(exp.And(this=known, expression=test(column.copy())))

        return _paren(exp.Or(this=side(polygon), expression=side(circle)))

    def region_has_point(self, region: RegionColumn, p: Point) -> exp.Expr:
        point = _fn("spoint", _fn("RADIANS", p.ra), _fn("RADIANS", p.dec))
        return self._by_kind(
            region, lambda r: exp.ArrayContainedBy(this=point.copy(), expression=r)
        )

    def region_area(self, region: RegionColumn) -> exp.Expr:
        # pgsphere's AREA is in steradians.
        sr_to_deg2 = _lit((180 / math.pi) ** 2)
        return self._by_kind(region, lambda r: _mul(_fn("AREA", r), sr_to_deg2), exp.Null())

    def region_centroid(self, region: RegionColumn) -> Point:
        # pgsphere (1.2) has no centroid of a polygon: the vertices are read from the
        # STC-S text and averaged as unit vectors, in SQL.
        ra = _pg_centroid(region.column, "ra")
        wrapped = _sub(ra, _mul(_lit(360), _fn("FLOOR", _div(ra, _lit(360)))))
        return Point(_paren(wrapped), _pg_centroid(region.column, "dec"))

    def region_relation(self, kind: str, a: Shape, b: Shape) -> exp.Expr:
        op: type[exp.Binary] = exp.ArrayContainedBy if kind == "CONTAINS" else exp.ArrayOverlaps
        # A polygon's overlap with a polygon: never where NOT could turn it into !&&.
        safe = kind == "CONTAINS" or not (isinstance(a, Polygon) or isinstance(b, Polygon))
        if isinstance(a, RegionColumn):
            return self._by_kind(a, lambda r: op(this=r, expression=_sphere(b)), indexable=safe)
        assert isinstance(b, RegionColumn)
        return self._by_kind(b, lambda r: op(this=_sphere(a), expression=r), indexable=safe)


def _cast_udt(value: exp.Expr, type_name: str) -> exp.Expr:
    return exp.Cast(this=value, to=exp.DataType.build(type_name, udt=True))


def _sphere(shape: Shape) -> exp.Expr:
    """A constant shape as a pgsphere value."""
    if isinstance(shape, Point):
        ra, dec = _values(shape)
        return _cast_udt(exp.Literal.string(f"({ra!r}d,{dec!r}d)"), "spoint")
    if isinstance(shape, Circle):
        ra, dec, r = _values(shape)
        return _cast_udt(exp.Literal.string(f"<({ra!r}d,{dec!r}d),{r!r}d>"), "scircle")
    if isinstance(shape, Polygon):
        text = ",".join(f"({ra!r}d,{dec!r}d)" for ra, dec in shape.vertices)
        return _cast_udt(exp.Literal.string("{" + text + "}"), "spoly")
    raise AdqlError("a region column is compared with a constant shape or a point")


_CIRCLE_STCS = r"^\s*CIRCLE\s+(ICRS\s+)?(\S+)\s+(\S+)\s+(\S+)\s*$"
_POLYGON_HEAD = r"^\s*POLYGON\s+(ICRS\s+)?"


def _by_region_kind(
    region: RegionColumn,
    test: Callable[[exp.Expr], exp.Expr],
    otherwise: exp.Expr | None = None,
) -> exp.Expr:
    """``test`` of the row's region as a pgsphere circle or polygon, by its STC-S kind."""
    col = region.column

    def regexp(text: exp.Expr, pattern: str, replacement: str, flags: str) -> exp.Expr:
        args = [exp.Literal.string(v) for v in (pattern, replacement, flags)]
        return _fn("REGEXP_REPLACE", text, *args)

    circle = regexp(col, _CIRCLE_STCS, r"<(\2d,\3d),\4d>", "i")
    pairs = regexp(regexp(col, _POLYGON_HEAD, "", "i"), r"(\S+)\s+(\S+)\s*", r"(\1d,\2d),", "g")
    polygon = exp.DPipe(
        this=exp.DPipe(
            this=exp.Literal.string("{"),
            expression=regexp(pairs, ",$", "", ""),
        ),
        expression=exp.Literal.string("}"),
    )

    def kind_is(word: str) -> exp.Expr:
        head = _fn("UPPER", _fn("LTRIM", col))
        return exp.Like(this=head, expression=exp.Literal.string(word + "%"))

    return exp.Case(
        ifs=[
            exp.If(this=kind_is("CIRCLE"), true=test(_cast_udt(circle, "scircle"))),
            exp.If(this=kind_is("POLYGON"), true=test(_cast_udt(polygon, "spoly"))),
        ],
        default=exp.false() if otherwise is None else otherwise,
    )


# The centroid of s_region on PostgreSQL: ``fl_region`` stands for the column. A
# polygon's (ra, dec) pairs are summed as unit vectors; any other kind (CIRCLE,
# POSITION, BOX) is centred on its first pair.
_STCS_NUMBERS = r"REGEXP_REPLACE(fl_region, '^\s*[A-Za-z]+\s+([A-Za-z]+\s+)?', '')"
_PAIR_RA = "RADIANS(CAST(fl_pair[1] AS DOUBLE PRECISION))"
_PAIR_DEC = "RADIANS(CAST(fl_pair[2] AS DOUBLE PRECISION))"
_SUM_X = f"SUM(COS({_PAIR_DEC}) * COS({_PAIR_RA}))"
_SUM_Y = f"SUM(COS({_PAIR_DEC}) * SIN({_PAIR_RA}))"
_SUM_Z = f"SUM(SIN({_PAIR_DEC}))"
_PG_CENTROID = {
    coordinate: sqlglot.parse_one(
        "CASE WHEN UPPER(LTRIM(fl_region)) LIKE 'POLYGON%' "  # noqa: S608  (our constant text)
        f"THEN (SELECT DEGREES({mean}) FROM REGEXP_MATCHES({_STCS_NUMBERS}, "
        r"'(\S+)\s+(\S+)', 'g') AS fl_pair) "
        rf"ELSE CAST((REGEXP_MATCH({_STCS_NUMBERS}, '^(\S+)\s+(\S+)'))[{k}] "
        "AS DOUBLE PRECISION) END",
        read="postgres",
    )
    for coordinate, k, mean in (
        ("ra", 1, f"ATAN2({_SUM_Y}, {_SUM_X})"),
        ("dec", 2, f"ATAN2({_SUM_Z}, SQRT(POWER({_SUM_X}, 2) + POWER({_SUM_Y}, 2)))"),
    )
}


def _pg_centroid(column: exp.Expr, coordinate: str) -> exp.Expr:
    def place(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name == "fl_region":
            return column.copy()
        return node

    return _paren(_PG_CENTROID[coordinate].copy().transform(place, copy=False))


def _centre(vertices: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """The normalised mean of the vertices' unit vectors: a tangent point inside."""
    return centroid(Poly(vertices))


def _constant_centroid(geometry: Shape) -> tuple[float, float]:
    if isinstance(geometry, Point):
        ra, dec = _values(geometry)
        return centroid(Cap(ra, dec, 0.0))
    if isinstance(geometry, Circle):
        ra, dec, r = _values(geometry)
        return centroid(Cap(ra, dec, r))
    assert isinstance(geometry, Polygon)
    return _centre(geometry.vertices)


def _unit(ra: float, dec: float) -> tuple[float, float, float]:
    r, d = ra * _RAD, dec * _RAD
    return math.cos(d) * math.cos(r), math.cos(d) * math.sin(r), math.sin(d)


def _cross(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float]:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _dot(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _convex_normals(
    vertices: tuple[tuple[float, float], ...],
) -> list[tuple[float, float, float]] | None:
    """Inward normals of the edges' great circles if the polygon is convex, else None."""
    units = [_unit(ra, dec) for ra, dec in vertices]
    normals = [_cross(a, b) for a, b in zip(units, units[1:] + units[:1], strict=True)]
    sides = {
        math.copysign(1.0, _dot(n, v))
        for n in normals
        for v in units
        if abs(_dot(n, v)) > 1e-12  # the edge's own ends lie on it
    }
    if len(sides) != 1:
        return None
    sign = sides.pop()
    return [(sign * n[0], sign * n[1], sign * n[2]) for n in normals]


def _inside_convex(p: Point, normals: list[tuple[float, float, float]]) -> exp.Expr:
    """Inside every edge's great circle: n . p >= 0 for the inward normal n of each edge."""

    def rad(e: exp.Expr) -> exp.Expr:
        return _mul(_paren(e), _lit(_RAD))

    terms = []
    for nx, ny, nz in normals:
        cos_dec = _fn("COS", rad(p.dec))
        x = _mul(_mul(cos_dec, _fn("COS", rad(p.ra))), _lit(nx))
        y = _mul(_mul(cos_dec.copy(), _fn("SIN", rad(p.ra))), _lit(ny))
        z = _mul(_fn("SIN", rad(p.dec)), _lit(nz))
        terms.append(_cmp(exp.GTE, _add(_add(x, y), z), _lit(0)))
    return _and(*terms)


def _project(ra: float, dec: float, ra0: float, dec0: float) -> tuple[float, float]:
    d, d0, dra = dec * _RAD, dec0 * _RAD, (ra - ra0) * _RAD
    cosc = math.sin(d0) * math.sin(d) + math.cos(d0) * math.cos(d) * math.cos(dra)
    if cosc <= 0:
        raise AdqlError("POLYGON spans more than a hemisphere")
    x = math.cos(d) * math.sin(dra) / cosc
    y = (math.cos(d0) * math.sin(d) - math.sin(d0) * math.cos(d) * math.cos(dra)) / cosc
    return x, y


def _inside_projected(p: Point, poly: Polygon, ra0: float, dec0: float) -> exp.Expr:
    """Crossing-number test of the point in the gnomonic projection at (ra0, dec0)."""
    s0, c0 = math.sin(dec0 * _RAD), math.cos(dec0 * _RAD)

    def dra() -> exp.Expr:
        return _mul(_paren(_sub(_paren(p.ra), _lit(ra0))), _lit(_RAD))

    def d() -> exp.Expr:
        return _mul(_paren(p.dec), _lit(_RAD))

    def cosc() -> exp.Expr:
        return _add(
            _mul(_lit(s0), _fn("SIN", d())),
            _mul(_mul(_lit(c0), _fn("COS", d())), _fn("COS", dra())),
        )

    def over_cosc(e: exp.Expr) -> exp.Expr:
        return _div(_paren(e), _fn("NULLIF", cosc(), _lit(0)))

    def x() -> exp.Expr:
        return over_cosc(_mul(_fn("COS", d()), _fn("SIN", dra())))

    def y() -> exp.Expr:
        return over_cosc(
            _sub(
                _mul(_lit(c0), _fn("SIN", d())),
                _mul(_mul(_lit(s0), _fn("COS", d())), _fn("COS", dra())),
            )
        )

    corners = [_project(ra, dec, ra0, dec0) for ra, dec in poly.vertices]
    crossings: list[exp.Expr] = []
    for (xi, yi), (xj, yj) in zip(corners, corners[1:] + corners[:1], strict=True):
        if yi == yj:
            continue
        lo, hi = min(yi, yj), max(yi, yj)
        spans = _and(_cmp(exp.GTE, y(), _lit(lo)), _cmp(exp.LT, y(), _lit(hi)))
        edge_x = _add(_lit(xi), _mul(_paren(_sub(y(), _lit(yi))), _lit((xj - xi) / (yj - yi))))
        left = _cmp(exp.LT, x(), edge_x)
        crossing = exp.If(this=_and(spans, left), true=exp.convert(1))
        crossings.append(exp.Case(ifs=[crossing], default=exp.convert(0)))
    total = crossings[0]
    for term in crossings[1:]:
        total = _add(total, term)
    odd = exp.EQ(
        this=exp.Mod(this=_paren(total), expression=exp.convert(2)), expression=exp.convert(1)
    )
    return _and(_cmp(exp.GT, cosc(), _lit(0)), odd)


def _truth(node: exp.Expr) -> int | None:
    value = number(node)
    return int(value) if value in (0.0, 1.0) else None


_PREDICATES = frozenset({"CONTAINS", "INTERSECTS"})


def _predicate_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Contains):
        return "CONTAINS"
    name = _name(node)
    return name if name in _PREDICATES else None


def rewrite_geometry(tree: exp.Expr, spatial: Spatial) -> exp.Expr:
    """Replace every geometry function of ``tree`` by what the backend runs."""

    def predicate(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Contains):
            left, right = shape(node.this), shape(node.expression)
        else:
            left, right = shape(node.expressions[0]), shape(node.expressions[1])
        name = _predicate_name(node) or ""
        if name == "INTERSECTS" and isinstance(right, Point):
            left, right = right, left
        if isinstance(left, RegionColumn) or isinstance(right, RegionColumn):
            return _region_predicate(node, name, left, right, spatial)
        if isinstance(left, Point) and isinstance(right, Circle):
            return spatial.cone(left, right)
        if isinstance(left, Point) and isinstance(right, Polygon):
            return spatial.polygon(left, right)
        if isinstance(left, Circle) and isinstance(right, Circle):
            gap = spatial.distance(left.center, right.center)
            if name == "INTERSECTS":
                return _cmp(exp.LTE, gap, _add(_paren(left.radius), _paren(right.radius)))
            return _cmp(exp.LTE, _add(gap, _paren(left.radius)), _paren(right.radius))
        kinds = f"{type(left).__name__.upper()} and {type(right).__name__.upper()}"
        raise AdqlError.at(node, f"{name} of a {kinds} is not supported")

    def comparison(node: exp.Expr) -> exp.Expr:
        # CONTAINS(...) = 1 / 0, either way round.
        if isinstance(node, exp.EQ | exp.NEQ):
            for geo, other in ((node.this, node.expression), (node.expression, node.this)):
                if _predicate_name(geo) and _truth(other) is not None:
                    truth = _truth(other) == 1
                    if isinstance(node, exp.NEQ):
                        truth = not truth
                    pred = _paren(predicate(geo))
                    return pred if truth else exp.not_(pred)
        # DISTANCE(p, const) < r: the index first.
        if isinstance(node, exp.LT | exp.LTE) and _name(node.this) == "DISTANCE":
            radius = number(node.expression)
            points = _distance_points(node.this)
            if radius is not None and points is not None:
                a, b = points
                if number(a.ra) is not None:
                    a, b = b, a
                return _paren(spatial.distance_below(a, b, radius, node.copy()))
        return node

    def functions(node: exp.Expr) -> exp.Expr:
        name = _predicate_name(node)
        if name is not None:
            pred = predicate(node)
            if isinstance(node.parent, exp.Where | exp.Having | exp.And | exp.Or | exp.Not):
                return _paren(pred)
            return exp.Case(ifs=[exp.If(this=pred, true=_lit(1))], default=_lit(0))
        fname = _name(node)
        if fname == "DISTANCE":
            points = _distance_points(node)
            if points is None:
                raise AdqlError.at(node, "DISTANCE takes two POINTs or four numbers")
            return spatial.distance(*points)
        if fname in ("COORDSYS", "AREA"):
            return _measure(node, fname, spatial)
        if fname in ("COORD1", "COORD2"):
            args = _args(node)
            p = shape(args[0]) if len(args) == 1 else None
            if not isinstance(p, Point):
                raise AdqlError.at(node, f"{fname} takes one POINT")
            return _paren(p.ra if fname == "COORD1" else p.dec)
        if fname in ("POINT", "CIRCLE", "BOX", "POLYGON"):
            raise AdqlError.at(
                node,
                f"a {fname} cannot be a value here: use it in CONTAINS, "
                "INTERSECTS or DISTANCE (COORD1/COORD2 give a POINT's coordinates)",
            )
        return node

    # CENTROID first: every later step sees the POINT it stands for.
    tree = _transform_top_down(tree, _centroids(spatial)).transform(comparison, copy=False)
    return _transform_top_down(tree, functions)


def _centroids(spatial: Spatial) -> Callable[[exp.Expr], exp.Expr]:
    return lambda node: _centroid(node, spatial) if _name(node) == "CENTROID" else node


def _centroid(node: exp.Expr, spatial: Spatial) -> exp.Expr:
    """CENTROID(g) as the POINT it is: every later step takes it as one."""
    args = _args(node)
    if len(args) != 1:
        raise AdqlError.at(node, "CENTROID takes one geometry")
    geometry = shape(args[0])
    if isinstance(geometry, RegionColumn):
        point = spatial.region_centroid(geometry)
        ra, dec = point.ra, point.dec
    elif _constant_shape(geometry):
        ra, dec = (_lit(v) for v in _constant_centroid(geometry))
    elif isinstance(geometry, Point | Circle):
        centre = geometry if isinstance(geometry, Point) else geometry.center
        ra, dec = _own(centre.ra), _own(centre.dec)
    else:  # pragma: no cover - a polygon is always constant
        raise AdqlError.at(node, "CENTROID takes s_region or a shape")
    return exp.Anonymous(this="POINT", expressions=[ra, dec])


def _measure(node: exp.Expr, fname: str, spatial: Spatial) -> exp.Expr:
    """COORDSYS or AREA of one geometry."""
    args = _args(node)
    if len(args) != 1:
        raise AdqlError.at(node, f"{fname} takes one geometry")
    geometry = shape(args[0])
    if fname == "COORDSYS":
        if isinstance(geometry, RegionColumn):
            known = exp.Not(this=exp.Is(this=geometry.column.copy(), expression=exp.Null()))
            return exp.Case(ifs=[exp.If(this=known, true=exp.Literal.string("ICRS"))])
        return exp.Literal.string("ICRS")
    if isinstance(geometry, RegionColumn):
        return spatial.region_area(geometry)
    if not _constant_shape(geometry):
        raise AdqlError.at(node, "AREA takes s_region or a shape of numeric constants")
    return _lit(_area(geometry))


def _region_predicate(
    node: exp.Expr, name: str, left: Shape, right: Shape, spatial: Spatial
) -> exp.Expr:
    """A predicate with ``s_region`` on either side (both ways round)."""
    if isinstance(left, RegionColumn) and isinstance(right, RegionColumn):
        raise AdqlError.at(node, f"{name} of two region columns is not supported")
    if isinstance(left, Point) and isinstance(right, RegionColumn):
        return spatial.region_has_point(right, left)
    other = right if isinstance(left, RegionColumn) else left
    if not _constant_shape(other):
        raise AdqlError.at(
            node, f"{name} compares s_region with a POINT, or with a shape of numeric constants"
        )
    return spatial.region_relation(name, left, right)


def _transform_top_down(tree: exp.Expr, fn: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """Like ``transform`` but parents first, so a predicate sees its own arguments whole."""
    replaced = fn(tree)
    if replaced is not tree:
        if tree.parent is not None:
            tree.replace(replaced)
        return replaced
    for child in list(tree.iter_expressions()):
        _transform_top_down(child, fn)
    return tree


def _distance_points(node: exp.Expr) -> tuple[Point, Point] | None:
    args = _args(node)
    if len(args) == 4:
        return Point(args[0], args[1]), Point(args[2], args[3])
    if len(args) == 2:
        a, b = shape(args[0]), shape(args[1])
        if isinstance(a, Point) and isinstance(b, Point):
            return a, b
    return None
