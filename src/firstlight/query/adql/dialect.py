"""ADQL 2.1 as a sqlglot dialect, and parsing one query into a tree.

ADQL is SQL-92 with ``TOP n`` (T-SQL's place for a row limit), ``LOG`` as the
natural logarithm and geometry functions (``POINT``, ``CIRCLE``...), which
sqlglot keeps as plain function calls for ``query.adql.geometry`` to rewrite.
Unquoted identifiers are case-insensitive (lower-cased); quoted ones exact.
"""

from __future__ import annotations

import re
from typing import ClassVar

from sqlglot import TokenType, exp, parser, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token  # type: ignore[attr-defined]  # re-exported, not listed

from firstlight.query.adql.errors import AdqlError


class Adql(Dialect):
    class Tokenizer(tokens.Tokenizer):
        KEYWORDS: ClassVar[dict[str, TokenType]] = {
            **tokens.Tokenizer.KEYWORDS,
            "TOP": TokenType.TOP,
        }

    class Parser(parser.Parser):
        LOG_DEFAULTS_TO_LN = True  # ADQL: LOG is ln, LOG10 is the decimal one


# Bounds on what a query may be before any work is spent on it: the parser
# and the rewriting recurse, so depth is bounded before parsing (brackets) and
# after (AND/OR chains are rebalanced, then the tree's depth is measured).
MAX_QUERY_CHARS = 65_536
MAX_TOKENS = 5_000
MAX_BRACKET_DEPTH = 40
MAX_TREE_DEPTH = 120

# Tokens a list item cannot end before: "a, FROM", "f(a, )".
_AFTER_LIST = {
    TokenType.FROM: "FROM", TokenType.WHERE: "WHERE", TokenType.GROUP_BY: "GROUP BY",
    TokenType.ORDER_BY: "ORDER BY", TokenType.HAVING: "HAVING", TokenType.R_PAREN: ")",
    TokenType.COMMA: ",",
}  # fmt: skip
_STARTS = {TokenType.SELECT, TokenType.L_PAREN}


