"""Checking a parsed query against ADQL's allowed forms and the public tables.

Only node types listed here may appear (no DML, no DDL, no CTEs, no unknown
functions), every table must be public, and every column must belong to a
table in scope: sqlglot's ``qualify`` resolves columns through aliases,
joins and subqueries and expands ``*`` to the public columns only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify

from firstlight.query.adql.dialect import Adql
from firstlight.query.adql.errors import AdqlError
from firstlight.query.public import PublicTable

_ALLOWED: tuple[type[exp.Expr], ...] = (
    # structure
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.From, exp.Join,
    exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset,
    exp.Distinct, exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Star,
    # values and operators
    exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Neg, exp.Not, exp.And, exp.Or, exp.EQ,
    exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Like,
    exp.ILike, exp.Escape, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe, exp.Cast,
    exp.DataType, exp.DataTypeParam, exp.Case, exp.If, exp.Exists,
    # functions
    exp.Abs, exp.Ceil, exp.Floor, exp.Exp, exp.Ln, exp.Log, exp.Pow, exp.Sqrt, exp.Round,
    exp.Trunc, exp.Sin, exp.Cos, exp.Tan, exp.Asin, exp.Acos, exp.Atan, exp.Atan2, exp.Cot,
    exp.Degrees, exp.Radians, exp.Pi, exp.Rand, exp.Count, exp.Avg, exp.Sum, exp.Min, exp.Max,
    exp.Upper, exp.Lower, exp.Coalesce, exp.Substring, exp.Length, exp.Contains,
    exp.Anonymous,
)  # fmt: skip

_GEOMETRY = "POINT CIRCLE BOX POLYGON INTERSECTS DISTANCE COORD1 COORD2 COORDSYS AREA CENTROID"
GEOMETRY_FUNCTIONS = frozenset(_GEOMETRY.split())

_SQL_TYPES = {
    "boolean": "BOOLEAN",
    "short": "SMALLINT",
    "int": "INT",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE",
    "char": "TEXT",
}


# ADQL 2.1's CAST targets (section 2.3.4): numbers, characters, timestamps.
CAST_TYPES = {
    exp.DataType.Type.SMALLINT: "SMALLINT", exp.DataType.Type.INT: "INTEGER",
    exp.DataType.Type.BIGINT: "BIGINT", exp.DataType.Type.FLOAT: "REAL",
    exp.DataType.Type.DOUBLE: "DOUBLE PRECISION", exp.DataType.Type.CHAR: "CHAR",
    exp.DataType.Type.VARCHAR: "VARCHAR", exp.DataType.Type.TIMESTAMP: "TIMESTAMP",
}  # fmt: skip
# What users write that ADQL does not have, named as they wrote it.
_NOT_ADQL = {
    "BitwiseRightShift": "the operator >>", "BitwiseLeftShift": "the operator <<",
    "BitwiseAnd": "the operator &", "BitwiseOr": "the operator |", "BitwiseXor": "the operator ^",
    "BitwiseNot": "the operator ~", "With": "WITH (common table expressions)",
    "Window": "window functions (OVER)", "Lateral": "LATERAL", "Array": "arrays",
    "Interval": "INTERVAL", "Placeholder": "parameters", "Parameter": "parameters",
    "Collate": "COLLATE", "Filter": "FILTER", "Extract": "EXTRACT", "Dot": "this name",
}  # fmt: skip
_AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)


def check_forms(tree: exp.Expr) -> None:
    """Refuse any node outside the ADQL subset this translator renders."""
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
            if name not in GEOMETRY_FUNCTIONS:
                raise AdqlError.at(node, f"unknown function {name}")
        elif isinstance(node, exp.Cast):
            target = node.to.this if isinstance(node.to, exp.DataType) else None
            if target not in CAST_TYPES:
                allowed = ", ".join(dict.fromkeys(CAST_TYPES.values()))
                raise AdqlError.at(
                    node, f"CAST to {node.to.sql()} is not ADQL: cast to one of {allowed}"
                )
        elif not isinstance(node, _ALLOWED):
            what = _NOT_ADQL.get(type(node).__name__)
            if what is None:
                what = f"'{node.sql(dialect=Adql)[:40]}'"
            raise AdqlError.at(node, f"{what} is not part of ADQL")


def _own_nodes(root: exp.Expr, *, into_aggregates: bool = False) -> list[exp.Expr]:
    """The nodes of ``root`` outside nested queries (and aggregates), iteratively."""
    skip = (exp.Query, exp.Subquery) if into_aggregates else (exp.Query, exp.Subquery, *_AGGREGATES)
    out: list[exp.Expr] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node is not root and isinstance(node, skip):
            continue
        out.append(node)
        stack.extend(node.iter_expressions())
    return out


def check_grouping(tree: exp.Expr) -> None:
    """With aggregates or GROUP BY, every selected column is grouped or aggregated (SQL-92).

    Run on qualified columns. SQLite would answer anyway, with one row's value
    picked at random; ADQL does not.
    """
    for select in tree.find_all(exp.Select):
        _check_select_grouping(select)


def _check_select_grouping(select: exp.Select) -> None:
    group = select.args.get("group")
    grouped = list(group.expressions) if group else []
    aggregated = any(
        isinstance(n, _AGGREGATES)
        for p in select.expressions
        for n in _own_nodes(p, into_aggregates=True)
    ) or bool(select.args.get("having"))
    if not grouped and not aggregated:
        return
    keys = {g.sql() for g in grouped}
    for projection in select.expressions:
        value = projection.this if isinstance(projection, exp.Alias) else projection
        if value.sql() in keys or isinstance(value, _AGGREGATES):
            continue
        for node in _own_nodes(value):
            if isinstance(node, exp.Column) and node.sql() not in keys:
                raise AdqlError.at(
                    node,
                    f"{node.name} must be in GROUP BY or inside an aggregate function "
                    "(COUNT, SUM, AVG, MIN, MAX)",
                )


def resolve_tables(tree: exp.Expr, tables: Sequence[PublicTable]) -> dict[str, PublicTable]:
    """Point every table reference at a public table (schema filled in); the ones used."""
    by_name = {t.table_name: t for t in tables}
    used: dict[str, PublicTable] = {}
    for ref in tree.find_all(exp.Table):
        if ref.args.get("catalog"):
            raise AdqlError.at(ref, f"no public table {ref.sql()}")
        name, schema = ref.name.lower(), ref.db.lower()
        if schema:
            found = by_name.get(f"{schema}.{name}")
        else:
            matches = [t for t in tables if t.name == name]
            if len(matches) > 1:
                options = ", ".join(t.table_name for t in matches)
                raise AdqlError.at(ref, f"table {name} is ambiguous: say which of {options}")
            found = matches[0] if matches else None
        if found is None:
            qualified = f"{schema}.{name}" if schema else name
            raise AdqlError.at(ref, f"no public table {qualified}")
        ref.set("db", exp.to_identifier(found.schema_name))
        ref.set("this", exp.to_identifier(found.name))
        used[found.table_name] = found
    return used


_UNRESOLVED = re.compile(r"Column '([^']+)' could not be resolved|Unknown column: (\S+)")


def qualify_columns(tree: exp.Expr, used: dict[str, PublicTable]) -> exp.Expr:
    """Every column qualified by its table's alias, ``*`` expanded.

    AdqlError for a column no table in scope has.
    """
    by_schema: dict[str, dict[str, dict[str, str]]] = {}
    for table in used.values():
        by_schema.setdefault(table.schema_name, {})[table.name] = {
            c.plain_name: _SQL_TYPES.get(c.datatype, "TEXT") for c in table.columns
        }
    schema: dict[str, object] = dict(by_schema)
    try:
        qualified = qualify(
            tree,
            schema=schema,
            dialect=Adql,
            validate_qualify_columns=True,
            quote_identifiers=False,
            identify=False,
        )
    except OptimizeError as exc:
        text = str(exc)
        match = _UNRESOLVED.search(text)
        if match is None:
            raise AdqlError(text) from exc
        name = (match.group(1) or match.group(2)).strip("'\".,")
        node = next((c for c in tree.find_all(exp.Column) if c.name == name), None)
        in_tables = ", ".join(sorted(used)) or "no table"
        raise AdqlError.at(node, f"unknown column {name} (tables: {in_tables})") from exc
    return qualified
