"""ADQL 2.1 as a sqlglot dialect, and parsing one query into a tree.

ADQL is SQL-92 with ``TOP n`` (T-SQL's place for a row limit), ``LOG`` as the
natural logarithm and geometry functions (``POINT``, ``CIRCLE``...), which
sqlglot keeps as plain function calls for ``query.adql.geometry`` to rewrite.
Unquoted identifiers are case-insensitive (lower-cased); quoted ones exact.
"""

from __future__ import annotations

from typing import ClassVar

import sqlglot
from sqlglot import TokenType, exp, parser, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from firstlight.query.adql.errors import AdqlError


class Adql(Dialect):
    class Tokenizer(tokens.Tokenizer):
        KEYWORDS: ClassVar[dict[str, TokenType]] = {
            **tokens.Tokenizer.KEYWORDS,
            "TOP": TokenType.TOP,
        }

    class Parser(parser.Parser):
        LOG_DEFAULTS_TO_LN = True  # ADQL: LOG is ln, LOG10 is the decimal one


def parse_adql(text: str) -> exp.Query:
    """The one SELECT (or set operation of SELECTs) in ``text``; AdqlError otherwise."""
    if not text.strip():
        raise AdqlError("the query is empty")
    try:
        statements = [s for s in sqlglot.parse(text, read=Adql) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        message = str(first.get("description") or exc).split("\n")[0]
        near, line, col = first.get("highlight"), first.get("line"), first.get("col")
        if near:
            message = f"{message} (near {near!r})"
            if isinstance(col, int):  # sqlglot gives the token's last column: say its first
                col = max(1, col - len(near) + 1)
        raise AdqlError(f"syntax error: {message}", line, col) from exc
    except TokenError as exc:
        raise AdqlError(f"syntax error: {exc}") from exc
    if len(statements) != 1:
        raise AdqlError(f"one SELECT query expected, found {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query) or isinstance(tree, exp.Values):
        kind = tree.key.upper()
        raise AdqlError.at(tree, f"only SELECT queries are allowed, not {kind}")
    return tree
