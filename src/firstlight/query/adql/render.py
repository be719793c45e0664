"""ADQL in, the backend's SQL out: the one translator for every archive database.

The output is built from the parsed tree only: table names come from the
public catalogue (``query.public``), identifiers are quoted the way the
archive's own tables were created (SQLAlchemy's preparer for the dialect),
literals are rendered by sqlglot as literals. Steps, in order:

1. parse (``dialect``), refuse what is not ADQL (``check.check_forms``);
2. resolve every table to a public one and qualify every column (``check``);
3. make functions mean the same everywhere (``functions``);
4. rewrite geometry for the backend's spatial index (``geometry``);
5. apply the row limit: ``TOP n``, or ``maxrec + 1`` rows to detect overflow;
6. replace public tables by physical ones, ObsCore and TAP_SCHEMA by subqueries.

Literal text is never spliced into SQL, with one exception of our own: the
TAP_SCHEMA subqueries, rendered by sqlglot from literals and cached, take the
place of a random placeholder name after rendering.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from firstlight.query import dialects
from firstlight.query.adql.check import (
    check_forms,
    check_grouping,
    qualify_columns,
    resolve_tables,
)
from firstlight.query.adql.dialect import parse_adql
from firstlight.query.adql.errors import AdqlError
from firstlight.query.adql.functions import ColumnType, integer_operands, portable_functions
from firstlight.query.adql.geometry import (
    Circle,
    Indexed,
    Point,
    Polygon,
    Shape,
    number,
    rewrite_geometry,
    shape,
)
from firstlight.query.public import (
    OBSCORE_COLUMNS,
    OBSCORE_STORED,
    CatalogueSource,
    ObscoreSource,
    PublicColumn,
    PublicTable,
    ValuesSource,
)
from firstlight.storage import schema as archive_schema

if TYPE_CHECKING:  # query.dialects imports query.adql: the module is read at call time
    from firstlight.query.dialects import QueryDialect

HEALPIX_ALIAS = "_hpx"  # ObsCore's HEALPix column inside its subquery (hidden)
# s_region as pgsphere's circle and polygon inside the subquery (hidden), where stored.
SPHERE_ALIASES = {"s_region_scircle": "_scircle", "s_region_spoly": "_spoly"}

_CAST_TYPES = {
    "boolean": "BOOLEAN",
    "short": "SMALLINT",
    "int": "INT",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE",
    "char": "VARCHAR(4000)",
}


@dataclass(frozen=True)
class Translation:
    sql: str
    # One per output column: its public description when it is a column of a
    # public table (renamed to the output name), else a name only (datatype "").
    columns: tuple[PublicColumn, ...]
    limit: int | None  # the row limit in the SQL (TOP, or maxrec + 1)
    tables: tuple[str, ...]  # the public tables read
    # SQL columns per output column: 1, or a geometry value's numbers (a POINT: 2),
    # which the runner folds into one array (DALI point, circle, polygon).
    widths: tuple[int, ...] = ()


def translate_adql(
    adql: str,
    tables: Sequence[PublicTable],
    backend: str | QueryDialect,
    *,
    maxrec: int | None = None,
    healpix_order: int = 16,
) -> Translation:
    """Translate one ADQL query for ``backend`` (its dialect, or postgresql, sqlite, oracle)."""
    dialect = dialects.query_dialect(backend) if isinstance(backend, str) else backend
    tree: exp.Expr = parse_adql(adql)
    check_forms(tree)  # also refuses WITH, which ADQL 2.1 does not have
    used = resolve_tables(tree, tables)
    tree = qualify_columns(tree, used)
    check_grouping(tree)
    aliases = _aliases(tree, used)
    columns = _output_columns(tree, aliases)
    columns, widths = _geometry_values(tree, columns)
    tree = _portable_functions(tree, dialect, aliases)
    spatial = dialect.spatial(healpix_order, _indexed(aliases, dialect))
    tree = rewrite_geometry(tree, spatial)
    limit = _apply_limit(tree, maxrec)
    spliced = _physical_tables(tree, used, dialect)
    _quote_like_archive(tree, dialect)
    # No comments: they are the one part of the text sqlglot would carry over. The tree
    # is ours and not used again: rendered without the copy sqlglot makes by default.
    sql = Dialect.get_or_raise(dialect.sqlglot).generate(tree, copy=False, comments=False)
    for token, subquery in spliced.items():
        sql = sql.replace(token, f"({subquery})")
    return Translation(sql, columns, limit, tuple(sorted(used)), widths)


# -- tables and columns --------------------------------------------------------


def _aliases(tree: exp.Expr, used: dict[str, PublicTable]) -> dict[str, PublicTable]:
    """Table alias -> public table; an alias naming two tables (in two scopes) is left out."""
    found: dict[str, PublicTable] = {}
    clashes: set[str] = set()
    for ref in tree.find_all(exp.Table):
        table = used[f"{ref.db}.{ref.name}"]
        alias = ref.alias_or_name
        if alias in found and found[alias] is not table:
            clashes.add(alias)
        found[alias] = table
    return {a: t for a, t in found.items() if a not in clashes}


def _output_columns(tree: exp.Expr, aliases: dict[str, PublicTable]) -> tuple[PublicColumn, ...]:
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    assert isinstance(select, exp.Select)
    out: list[PublicColumn] = []
    for projection in select.expressions:
        name = projection.alias_or_name
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        described: PublicColumn | None = None
        if isinstance(inner, exp.Column) and inner.table in aliases:
            try:
                described = aliases[inner.table].column(inner.name)
            except KeyError:
                described = None
        if described is not None:
            out.append(replace(described, name=name))
        else:
            out.append(_computed(name, inner, aliases))
    return tuple(out)


# Functions whose result is a double whatever the database's own type for it.
_DOUBLES = (
    exp.Avg, exp.Floor, exp.Ceil, exp.Sqrt, exp.Pow, exp.Ln, exp.Log, exp.Exp, exp.Sin, exp.Cos,
    exp.Tan, exp.Asin, exp.Acos, exp.Atan, exp.Atan2, exp.Cot, exp.Degrees, exp.Radians, exp.Pi,
    exp.Rand,
)  # fmt: skip
# Integer operands give an integer (SQL's integer division), anything else a double.
_INTEGER_OR_DOUBLE = (exp.Div, exp.Mod, exp.Round, exp.Trunc)
_TEXTS = (exp.Upper, exp.Lower, exp.DPipe, exp.Substring)
_SAME_AS_ARGUMENT = (exp.Min, exp.Max, exp.Abs, exp.Sum, exp.Coalesce, exp.Paren, exp.Neg)
# SUM's declared type: wide enough for its values (a float32 sum is computed in double).
_SUM_TYPES = {"short": "long", "int": "long", "long": "long", "float": "double"}


def _column_type(aliases: dict[str, PublicTable]) -> ColumnType:
    def column_type(node: exp.Column) -> str | None:
        table = aliases.get(node.table)
        if table is None:
            return None
        try:
            return table.column(node.name).datatype
        except KeyError:
            return None

    return column_type


def _computed(name: str, node: exp.Expr, aliases: dict[str, PublicTable]) -> PublicColumn:
    """A computed column's type where ADQL fixes it (so every backend says the same)."""
    if isinstance(node, exp.Count) or (
        isinstance(node, (*_INTEGER_OR_DOUBLE, exp.Sum))
        and integer_operands(node, _column_type(aliases))
    ):
        return PublicColumn(name=name, datatype="long")
    if isinstance(node, (*_INTEGER_OR_DOUBLE, *_DOUBLES)) or (
        isinstance(node, exp.Anonymous) and str(node.this).upper() in ("DISTANCE", "AREA")
    ):
        return PublicColumn(name=name, datatype="double")
    if isinstance(node, _TEXTS) or (
        isinstance(node, exp.Anonymous) and str(node.this).upper() == "COORDSYS"
    ):
        return PublicColumn(name=name, datatype="char", arraysize="*")
    if isinstance(node, _SAME_AS_ARGUMENT) and isinstance(node.this, exp.Column):
        column = node.this
        if column.table in aliases:
            try:
                base = aliases[column.table].column(column.name)
            except KeyError:
                base = None
            if base is not None:
                datatype = base.datatype
                if isinstance(node, exp.Sum):
                    datatype = _SUM_TYPES.get(datatype, datatype)
                return PublicColumn(
                    name=name, datatype=datatype, arraysize=base.arraysize, unit=base.unit
                )
    return PublicColumn(name=name, datatype="")  # typed from its values when run


