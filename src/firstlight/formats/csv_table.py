"""The CSV reader.

Belongs here: ``CsvTableReader`` (a CSV file streamed by pyarrow with an
explicit type for every column, from a table definition or inferred), what
reads as null in a CSV, and matching a file's header to a definition.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from firstlight.domain.manifest import Column, TableDefinition
from firstlight.formats.arrow_chunks import (
    arrow_chunks,
    arrow_datatype,
    arrow_type,
    normal_arrow_type,
    rebatch,
)
from firstlight.formats.columns import Chunk, check_chunk_rows, describe_column, selected
from firstlight.formats.detect import FormatError, csv_delimiter

# Values read as null from CSV; "NA" stays a value (it is a valid name or code).
_CSV_NULLS = ["", "NULL", "null", "NaN", "nan"]
_ARROW_COLUMN = re.compile(r"In CSV column #(\d+)")


class CsvTableReader:
    """A CSV file streamed by pyarrow with explicit types for every column.

    With a table definition the names and types are the definition's; without
    one, pyarrow infers them from the first block (for describing a new file).
    """

    def __init__(self, path: Path, definition: TableDefinition | None = None) -> None:
        self.path = path
        self._delimiter = csv_delimiter(path)
        header = self._header_names()
        if definition is None:
            self._schema = self._inferred_schema()
        else:
            self._schema = _schema_from_definition(path, header, definition)

    def columns(self) -> list[Column]:
        return [
            describe_column(self.path, f.name, arrow_datatype(self.path, f.name, f.type))
            for f in self._schema
        ]

    def num_rows(self) -> None:
        return None

    def description(self) -> None:
        return None

    def iter_chunks(
        self, chunk_rows: int, columns: Collection[str] | None = None
    ) -> Iterator[Chunk]:
        check_chunk_rows(chunk_rows)
        reader = self._open(self._schema)
        try:
            for chunk in arrow_chunks(self.path, rebatch(reader, chunk_rows), self._schema):
                yield selected(chunk, columns)
        except pa.ArrowException as exc:
            raise _csv_error(self.path, "", exc, self._schema) from exc
        finally:
            reader.close()

    def _header_names(self) -> list[str]:
        with self.path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=self._delimiter), [])
        lowered = [name.lower() for name in header]
        if not header or len(set(lowered)) != len(lowered):
            raise FormatError(f"{self.path.name}: the header line is missing or repeats a name")
        return header

    def _inferred_schema(self) -> pa.Schema:
        reader = self._open(None)
        try:
            inferred = reader.schema
        finally:
            reader.close()
        return pa.schema([(f.name, normal_arrow_type(self.path, f.name, f.type)) for f in inferred])

    def _open(self, schema: pa.Schema | None) -> Any:
        convert = pacsv.ConvertOptions(
            column_types=schema,
            null_values=_CSV_NULLS,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        )
        try:
            return pacsv.open_csv(
                self.path,
                parse_options=pacsv.ParseOptions(delimiter=self._delimiter),
                convert_options=convert,
            )
        except pa.ArrowException as exc:
            raise _csv_error(self.path, "unreadable CSV: ", exc, schema) from exc


def _csv_error(path: Path, prefix: str, exc: Exception, schema: pa.Schema | None) -> FormatError:
    """pyarrow's error, naming the column it only numbers ("In CSV column #3: ...")."""
    match = _ARROW_COLUMN.search(str(exc))
    column = None
    if match is not None and schema is not None and int(match[1]) < len(schema):
        column = schema.names[int(match[1])]
    where = "" if column is None else f"column {column!r}: "
    return FormatError(f"{path.name}: {prefix}{where}{exc}", column=column)


def _schema_from_definition(
    path: Path, header: list[str], definition: TableDefinition
) -> pa.Schema:
    """The file's names with the definition's types; the two must name the same columns."""
    defined = {c.name.lower() for c in definition.columns}
    present = {name.lower() for name in header}
    if defined != present:
        missing = sorted(defined - present)
        extra = sorted(present - defined)
        raise FormatError(
            f"{path.name}: columns differ from table {definition.name!r}: "
            f"missing {missing}, not defined {extra}"
        )
    return pa.schema([(name, arrow_type(definition.column(name).datatype)) for name in header])
