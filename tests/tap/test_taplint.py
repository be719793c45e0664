"""STILTS taplint, the IVOA conformance checker, finds no errors in the service."""

from __future__ import annotations

from tests.tap.conftest import Service
from tests.tap.taplint import taplint


def test_taplint_reports_no_errors(service: Service) -> None:
    verdict = taplint(service.tap)

    assert verdict.errors == 0, "\n".join(verdict.lines("E"))
    print("\n".join(verdict.lines("W")))  # the warnings, for the record (pytest -s)
