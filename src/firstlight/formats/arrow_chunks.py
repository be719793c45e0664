"""Arrow data as chunks, shared by the CSV and Parquet readers.

Belongs here: the arrow type each column is read as (one per ``DataType``),
the ``DataType`` of an arrow type, regrouping record batches into tables of
exactly the chunk size, and arrow tables turned into chunks with nulls
masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from firstlight.domain.manifest import DataType
from firstlight.formats.columns import Chunk, canonical, datatype_of, masked, numpy_dtype_of
from firstlight.formats.detect import FormatError


def normal_arrow_type(path: Path, name: str, source: Any) -> Any:
    """The arrow type a column is read as: one per ``DataType``.

    Dictionaries read as their values, temporal values as ISO strings and
    decimals as float64; nested types have no column type.
    """
    kind = source.value_type if pa.types.is_dictionary(source) else source
    if pa.types.is_boolean(kind):
        return pa.bool_()
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        datatype = datatype_of(np.dtype(kind.to_pandas_dtype()))
        return arrow_type(datatype)
    if pa.types.is_decimal(kind):
        return pa.float64()
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_null(kind)
    ):
        return pa.string()
    raise FormatError(f"{path.name}: column {name!r}: type {source} has no column type")


def arrow_type(datatype: DataType) -> Any:
    """The arrow type of a column type."""
    if datatype is DataType.STRING:
        return pa.string()
    return pa.from_numpy_dtype(numpy_dtype_of(datatype))


def arrow_datatype(path: Path, name: str, source: Any) -> DataType:
    """The column type of an arrow type; an unmapped one names the file and column."""
    try:
        return datatype_of(np.dtype(source.to_pandas_dtype()))
    except (FormatError, NotImplementedError, TypeError) as exc:
        raise FormatError(f"{path.name}: column {name!r}: {exc}") from exc


def rebatch(batches: Any, rows: int) -> Iterator[pa.Table]:
    """Regroup record batches of any size into tables of exactly ``rows`` (the last fewer)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def arrow_chunks(path: Path, tables: Iterator[pa.Table], schema: pa.Schema) -> Iterator[Chunk]:
    """Chunks of arrow tables, each column cast to its type in ``schema``."""
    datatypes = [arrow_datatype(path, f.name, f.type) for f in schema]
    for table in tables:
        chunk: Chunk = {}
        for field, datatype, column in zip(schema, datatypes, table.columns, strict=True):
            chunk[field.name] = _arrow_values(column.cast(field.type), datatype)
        yield chunk


def _arrow_values(column: Any, datatype: DataType) -> NDArray[Any]:
    mask = None
    if column.null_count:
        mask = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        column = column.fill_null(_FILL[datatype])
    values = canonical(np.asarray(column.to_numpy(zero_copy_only=False)), datatype)
    return masked(values, mask)


# What sits under the mask of a null: NaN keeps floats honest if the mask is lost.
_FILL: dict[DataType, Any] = {
    DataType.BOOLEAN: False,
    DataType.INT16: 0,
    DataType.INT32: 0,
    DataType.INT64: 0,
    DataType.FLOAT32: float("nan"),
    DataType.FLOAT64: float("nan"),
    DataType.STRING: "",
}