_DALI_GEOMETRY = {Point: ("point", "2"), Circle: ("circle", "3"), Polygon: ("polygon", "*")}
_GEOMETRY_VALUES = ("POINT", "CIRCLE", "BOX", "POLYGON", "CENTROID")


def _geometry_values(
    tree: exp.Expr, columns: tuple[PublicColumn, ...]
) -> tuple[tuple[PublicColumn, ...], tuple[int, ...]]:
    """Geometry in the select list as DALI values: its numbers as columns of their own.

    ``SELECT POINT(ra, dec) AS p`` selects ra and dec; the runner folds them into
    one ``double[2]`` value of xtype ``point`` (circle: 3 numbers, polygon: 2 per
    vertex, BOX as its polygon, CENTROID a point).
    """
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    assert isinstance(select, exp.Select)
    projections: list[exp.Expr] = []
    out: list[PublicColumn] = []
    widths: list[int] = []
    for i, (projection, col) in enumerate(zip(select.expressions, columns, strict=True)):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        name = str(inner.this).upper() if isinstance(inner, exp.Anonymous) else None
        if name not in _GEOMETRY_VALUES or isinstance(tree, exp.SetOperation):
            projections.append(projection)
            out.append(col)
            widths.append(1)
            continue
        if name == "CENTROID":
            # A point whose coordinates the geometry rewrite computes.
            parts: list[exp.Expr] = [
                exp.Anonymous(this=c, expressions=[inner.copy()]) for c in ("COORD1", "COORD2")
            ]
            xtype, arraysize = _DALI_GEOMETRY[Point]
        else:
            geometry = shape(inner)
            parts = _geometry_parts(geometry)
            xtype, arraysize = _DALI_GEOMETRY[type(geometry)]
        projections.extend(
            exp.Alias(this=part.copy(), alias=exp.to_identifier(f"_g{i}_{k}"))
            for k, part in enumerate(parts)
        )
        out.append(replace(col, datatype="double", arraysize=arraysize, xtype=xtype, unit="deg"))
        widths.append(len(parts))
    if all(w == 1 for w in widths):
        return columns, ()
    select.set("expressions", projections)
    return tuple(out), tuple(widths)


