"""How the ``firstlight`` command reports a failure: one message line and one exit code.

The one place that turns exceptions into exit codes, for every command and
sub-command: commands raise (the library's errors, see ``firstlight.errors``)
and do not catch. Codes, documented in docs/operations.md:

- 0 done;
- 1 refused: the input is invalid, what it names does not exist or its state
  forbids the operation, or the delivery was rejected; fix it, do not retry;
- 2 the command line is wrong (click's usage errors);
- 3 held by the release gate for an operator (``ingest``);
- 4 anything else failed (database, disk, store, a bug): retry once fixed.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup
from typer.exceptions import TyperException

from firstlight.domain.findings import DeliveryRejected
from firstlight.errors import (
    ConflictError,
    ExternalError,
    FirstlightError,
    InvalidInputError,
    NotFoundError,
)

EXIT_OK = 0
EXIT_REFUSED = 1  # also a rejected delivery: the producer fixes it
EXIT_USAGE = 2
EXIT_HELD = 3
EXIT_INFRASTRUCTURE = 4

_err = Console(stderr=True, soft_wrap=True)

_RETRY = "failed (retry when fixed)"

# Most specific first: a kind's label leads the message.
_LABELS: tuple[tuple[type[BaseException], str, int], ...] = (
    (DeliveryRejected, "rejected", EXIT_REFUSED),
    (InvalidInputError, "invalid", EXIT_REFUSED),
    (NotFoundError, "not found", EXIT_REFUSED),
    (ConflictError, "refused", EXIT_REFUSED),
    (ExternalError, _RETRY, EXIT_INFRASTRUCTURE),
    (FirstlightError, "failed", EXIT_REFUSED),
    (OSError, _RETRY, EXIT_INFRASTRUCTURE),
)


def describe(exc: BaseException) -> tuple[str, int]:
    """The label and exit code of an exception the command did not handle itself."""
    for kind, label, code in _LABELS:
        if isinstance(exc, kind):
            return label, code
    if _from_the_database(exc):
        return "database " + _RETRY, EXIT_INFRASTRUCTURE
    return _RETRY, EXIT_INFRASTRUCTURE


def _from_the_database(exc: BaseException) -> bool:
    # SQLAlchemy is loaded only by commands that use the archive: no import for `schema`.
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError)


def report(exc: BaseException) -> int:
    """Print one line (a traceback too when the error is none of ours: a bug); the code."""
    label, code = describe(exc)
    ours = isinstance(exc, FirstlightError | OSError) or _from_the_database(exc)
    if not ours:
        traceback.print_exception(exc, file=sys.stderr)
    text = str(exc) if ours else f"{type(exc).__name__}: {exc}"
    _err.print(f"[bold red]{label}[/bold red]: {escape(text)}")
    return code


class ErrorReportingGroup(TyperGroup):
    """The top-level command group: reports what its commands raise (``report``)."""

    def invoke(self, ctx: Any) -> Any:  # Any: typer's click Context is not public
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # a chosen exit code, Ctrl-C, usage errors: typer reports them
        except Exception as exc:
            raise typer.Exit(report(exc)) from exc
