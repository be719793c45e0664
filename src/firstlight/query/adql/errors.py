"""The one error of ADQL translation, saying where (line and column) and what."""

from __future__ import annotations

from sqlglot import exp

from firstlight.errors import InvalidInputError


class AdqlError(InvalidInputError):
    """A query that is not valid ADQL, or names what is not public; says where and what."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"{where}{message}")
        self.message = message
        self.line = line
        self.column = column

    @classmethod
    def at(cls, node: exp.Expr | None, message: str) -> AdqlError:
        """An error located at ``node`` (its first token the parser placed)."""
        line, column = position(node)
        return cls(message, line, column)


def position(node: exp.Expr | None) -> tuple[int | None, int | None]:
    """(line, column) of the first identifier or literal in ``node`` that has one."""
    if node is None:
        return None, None
    for sub in node.walk(bfs=False):  # depth first: the leftmost token
        meta = sub.meta if sub._meta is not None else {}
        if "line" in meta and "col" in meta:
            end_col = int(meta["col"])
            start, end = meta.get("start"), meta.get("end")
            # The parser records the token's last column; report its first.
            width = int(end) - int(start) if start is not None and end is not None else 0
            return int(meta["line"]), max(1, end_col - width)
    return None, None