def _geometry_parts(geometry: Shape) -> list[exp.Expr]:
    if isinstance(geometry, Point):
        return [geometry.ra, geometry.dec]
    if isinstance(geometry, Circle):
        return [geometry.center.ra, geometry.center.dec, geometry.radius]
    assert isinstance(geometry, Polygon)
    return [exp.convert(float(v)) for xy in geometry.vertices for v in xy]


def _indexed(aliases: dict[str, PublicTable], dialect: QueryDialect) -> dict[str, Indexed]:
    healpix = dialect.healpix
    out: dict[str, Indexed] = {}
    for alias, table in aliases.items():
        source = table.source
        if isinstance(source, CatalogueSource) and source.ra and source.dec:
            out[alias] = Indexed(source.ra, source.dec, source.healpix if healpix else None)
        elif isinstance(source, ObscoreSource):
            regions = ("_scircle", "_spoly") if source.sphere_regions else None
            out[alias] = Indexed("s_ra", "s_dec", HEALPIX_ALIAS if healpix else None, regions)
    return out


def _physical_tables(
    tree: exp.Expr, used: dict[str, PublicTable], dialect: QueryDialect
) -> dict[str, str]:
    """Replace public tables by what holds their rows; returns the subqueries to splice.

    TAP_SCHEMA's rows are rendered once per content and backend (``_values_sql``,
    cached) and spliced in for a placeholder name no query can spell (random).
    """
    spliced: dict[str, str] = {}
    for ref in list(tree.find_all(exp.Table)):
        if not isinstance(ref.this, exp.Identifier):
            continue  # a function's rows, as the geometry rewrite reads s_region's vertices
        table = used[f"{ref.db}.{ref.name}"]
        alias = exp.TableAlias(this=exp.to_identifier(ref.alias_or_name))
        source = table.source
        if isinstance(source, CatalogueSource):
            schema = exp.to_identifier(source.physical_schema) if source.physical_schema else None
            ref.replace(
                exp.Table(this=exp.to_identifier(source.physical_name), db=schema, alias=alias)
            )
        elif isinstance(source, ObscoreSource):
            ref.replace(exp.Subquery(this=_obscore(source, dialect), alias=alias))
        elif isinstance(source, ValuesSource):
            token = f"fl_values_{secrets.token_hex(12)}"
            spliced[token] = _values_sql(table.columns, source.rows, dialect)
            ref.replace(exp.Table(this=exp.to_identifier(token), alias=alias))
        else:  # pragma: no cover - every public table has a source
            raise AdqlError.at(ref, f"table {table.table_name} cannot be queried")
    return spliced


def _alias(value: exp.Expr, name: str) -> exp.Expr:
    return exp.Alias(this=value, alias=exp.to_identifier(name))


@cache
def _data_type(datatype: str) -> exp.DataType:
    return exp.DataType.build(_CAST_TYPES[datatype])


def _cast(value: exp.Expr, datatype: str) -> exp.Expr:
    return exp.Cast(this=value, to=_data_type(datatype).copy())


