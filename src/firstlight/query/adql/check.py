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

GEOMETRY_FUNCTIONS = frozenset(
    {"POINT", "CIRCLE", "BOX", "POLYGON", "INTERSECTS", "DISTANCE", "COORD1", "COORD2"}
)

_SQL_TYPES = {
    "boolean": "BOOLEAN",
    "short": "SMALLINT",
    "int": "INT",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE",
    "char": "TEXT",
}


def check_forms(tree: exp.Expr) -> None:
    """Refuse any node outside the ADQL subset this translator renders."""
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
            if name not in GEOMETRY_FUNCTIONS:
                raise AdqlError.at(node, f"unknown function {name}")
        elif not isinstance(node, _ALLOWED):
            what = node.key.upper()
            raise AdqlError.at(node, f"{what} is not supported in ADQL queries here")


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
    """Every column qualified by its table's alias, ``*`` expanded; AdqlError if unknown."""
    by_schema: dict[str, dict[str, dict[str, str]]] = {}
    for table in used.values():
        by_schema.setdefault(table.schema_name, {})[table.name] = {
            c.plain_name: _SQL_TYPES.get(c.datatype, "TEXT") for c in table.columns
        }
    schema: dict[str, object] = dict(by_schema)
    try:
        return qualify(
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
