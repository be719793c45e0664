"""Content checks of one catalogue against its table definition in the manifest.

Belongs here: checks of a catalogue's columns and rows, whatever its format
(FITS, VOTable, CSV, Parquet), streamed chunk by chunk through
``formats.tables`` so memory stays bounded, key uniqueness included (``duplicate_keys``
spills keys to disk beyond a fixed number). FITS structure is
``fits_checks``' business.

Check names: ``table.read``, ``table.columns``, ``table.empty``,
``table.ra_range``, ``table.dec_range``, ``table.key_null``, ``table.key_unique``.
Rows in findings are 0-based; at most ``SAMPLE_ROWS`` of them are named.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from astropy import units as u
from numpy.typing import NDArray

from firstlight.checks.duplicate_keys import DuplicateKeys
from firstlight.checks.fits_checks import BROKEN_FITS_ERRORS
from firstlight.domain.findings import Finding, Severity
from firstlight.domain.manifest import Column, DataType, FileFormat, TableDefinition
from firstlight.domain.progress import RowProgress
from firstlight.formats.columns import Chunk
from firstlight.formats.fits_table import FitsTableReader
from firstlight.formats.parquet_table import ParquetTableReader
from firstlight.formats.tables import TableReader, open_table

SAMPLE_ROWS = 10

# What readers raise on broken files (FormatError is a ValueError).
READ_ERRORS: tuple[type[Exception], ...] = (
    *BROKEN_FITS_ERRORS,
    pa.ArrowException,
    csv.Error,
    NotImplementedError,
)

# A file's column type may be stored in a declared type that holds all its values.
_STORABLE_AS: dict[DataType, frozenset[DataType]] = {
    DataType.BOOLEAN: frozenset({DataType.BOOLEAN}),
    DataType.INT16: frozenset(
        {DataType.INT16, DataType.INT32, DataType.INT64, DataType.FLOAT32, DataType.FLOAT64}
    ),
    DataType.INT32: frozenset({DataType.INT32, DataType.INT64, DataType.FLOAT64}),
    DataType.INT64: frozenset({DataType.INT64}),
    DataType.FLOAT32: frozenset({DataType.FLOAT32, DataType.FLOAT64}),
    DataType.FLOAT64: frozenset({DataType.FLOAT64}),
    DataType.STRING: frozenset({DataType.STRING}),
}


def check_catalogue(
    path: Path,
    rel: str,
    fmt: FileFormat,
    table: TableDefinition,
    chunk_rows: int = 100_000,
    *,
    progress: RowProgress | None = None,
) -> list[Finding]:
    """Columns as defined, at least one row, positions on the sky, keys present and unique."""
    findings: list[Finding] = []
    with _warnings_as_findings(findings, rel):
        try:
            reader = _open_checked(path, rel, fmt, table, findings)
            if reader is not None:
                findings.extend(scan_rows(reader, rel, table, chunk_rows, progress=progress))
        except READ_ERRORS as exc:
            reason = f"cannot be read as {fmt}: {_text(exc)}"
            column = getattr(exc, "column", None)
            findings.append(Finding("table.read", reason, file=rel, column=column))
    return list(dict.fromkeys(findings))


def _open_checked(
    path: Path, rel: str, fmt: FileFormat, table: TableDefinition, findings: list[Finding]
) -> TableReader | None:
    """Open the table, compare its columns; None if its rows cannot be read as defined."""
    if fmt is FileFormat.CSV:
        # A CSV has names but no types: the definition's types are applied while
        # reading (a value that does not parse is a read error). The typed reader
        # accepts only the defined names, so compare names from an untyped read first.
        names = open_table(path, fmt).columns()
        findings.extend(compare_columns(names, table, rel, compare_types=False))
        if {c.name.lower() for c in names} != {c.name.lower() for c in table.columns}:
            return None
        return open_table(path, fmt, table)
    reader = open_table(path, fmt, table)
    findings.extend(compare_columns(reader.columns(), table, rel))
    return reader


def compare_columns(
    file_columns: list[Column],
    table: TableDefinition,
    rel: str,
    *,
    compare_types: bool = True,
) -> list[Finding]:
    """``table.columns``: same names (case-insensitive), compatible types, equal units."""
    findings = []
    present: dict[str, Column] = {}
    for column in file_columns:
        key = column.name.lower()
        if key in present:
            reason = f"file column {column.name} repeats {present[key].name} (names ignore case)"
            findings.append(Finding("table.columns", reason, file=rel, column=column.name))
        present.setdefault(key, column)
    declared = {c.name.lower(): c for c in table.columns}
    for key, column in declared.items():
        if key not in present:
            reason = f"declared column {column.name} is missing from the file"
            findings.append(Finding("table.columns", reason, file=rel, column=column.name))
    for key, column in present.items():
        if key not in declared:
            reason = f"file column {column.name} is not in table {table.name}'s definition"
            findings.append(Finding("table.columns", reason, file=rel, column=column.name))
            continue
        findings.extend(_column_mismatch(column, declared[key], rel, compare_types=compare_types))
    return findings


def _column_mismatch(
    found: Column, declared: Column, rel: str, *, compare_types: bool
) -> list[Finding]:
    findings = []
    if compare_types and declared.datatype not in _STORABLE_AS[found.datatype]:
        reason = f"file stores {found.datatype}, which does not fit declared {declared.datatype}"
        findings.append(
            Finding("table.columns", reason, file=rel, column=found.name, observed=found.datatype)
        )
    if found.unit and declared.unit and not same_unit(found.unit, declared.unit):
        reason = f"unit {found.unit!r} differs from declared {declared.unit!r}"
        findings.append(
            Finding("table.columns", reason, file=rel, column=found.name, observed=found.unit)
        )
    return findings


def same_unit(a: str, b: str) -> bool:
    """Equal as written, or as astropy units ('deg' and 'degree' are one unit)."""
    if a.strip() == b.strip():
        return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unparsable unit is simply not equal
        try:
            return bool(u.Unit(a, parse_strict="raise") == u.Unit(b, parse_strict="raise"))
        except (ValueError, TypeError):
            return False


# --- rows --------------------------------------------------------------------------


@dataclass
class _Tally:
    """Failing rows of one check: how many, and the first few (row and value)."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    def add(self, failing: NDArray[np.bool_], values: NDArray[Any], offset: int) -> None:
        where = np.flatnonzero(failing)
        self.count += int(where.size)
        room = SAMPLE_ROWS - len(self.rows)
        for index in where[: max(room, 0)]:
            self.rows.append(int(index) + offset)
            value = values[index]
            self.values.append("null" if value is np.ma.masked else str(value))

    def finding(self, check: str, reason: str, rel: str, column: str) -> Finding | None:
        if not self.count:
            return None
        return Finding(
            check,
            f"{self.count} rows {reason}",
            file=rel,
            column=column,
            failing_count=self.count,
            sample_rows=tuple(self.rows),
            observed="e.g. " + ", ".join(self.values),
        )


@dataclass
class _KeyScan:
    """Null keys as they stream by; non-null keys to the duplicate finder (bounded memory)."""

    duplicates: DuplicateKeys
    nulls: _Tally = field(default_factory=_Tally)

    def add(self, column: NDArray[Any], offset: int) -> None:
        null = null_keys(column)
        self.nulls.add(null, column, offset)
        keep = ~null
        rows = np.flatnonzero(keep).astype(np.int64) + offset
        self.duplicates.add(np.asarray(np.ma.getdata(column)[keep]), rows)


def null_keys(column: NDArray[Any]) -> NDArray[np.bool_]:
    """Missing ids: masked, NaN, or an empty string."""
    null = np.ma.getmaskarray(column).copy()
    data = np.ma.getdata(column)
    if data.dtype.kind == "f":
        null |= np.isnan(data)
    elif data.dtype.kind in "US":
        null |= np.char.str_len(data) == 0
    return null


@dataclass
class _RowScan:
    """What is learnt from the rows, chunk by chunk."""

    ra: str | None
    dec: str | None
    key: str | None
    keys: _KeyScan
    rows: int = 0
    ra_bad: _Tally = field(default_factory=_Tally)
    dec_bad: _Tally = field(default_factory=_Tally)

    def add(self, chunk: Chunk) -> None:
        length = len(next(iter(chunk.values()))) if chunk else 0
        if self.ra is not None and self.ra in chunk:
            values = chunk[self.ra]
            self.ra_bad.add(out_of_range(values, 0.0, 360.0, upper_open=True), values, self.rows)
        if self.dec is not None and self.dec in chunk:
            values = chunk[self.dec]
            self.dec_bad.add(out_of_range(values, -90.0, 90.0), values, self.rows)
        if self.key is not None and self.key in chunk:
            self.keys.add(chunk[self.key], self.rows)
        self.rows += length


def scan_rows(
    reader: TableReader,
    rel: str,
    table: TableDefinition,
    chunk_rows: int,
    *,
    progress: RowProgress | None = None,
) -> list[Finding]:
    """Stream the rows once; findings for emptiness, positions and keys."""
    spelled = {c.name.lower(): c.name for c in reader.columns()}

    def in_file(name: str | None) -> str | None:
        return None if name is None else spelled.get(name.lower())

    # Sizes the key spill's partitions; a TABLEDATA VOTable or a CSV would have to be
    # read once more to count its rows, so those take the fixed number of partitions.
    counted = isinstance(reader, FitsTableReader | ParquetTableReader)
    total = reader.num_rows() if counted else None
    with DuplicateKeys(total) as duplicates:
        scan = _RowScan(
            ra=in_file(table.ra),
            dec=in_file(table.dec),
            key=in_file(table.primary_key),
            keys=_KeyScan(duplicates),
        )
        # Only the columns judged here are read (all of them if none plays a role: the rows
        # are still counted).
        wanted = [c for c in (scan.ra, scan.dec, scan.key) if c is not None] or None
        for chunk in reader.iter_chunks(chunk_rows, wanted):
            scan.add(chunk)
            if progress is not None:
                progress(scan.rows, total)
        return _row_findings(scan, rel)


def _row_findings(scan: _RowScan, rel: str) -> list[Finding]:
    if scan.rows == 0:
        return [Finding("table.empty", "the table has no rows", file=rel, failing_count=0)]
    keys = scan.keys
    found = []
    if scan.ra is not None:
        why = "have ra null, not finite or outside [0, 360)"
        found.append(scan.ra_bad.finding("table.ra_range", why, rel, scan.ra))
    if scan.dec is not None:
        why = "have dec null, not finite or outside [-90, 90]"
        found.append(scan.dec_bad.finding("table.dec_range", why, rel, scan.dec))
    if scan.key is not None:
        why = "have a null or empty key"
        found.append(keys.nulls.finding("table.key_null", why, rel, scan.key))
        found.append(_duplicate_finding(keys, rel, scan.key))
    return [f for f in found if f is not None]


def _duplicate_finding(keys: _KeyScan, rel: str, column: str) -> Finding | None:
    found = keys.duplicates.duplicates()
    if not found.rows:
        return None
    sample = ", ".join(str(v) for v in found.sample_keys)
    return Finding(
        "table.key_unique",
        f"{found.rows} rows share {found.keys} key values with another row",
        file=rel,
        column=column,
        failing_count=found.rows,
        sample_rows=found.sample_rows,
        observed=f"e.g. {sample}",
    )


def out_of_range(
    values: NDArray[Any], low: float, high: float, *, upper_open: bool = False
) -> NDArray[np.bool_]:
    """Rows null, not finite, or outside [low, high] ([low, high) if ``upper_open``)."""
    data = np.ma.getdata(values)
    if data.dtype.kind not in "iuf":
        # A non-numeric position column is reported by table.columns; every row fails here.
        return np.ones(data.shape, dtype=bool)
    data = data.astype(np.float64, copy=False)
    above = data >= high if upper_open else data > high
    failing = np.ma.getmaskarray(values) | ~np.isfinite(data) | (data < low) | above
    return np.asarray(failing, dtype=bool)


# --- shared ------------------------------------------------------------------------


@contextmanager
def _warnings_as_findings(sink: list[Finding], rel: str) -> Iterator[None]:
    """Readers' warnings (units, VOTable quirks) become ``table.read`` warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            sink.extend(
                Finding("table.read", _text(w.message), file=rel, severity=Severity.WARNING)
                for w in caught
            )


def _text(message: object) -> str:
    return " ".join(str(message).split())
