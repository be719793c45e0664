"""ADQL's ROUND, TRUNCATE and MOD on binary floating-point values, exactly.

A stored value is a binary float; what a scientist reads (and what numpy,
astropy and the FITS header print) is its shortest decimal representation:
float32's ``20.999998``, not the binary value's ``20.99999809265136...``.
ROUND and TRUNCATE work on that decimal, exactly, and so does MOD (the SQL
one: the result takes the dividend's sign). Rounding is half away from zero
(SQL's numeric ROUND), truncation towards zero. Integers stay integers.

These are the definitions: SQLite runs them as registered functions, the
PostgreSQL rendering (``query.dialects``) computes the same through numeric,
and the differential tests compare both with them over numpy's values.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import numpy as np

# Wide enough for any double's shortest repr scaled by any sensible digit count.
_CONTEXT = Context(prec=400, Emax=999_999, Emin=-999_999)
_MAX_DIGITS = 330  # beyond this every double is already exact (or rounds to 0)


def shortest(value: float, single: bool = False) -> Decimal:
    """The shortest decimal that reads back as ``value`` (as a float32 when ``single``)."""
    text = str(np.float32(value)) if single else repr(float(value))
    return Decimal(text)


def _quantized(value: Decimal, digits: int, rounding: str) -> Decimal:
    digits = max(-_MAX_DIGITS, min(_MAX_DIGITS, digits))
    step = Decimal(1).scaleb(-digits)
    try:
        return value.quantize(step, rounding=rounding, context=_CONTEXT)
    except InvalidOperation:  # more digits than the context holds: nothing to round
        return value


def _rounded(value: float | int | None, digits: int | float | None, single: bool, how: str) -> Any:
    if value is None:
        return None
    n = 0 if digits is None else int(digits)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(_quantized(Decimal(value), n, how))
    if not math.isfinite(value):
        return float(value)
    return float(_quantized(shortest(value, single), n, how))


def adql_round(value: float | int | None, digits: int | float | None = 0, single: int = 0) -> Any:
    """ROUND(value, digits): half away from zero, on the shortest decimal."""
    return _rounded(value, digits, bool(single), ROUND_HALF_UP)


def adql_truncate(
    value: float | int | None, digits: int | float | None = 0, single: int = 0
) -> Any:
    """TRUNCATE(value, digits): towards zero, on the shortest decimal."""
    return _rounded(value, digits, bool(single), ROUND_DOWN)


def adql_mod(
    a: float | int | None, b: float | int | None, single_a: int = 0, single_b: int = 0
) -> Any:
    """MOD(a, b): a - b * TRUNC(a / b), on the shortest decimals; NULL when b is 0."""
    if a is None or b is None or b == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return _int_mod(a, b)
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.nan
    x = shortest(a, bool(single_a)) if isinstance(a, float) else Decimal(a)
    y = shortest(b, bool(single_b)) if isinstance(b, float) else Decimal(b)
    # Decimal's remainder truncates: its sign follows the dividend, as in SQL.
    return float(_CONTEXT.remainder(x, y))


def _int_mod(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return -r if a < 0 else r