def parse_adql(text: str) -> exp.Query:
    """The one SELECT (or set operation of SELECTs) in ``text``; AdqlError otherwise."""
    if not text.strip():
        raise AdqlError("the query is empty")
    if len(text) > MAX_QUERY_CHARS:
        raise AdqlError(
            f"the query is {len(text):,} characters long; at most {MAX_QUERY_CHARS:,} are accepted"
        )
    tokens = _check_tokens(text)
    try:
        # Parsed from the tokens just checked: the text is read once.
        statements = [s for s in Adql().parser().parse(tokens, text) if s is not None]
    except ParseError as exc:
        raise _syntax_error(exc) from exc
    except TokenError as exc:  # pragma: no cover - _tokens has read the text already
        raise AdqlError(f"syntax error: {exc}") from exc
    except RecursionError as exc:  # pragma: no cover - bounded by the bracket depth above
        raise AdqlError("the query nests too deeply to be read") from exc
    if len(statements) != 1:
        raise AdqlError(f"one SELECT query expected, found {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query) or isinstance(tree, exp.Values):
        kind = tree.key.upper()
        raise AdqlError.at(tree, f"only SELECT queries are allowed, not {kind}")
    tree = _balanced(tree)
    depth = _depth(tree)
    if depth > MAX_TREE_DEPTH:
        raise AdqlError(
            f"the query's expressions nest {depth} levels deep; at most {MAX_TREE_DEPTH} are "
            "accepted (write long lists of alternatives as IN (...))"
        )
    return tree


def _check_tokens(text: str) -> list[Token]:
    """The query's tokens, checked for what sqlglot's parser would let pass or choke on."""
    try:
        found = Adql().tokenize(text)
    except TokenError as exc:
        opening = _unclosed_quote(text)
        if opening is None:
            raise AdqlError("syntax error: the query cannot be read into words") from exc
        line = text.count("\n", 0, opening) + 1
        column = opening - (text.rfind("\n", 0, opening) + 1) + 1
        raise AdqlError("syntax error: unterminated string literal", line, column) from exc
    if len(found) > MAX_TOKENS:
        raise AdqlError(f"the query has {len(found):,} tokens; at most {MAX_TOKENS:,} are accepted")
    if found and found[0].token_type not in _STARTS:
        first = found[0]
        raise AdqlError(
            f"only SELECT queries are allowed: a query starts with SELECT, found {first.text!r}",
            first.line,
            _first_column(first),
        )
    depth = 0
    for token, following in zip(found, [*found[1:], None], strict=True):
        if token.token_type is TokenType.L_PAREN:
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise AdqlError(
                    f"brackets nest deeper than {MAX_BRACKET_DEPTH} levels",
                    token.line,
                    _first_column(token),
                )
        elif token.token_type is TokenType.R_PAREN:
            depth -= 1
        elif token.token_type is TokenType.COMMA:
            after = "the end of the query" if following is None else None
            if following is not None and following.token_type in _AFTER_LIST:
                after = repr(_AFTER_LIST[following.token_type])
            if after is not None:
                raise AdqlError(
                    f"syntax error: expected a column or expression after ',', found {after}",
                    token.line,
                    _first_column(token),
                )
    return found


def _unclosed_quote(text: str) -> int | None:
    """Where the string literal (or delimited name) that is never closed starts."""
    inside: str | None = None
    start = 0
    for i, ch in enumerate(text):
        if inside is None and ch in "'\"":
            inside, start = ch, i
        elif ch == inside:
            inside = None  # a doubled quote closes and reopens: same result
    return start if inside is not None else None


def _first_column(token: Token) -> int:
    # sqlglot records a token's last column.
    return max(1, int(token.col) - len(token.text) + 1)


_OPERATORS = {
    "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "EQ": "=", "NEQ": "<>", "And": "AND",
    "Or": "OR", "Not": "NOT", "Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "DPipe": "||",
    "Like": "LIKE", "Between": "BETWEEN", "In": "IN", "Is": "IS",
}  # fmt: skip
_MISSING = re.compile(r"Required keyword: '(\w+)' missing for <class '[\w.]*\.(\w+)'>")


def _syntax_error(exc: ParseError) -> AdqlError:
    """sqlglot's complaint said in ADQL's terms, at the first column of the token at fault."""
    first = exc.errors[0] if exc.errors else {}
    description = str(first.get("description") or exc).split("\n")[0]
    near, line, col = first.get("highlight"), first.get("line"), first.get("col")
    if isinstance(col, int) and near:
        col = max(1, col - len(near) + 1)
    missing = _MISSING.search(description)
    if missing:
        operator = _OPERATORS.get(missing.group(2), missing.group(2).upper())
        message = f"expected an expression after {operator!r}"
        if missing.group(1) != "expression":
            message = f"{operator} is incomplete: its {missing.group(1)} is missing"
    elif description.startswith(("Invalid expression", "Unexpected token")):
        message = f"unexpected {near!r}" if near else "unexpected end of the query"
    elif description.startswith("Expecting )"):
        message = f"expected ')' before {near!r}" if near else "expected ')'"
    else:
        message = description + (f" (near {near!r})" if near else "")
    return AdqlError(f"syntax error: {message}", line, col)


def _balanced(tree: exp.Query) -> exp.Query:
    """Long AND/OR chains rebuilt as balanced trees (same meaning, logarithmic depth)."""

    def rebalance(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.And | exp.Or) or isinstance(node.parent, type(node)):
            return node
        terms = list(node.flatten())
        if len(terms) < 8:
            return node
        kind = type(node)

        def build(part: list[exp.Expr]) -> exp.Expr:
            if len(part) == 1:
                return part[0]
            mid = len(part) // 2
            return kind(this=build(part[:mid]), expression=build(part[mid:]))

        return build(terms)

    out = tree.transform(rebalance, copy=False)
    assert isinstance(out, exp.Query)
    return out


def _depth(tree: exp.Expr) -> int:
    """The depth of the tree, without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest
