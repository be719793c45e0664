"""One error vocabulary: every exception class under FirstlightError, one CLI mapping."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from firstlight.analytics.forecast import ForecastResidual
from firstlight.checks.expectations import SuiteUnusableError
from firstlight.checks.obscore import ObservationError
from firstlight.checks.rules import RulesError
from firstlight.checks.suites import SuiteError
from firstlight.cli_errors import ErrorReportingGroup, describe
from firstlight.domain.findings import DeliveryRejected, Finding, Report
from firstlight.domain.manifest import ManifestError
from firstlight.domain.regions import RegionError
from firstlight.errors import (
    ConflictError,
    ExternalError,
    FirstlightError,
    InvalidInputError,
    NotFoundError,
)
from firstlight.formats.detect import FormatError
from firstlight.query.adql.errors import AdqlError
from firstlight.query.cone import NotFoundError as ConeNotFoundError
from firstlight.query.service.formats import OutputFormatError
from firstlight.query.service.params import ParameterError
from firstlight.query.service.scs import ConeRequestError
from firstlight.query.service.uws import PhaseError
from firstlight.query.tap import QueryTimeout
from firstlight.services.quarantine import QuarantineError
from firstlight.storage.objectstore import FixityError, ImmutableObjectError
from firstlight.storage.releases import ReleaseStateError

SRC = Path(__file__).resolve().parents[2] / "src" / "firstlight"

# (class, its kind, the built-in base callers caught before the vocabulary)
CLASSES: list[tuple[type[Exception], type[Exception], type[Exception]]] = [
    (ManifestError, InvalidInputError, ValueError),
    (FormatError, InvalidInputError, ValueError),
    (OutputFormatError, InvalidInputError, ValueError),
    (ObservationError, InvalidInputError, ValueError),
    (RulesError, InvalidInputError, ValueError),
    (SuiteError, InvalidInputError, ValueError),
    (SuiteUnusableError, InvalidInputError, ValueError),
    (RegionError, InvalidInputError, ValueError),
    (AdqlError, InvalidInputError, ValueError),
    (ParameterError, InvalidInputError, ValueError),
    (ConeRequestError, InvalidInputError, ValueError),
    (ConeNotFoundError, NotFoundError, LookupError),
    (PhaseError, ConflictError, ValueError),
    (ReleaseStateError, ConflictError, RuntimeError),
    (ImmutableObjectError, ConflictError, RuntimeError),
    (FixityError, ExternalError, RuntimeError),
    (QuarantineError, ExternalError, RuntimeError),
    (QueryTimeout, ExternalError, RuntimeError),
]


@pytest.mark.parametrize(("cls", "kind", "builtin"), CLASSES, ids=lambda c: c.__name__)
def test_each_error_has_a_kind_and_keeps_what_callers_caught(
    cls: type[Exception], kind: type[Exception], builtin: type[Exception]
) -> None:
    assert issubclass(cls, kind) and issubclass(cls, FirstlightError)
    assert issubclass(cls, builtin)


def test_a_rejection_is_ours_but_no_value_error() -> None:
    # `except ValueError` in the steps must not swallow a verdict.
    assert issubclass(DeliveryRejected, FirstlightError)
    assert not issubclass(DeliveryRejected, ValueError | LookupError | RuntimeError)


def test_forecast_residual_is_a_record_not_an_exception() -> None:
    assert not issubclass(ForecastResidual, BaseException)
    assert ForecastResidual(1, 10.0, 12.5).error_seconds == -2.5


def _is_builtin_exception(name: str) -> bool:
    value = getattr(builtins, name, None)
    return isinstance(value, type) and issubclass(value, BaseException)


def test_no_exception_class_outside_the_vocabulary() -> None:
    """A class deriving from a built-in exception derives from one of ours too."""
    outside = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py" and path.parent == SRC:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            if any(map(_is_builtin_exception, bases)) and all(map(_is_builtin_exception, bases)):
                outside.append(f"{path.relative_to(SRC)}:{node.name}")
    assert outside == [], "derive from a kind in firstlight.errors"


def test_no_class_name_defined_twice() -> None:
    names: dict[str, list[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                names.setdefault(node.name, []).append(str(path.relative_to(SRC)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}


_app = typer.Typer(cls=ErrorReportingGroup)


@_app.command()
def fail(kind: str) -> None:
    match kind:
        case "invalid":
            raise ManifestError("files[2].size: must be >= 0")
        case "missing":
            raise NotFoundError("no delivery 999 in the ledger")
        case "conflict":
            raise ReleaseStateError("demo_dr1_v1 is promoted")
        case "store":
            raise FixityError("public/x.fits: sha256 differs")
        case "disk":
            raise OSError(28, "No space left on device")
        case "rejected":
            raise DeliveryRejected(Report("verify", [Finding("verify.size", "size differs")]))
        case "exit":
            raise typer.Exit(3)
        case _:
            raise KeyError(kind)  # a bug


@_app.command()
def ok() -> None:
    """A second command, so that `fail` stays a sub-command."""


@pytest.mark.parametrize(
    ("kind", "code", "words"),
    [
        ("invalid", 1, "invalid: files[2].size"),
        ("missing", 1, "not found: no delivery 999"),
        ("conflict", 1, "refused: demo_dr1_v1 is promoted"),
        ("store", 4, "failed (retry when fixed): public/x.fits"),
        ("disk", 4, "No space left on device"),
        ("rejected", 1, "rejected: verify failed"),
        ("exit", 3, ""),
        ("bug", 4, "KeyError: 'bug'"),
    ],
)
def test_the_cli_maps_each_kind_to_one_line_and_an_exit_code(
    kind: str, code: int, words: str
) -> None:
    result = CliRunner().invoke(_app, ["fail", kind])
    assert result.exit_code == code, result.output
    assert words in result.output
    # A traceback only for what is none of ours (a bug worth reporting).
    assert ("Traceback" in result.output) == (kind == "bug")


def test_usage_errors_stay_code_2() -> None:
    assert CliRunner().invoke(_app, ["fail"]).exit_code == 2


def test_database_errors_are_infrastructure() -> None:
    from sqlalchemy.exc import OperationalError

    label, code = describe(OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert code == 4 and label.startswith("database")
