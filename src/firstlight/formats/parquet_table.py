"""The Parquet reader.

Belongs here: ``ParquetTableReader`` (a Parquet file read batch by batch,
each column read as the arrow type of its ``DataType``) and the column
metadata (unit, UCD, description) taken from the Parquet schema's fields.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from firstlight.domain.manifest import Column
from firstlight.formats.arrow_chunks import (
    arrow_chunks,
    arrow_datatype,
    normal_arrow_type,
    rebatch,
)
from firstlight.formats.columns import Chunk, check_chunk_rows, describe_column, selected
from firstlight.formats.detect import FormatError


class ParquetTableReader:
    """A Parquet file read batch by batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with pq.ParquetFile(path) as pf:
                source = pf.schema_arrow
                self._rows = int(pf.metadata.num_rows)
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(f"{path.name}: unreadable Parquet: {exc}") from exc
        self._fields: list[Any] = list(source)
        self._schema = pa.schema(
            [(f.name, normal_arrow_type(path, f.name, f.type)) for f in self._fields]
        )

    def columns(self) -> list[Column]:
        return [
            describe_column(
                self.path,
                field.name,
                arrow_datatype(self.path, field.name, target),
                **_field_metadata(field),
            )
            for field, target in zip(self._fields, self._schema.types, strict=True)
        ]

    def num_rows(self) -> int:
        return self._rows

    def description(self) -> None:
        return None

    def iter_chunks(
        self, chunk_rows: int, columns: Collection[str] | None = None
    ) -> Iterator[Chunk]:
        check_chunk_rows(chunk_rows)
        try:
            with pq.ParquetFile(self.path) as pf:
                batches = pf.iter_batches(batch_size=chunk_rows)
                for chunk in arrow_chunks(self.path, rebatch(batches, chunk_rows), self._schema):
                    yield selected(chunk, columns)
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(f"{self.path.name}: {exc}") from exc


def _field_metadata(field: Any) -> dict[str, str | None]:
    meta = {k.decode("utf-8", "replace"): v for k, v in (field.metadata or {}).items()}
    return {
        key: meta[key].decode("utf-8", "replace") if key in meta else None
        for key in ("unit", "ucd", "description")
    }
