"""What checks find: findings a person can act on, gathered in a report.

A finding names the file and, where it applies, the HDU, the column and the
rows; ``check`` is a stable dotted name (``verify.sha256``, ``fits.checksum``)
that reports and tests match on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from firstlight.errors import FirstlightError


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    check: str
    reason: str
    file: str | None = None
    hdu: int | None = None
    column: str | None = None
    failing_count: int | None = None
    sample_rows: tuple[int, ...] = ()
    observed: str | None = None
    severity: Severity = Severity.ERROR

    def describe(self) -> str:
        where = [p for p in (self.file, _opt("HDU", self.hdu), _opt("column", self.column)) if p]
        prefix = ", ".join(where)
        rows = f" (rows {', '.join(map(str, self.sample_rows))})" if self.sample_rows else ""
        return f"{prefix + ': ' if prefix else ''}[{self.check}] {self.reason}{rows}"

    def table_row(self) -> dict[str, str]:
        """file, check, rows, message (and severity): one line of a findings table."""
        where = [p for p in (_opt("HDU", self.hdu), _opt("column", self.column)) if p]
        message = ", ".join(where) + ": " + self.reason if where else self.reason
        if self.observed:
            message += f" ({self.observed})"
        rows = ""
        if self.failing_count is not None:
            rows = f"{self.failing_count:,}"
        if self.sample_rows:
            listed = ", ".join(map(str, self.sample_rows))
            rows = f"{rows} (e.g. {listed})" if rows else listed
        return {
            "file": self.file or "",
            "check": self.check,
            "rows": rows,
            "message": message,
            "severity": self.severity.value,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sample_rows"] = list(self.sample_rows)
        return {k: v for k, v in data.items() if v not in (None, [])}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of ``to_dict`` (e.g. a finding read back from report.json)."""
        return cls(
            check=data["check"],
            reason=data["reason"],
            file=data.get("file"),
            hdu=data.get("hdu"),
            column=data.get("column"),
            failing_count=data.get("failing_count"),
            sample_rows=tuple(data.get("sample_rows") or ()),
            observed=data.get("observed"),
            severity=Severity(data.get("severity", Severity.ERROR.value)),
        )


def _opt(label: str, value: object) -> str | None:
    return None if value is None else f"{label} {value}"


@dataclass
class Report:
    """All findings of one step on one delivery."""

    step: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)

    def summary(self, limit: int = 3) -> str:
        errs = self.errors
        head = "; ".join(f.describe() for f in errs[:limit])
        more = f" (+{len(errs) - limit} more)" if len(errs) > limit else ""
        return head + more

    def table(self) -> list[dict[str, str]]:
        """One row per finding, errors first: what a findings table shows a person."""
        ordered = sorted(self.findings, key=lambda f: f.severity is not Severity.ERROR)
        return [f.table_row() for f in ordered]

    def to_json(self) -> str:
        return json.dumps(
            {"step": self.step, "ok": self.ok, "findings": [f.to_dict() for f in self.findings]},
            indent=2,
        )


class DeliveryRejected(FirstlightError):  # noqa: N818  (a verdict, not an error in our code)
    """A delivery failed a check: it goes to quarantine with this report."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(f"{report.step} failed: {report.summary()}")