def _obscore(source: ObscoreSource, dialect: QueryDialect) -> exp.Query:
    """ObsCore's rows: ``storage.visibility``'s rule for observations, in sqlglot's terms."""
    obs = archive_schema.observations.name
    cols: list[exp.Expr] = []
    for col in OBSCORE_COLUMNS:
        value: exp.Expr = (
            exp.column(col.plain_name, table="o")
            if col.plain_name in OBSCORE_STORED
            else _cast(exp.Null(), col.datatype)
        )
        if col.plain_name == "obs_release_date":
            # Without an embargo a product became public when its release was promoted.
            value = exp.Coalesce(this=value, expressions=[exp.column("promoted_at", table="r")])
        cols.append(_alias(value, col.plain_name))
    if dialect.healpix:
        cols.append(_alias(exp.column("healpix", table="o"), HEALPIX_ALIAS))
    if source.sphere_regions:
        cols.extend(_alias(exp.column(c, table="o"), a) for c, a in SPHERE_ALIASES.items())
    released = exp.Or(
        this=exp.Is(this=exp.column("obs_release_date", table="o"), expression=exp.Null()),
        expression=exp.LTE(
            this=exp.column("obs_release_date", table="o"),
            expression=dialect.timestamp(source.now),
        ),
    )
    current: exp.Expr = (
        exp.In(
            this=exp.column("release_key", table="o"),
            expressions=[exp.Literal.string(k) for k in source.release_keys],
        )
        if source.release_keys
        else exp.EQ(this=exp.convert(1), expression=exp.convert(0))
    )
    table = exp.Table(this=exp.to_identifier(obs), alias=exp.TableAlias(this="o"))
    promoted = exp.Table(
        this=exp.to_identifier(archive_schema.releases.name), alias=exp.TableAlias(this="r")
    )
    on = exp.EQ(
        this=exp.column("release_key", table="r"), expression=exp.column("release_key", table="o")
    )
    return exp.Select(
        expressions=cols,
        from_=exp.From(this=table),
        joins=[exp.Join(this=promoted, on=on)],
        where=exp.Where(this=exp.And(this=current, expression=exp.Paren(this=released))),
    )


@lru_cache(maxsize=32)
def _values_sql(
    columns: tuple[PublicColumn, ...], rows: tuple[tuple[Any, ...], ...], dialect: QueryDialect
) -> str:
    tree = _values(columns, rows, dialect)
    _quote_like_archive(tree, dialect)
    return tree.sql(dialect=dialect.sqlglot, comments=False)


def _values(
    columns: tuple[PublicColumn, ...], rows: tuple[tuple[Any, ...], ...], dialect: QueryDialect
) -> exp.Query:
    """The rows as SELECTs of literals joined by UNION ALL; typed by the first one."""

    def row_select(row: tuple[Any, ...], typed: bool) -> exp.Select:
        cells = []
        for col, value in zip(columns, row, strict=True):
            cell = exp.Null() if value is None else exp.convert(value)
            cells.append(_alias(_cast(cell, col.datatype) if typed else cell, col.plain_name))
        select = exp.Select(expressions=cells)
        source = dialect.values_from()
        if source is not None:
            select.set("from_", source)
        return select

    if not rows:
        empty = row_select(tuple(None for _ in columns), typed=True)
        return empty.where(exp.EQ(this=exp.convert(1), expression=exp.convert(0)), copy=False)
    selects = [row_select(r, typed=(i == 0)) for i, r in enumerate(rows)]
    if len(selects) == 1:
        return selects[0]
    return exp.union(*selects, distinct=False, copy=False)


# -- functions -----------------------------------------------------------------


def _portable_functions(
    tree: exp.Expr, dialect: QueryDialect, aliases: dict[str, PublicTable]
) -> exp.Expr:
    return portable_functions(tree, dialect, _column_type(aliases))


# -- limits and names ------------------------------------------------------------


def _apply_limit(tree: exp.Expr, maxrec: int | None) -> int | None:
    existing = tree.args.get("limit")
    top: int | None = None
    if isinstance(existing, exp.Limit):
        value = number(existing.expression)
        if value is None or value < 0 or value != int(value):
            raise AdqlError.at(existing, "TOP takes a non-negative integer")
        top = int(value)
    elif existing is not None:
        raise AdqlError.at(existing, "use TOP n to limit rows")
    if maxrec is not None and (top is None or top > maxrec):
        top = maxrec + 1  # one more than allowed: its presence is the overflow
    if top is not None:
        tree.set("limit", exp.Limit(expression=exp.convert(top)))
    return top


def _quote_like_archive(tree: exp.Expr, dialect: QueryDialect) -> None:
    """Quote exactly the names SQLAlchemy quoted when it created the archive's tables."""
    preparer = _preparer(dialect).identifier_preparer
    for ident in tree.find_all(exp.Identifier):
        name = str(ident.this)
        ident.set("quoted", preparer.quote(name) != name)


@cache
def _preparer(dialect: QueryDialect) -> Any:
    return dialect.preparer()
