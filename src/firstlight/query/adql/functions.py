"""ADQL's functions with the same meaning on every database.

Each fixer takes a node and the backend and returns its replacement, or None
when the database's own function already means what ADQL says:

- ``MOD``: PostgreSQL has no ``%`` on doubles (numeric instead); SQLite's ``%``
  truncates doubles (its ``MOD()`` then) but is exact on integers;
- ``ROUND``: PostgreSQL rounds a double's halves to even, numeric away from zero
  like the others; ``TRUNCATE(x, n)``: neither PostgreSQL nor SQLite has it on
  doubles;
- ``LOG10``: PostgreSQL's one-argument ``LOG`` (its ``LOG(b, x)`` wants numerics);
- ``RAND``: SQLite's ``RANDOM()`` is a 64-bit integer;
- ``COT``: SQLite has none; Oracle lacks ``DEGREES``, ``RADIANS`` and ``PI``;
- ``SUM`` of a single-precision column: PostgreSQL would sum in single precision.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from sqlglot import exp

from firstlight.query.adql.geometry import number

SinglePrecision = Callable[[exp.Expr], bool]
Fixer = Callable[[exp.Expr, str, SinglePrecision], exp.Expr | None]


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def as_double(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "DOUBLE")


def _as_decimal(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "DECIMAL")


def _sum(node: exp.Expr, backend: str, single: SinglePrecision) -> exp.Expr | None:
    if backend == "postgresql" and single(node.this):
        return exp.Sum(this=as_double(node.this))
    return None


def _mod(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
    a, b = node.this, node.expression
    if backend == "postgresql":
        return as_double(_fn("MOD", _as_decimal(a), _as_decimal(b)))
    if backend == "sqlite":
        integers = exp.and_(
            exp.EQ(this=_fn("TYPEOF", a.copy()), expression=exp.Literal.string("integer")),
            exp.EQ(this=_fn("TYPEOF", b.copy()), expression=exp.Literal.string("integer")),
        )
        exact = exp.Mod(this=a.copy(), expression=b.copy())
        return exp.Case(ifs=[exp.If(this=integers, true=exact)], default=_fn("MOD", a, b))
    return None


def _round(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
    if backend != "postgresql":
        return None
    digits = node.args.get("decimals")
    args = [_as_decimal(node.this)] + ([digits] if digits is not None else [])
    return as_double(_fn("ROUND", *args))


def _trunc(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
    digits = node.args.get("decimals")
    if digits is None:
        return None
    if backend == "postgresql":
        return as_double(_fn("TRUNC", _as_decimal(node.this), digits))
    if backend == "sqlite":
        scale = exp.Pow(this=exp.convert(10.0), expression=digits)
        return exp.paren(_fn("TRUNC", exp.paren(node.this) * scale) / scale.copy())
    return None


def _log(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
    if backend == "postgresql" and number(node.this) == 10:
        return _fn("LOG", node.expression)
    return None


def _rand(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
    if backend == "sqlite":
        return exp.paren(_fn("RANDOM") / exp.convert(2.0**64) + exp.convert(0.5))
    return exp.Rand() if node.this is not None else None  # no seeds: not everywhere


def _cot(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
    if backend == "postgresql":
        return None
    return exp.paren(exp.convert(1.0) / _fn("TAN", node.this))


def _scaled(factor: float) -> Fixer:
    def fixer(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
        if backend != "oracle":
            return None
        return exp.paren(exp.paren(node.this) * exp.convert(factor))

    return fixer


def _pi(node: exp.Expr, backend: str, _: SinglePrecision) -> exp.Expr | None:
    return exp.convert(math.pi) if backend == "oracle" else None


FIXERS: dict[type[exp.Expr], Fixer] = {
    exp.Sum: _sum,
    exp.Mod: _mod,
    exp.Round: _round,
    exp.Trunc: _trunc,
    exp.Log: _log,
    exp.Rand: _rand,
    exp.Cot: _cot,
    exp.Degrees: _scaled(180 / math.pi),
    exp.Radians: _scaled(math.pi / 180),
    exp.Pi: _pi,
}


def portable_functions(tree: exp.Expr, backend: str, single_precision: SinglePrecision) -> exp.Expr:
    """Rewrite ``tree``'s functions for ``backend``; children first, so arguments are done."""
    for node in reversed(list(tree.walk(bfs=False))):
        fixer = FIXERS.get(type(node))
        fixed = fixer(node, backend, single_precision) if fixer else None
        if fixed is not None:
            if node is tree:
                tree = fixed
            else:
                node.replace(fixed)
    return tree
