"""ADQL's functions and operators with the same meaning on every database.

Each node ADQL defines is handed to the backend's ``QueryDialect``
(``query.dialects``), which returns what computes it there, or None when the
database's own function already means what ADQL says. What is decided here,
from the types of the operands, is what SQL says the operation is:

Types come from the public columns' own (no type inference pass: it costs
more than the rest of the translation on long queries); a column of a
subquery counts as a double.

- ``a / b`` of two integers is integer division (``7/2`` is 3, and
  ``source_id/34359738368`` keeps every digit); any other division is double;
- ``MOD`` of two integers is exact integer arithmetic; of anything else it
  works on the operands' shortest decimals, like ``ROUND`` and ``TRUNCATE``;
- ``SUM`` of a single-precision column accumulates in double;
- a zero divisor gives NULL on every backend (as SQLite does by itself).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlglot import exp

if TYPE_CHECKING:  # query.dialects imports query.adql
    from firstlight.query.dialects import QueryDialect

ColumnType = Callable[[exp.Column], str | None]  # a column's VOTable datatype, if public
_INTEGERS = frozenset({"short", "int", "long"})
_INTEGER_CASTS = frozenset(
    {exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT}
)


def is_integer(node: exp.Expr, column_type: ColumnType) -> bool:  # noqa: PLR0911  (a rule a line)
    """Whether SQL gives ``node`` an integer type: integer columns, literals, casts,
    and arithmetic, ROUND, TRUNCATE, SUM, MIN, MAX, ABS of integers, COUNT."""
    if isinstance(node, exp.Paren | exp.Neg):
        return is_integer(node.this, column_type)
    if isinstance(node, exp.Literal):
        return not node.is_string and node.this.lstrip("-").isdigit()
    if isinstance(node, exp.Column):
        return column_type(node) in _INTEGERS
    if isinstance(node, exp.Cast):
        return isinstance(node.to, exp.DataType) and node.to.this in _INTEGER_CASTS
    if isinstance(node, exp.Count):
        return True
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
        return integer_operands(node, column_type)
    if isinstance(node, exp.Round | exp.Trunc | exp.Sum | exp.Min | exp.Max | exp.Abs):
        return is_integer(node.this, column_type)
    return False


def integer_operands(node: exp.Expr, column_type: ColumnType) -> bool:
    """Both operands of a binary operation (or the one of a function) are integers."""
    if isinstance(node, exp.Binary):
        return is_integer(node.this, column_type) and is_integer(node.expression, column_type)
    return is_integer(node.this, column_type)


def portable_functions(tree: exp.Expr, dialect: QueryDialect, column_type: ColumnType) -> exp.Expr:
    """Rewrite ``tree``'s functions for ``dialect``; children first, so arguments are done.

    What each operation's operands are is decided before any child is rewritten.
    """

    def single_precision(node: exp.Expr) -> bool:
        return isinstance(node, exp.Column) and column_type(node) == "float"

    decided: dict[int, tuple[bool, tuple[bool, bool]]] = {}
    for node in tree.walk():
        if isinstance(node, exp.Div | exp.Mod | exp.Round | exp.Trunc):
            other = node.args.get("expression")
            singles = (single_precision(node.this), other is not None and single_precision(other))
            decided[id(node)] = (integer_operands(node, column_type), singles)
    for node in reversed(list(tree.walk(bfs=False))):
        integer, singles = decided.get(id(node), (False, (False, False)))
        fixed = _fixed(node, dialect, single_precision, integer, singles)
        if fixed is not None:
            if node is tree:
                tree = fixed
            else:
                node.replace(fixed)
    return tree


def _fixed(  # noqa: PLR0911  (one return per function ADQL defines)
    node: exp.Expr,
    dialect: QueryDialect,
    single_precision: Callable[[exp.Expr], bool],
    integer: bool,
    singles: tuple[bool, bool],
) -> exp.Expr | None:
    if isinstance(node, exp.Div):
        return dialect.divide(node.this, node.expression, integer=integer)
    if isinstance(node, exp.Mod):
        return dialect.mod(node.this, node.expression, integer=integer, singles=singles)
    if isinstance(node, exp.Round | exp.Trunc):
        how = "ROUND" if isinstance(node, exp.Round) else "TRUNCATE"
        digits = node.args.get("decimals") or exp.convert(0)
        return dialect.rounded(how, node.this, digits, single=singles[0], integer=integer)
    if isinstance(node, exp.Sum) and single_precision(node.this):
        return dialect.sum_single(node.this)
    if isinstance(node, exp.Log) and node.expression is not None:
        base = node.this
        if isinstance(base, exp.Literal) and not base.is_string and float(base.this) == 10:
            return dialect.log10(node.expression)
        return None
    if isinstance(node, exp.Rand):
        return dialect.rand()
    if isinstance(node, exp.Cot):
        return dialect.cot(node.this)
    if isinstance(node, exp.Degrees):
        return dialect.scaled(node.this, 180 / math.pi)
    if isinstance(node, exp.Radians):
        return dialect.scaled(node.this, math.pi / 180)
    if isinstance(node, exp.Pi):
        return dialect.pi()
    return None
