"""What every table reader shares: the chunk, the column types, the values.

Belongs here: ``Chunk`` (a column name, spelled as in the file, to a numpy
array of the canonical dtype of the column's ``DataType``, strings as unicode
arrays, a ``numpy.ma.MaskedArray`` when the chunk holds nulls); the one mapping
of source types to ``DataType`` (``datatype_of``) and back (``numpy_dtype_of``);
and the helpers every reader builds chunks and columns with. Nothing here
knows a file format: the readers import this module, never the other way.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from firstlight.domain.manifest import Column, DataType
from firstlight.formats.detect import FormatError

Chunk = dict[str, NDArray[Any]]

_CANONICAL: dict[DataType, np.dtype[Any]] = {
    DataType.BOOLEAN: np.dtype(np.bool_),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.FLOAT32: np.dtype(np.float32),
    DataType.FLOAT64: np.dtype(np.float64),
    DataType.STRING: np.dtype(np.str_),
}
# Integer storage width -> the narrowest signed type that holds every value.
_SIGNED = {1: DataType.INT16, 2: DataType.INT16, 4: DataType.INT32, 8: DataType.INT64}
_UNSIGNED = {1: DataType.INT16, 2: DataType.INT32, 4: DataType.INT64, 8: DataType.INT64}
_INT64_MAX = np.iinfo(np.int64).max


def datatype_of(dtype: np.dtype[Any]) -> DataType:
    """The column type of a numpy dtype (object arrays hold strings)."""
    if dtype.shape or dtype.names:
        raise FormatError(f"array or structured type {dtype} is not a column type")
    if dtype.kind == "b":
        return DataType.BOOLEAN
    if dtype.kind == "i":
        return _SIGNED[dtype.itemsize]
    if dtype.kind == "u":
        return _UNSIGNED[dtype.itemsize]
    if dtype.kind == "f":
        return DataType.FLOAT32 if dtype.itemsize <= 4 else DataType.FLOAT64
    if dtype.kind in "USO":
        return DataType.STRING
    raise FormatError(f"type {dtype} has no column type")


def numpy_dtype_of(datatype: DataType) -> np.dtype[Any]:
    """The canonical numpy dtype of a column type (unicode of any width for strings)."""
    return _CANONICAL[datatype]


def canonical(values: NDArray[Any], datatype: DataType) -> NDArray[Any]:
    """A native-endian copy of ``values`` in the canonical dtype of ``datatype``."""
    if datatype is DataType.STRING:
        if values.dtype.kind == "S":
            return np.strings.decode(values, "ascii", errors="replace")
        if values.dtype.kind == "O":
            return np.array(["" if v is None else str(v) for v in values], dtype=np.str_)
        return np.asarray(values).astype(np.str_)
    if values.dtype.kind == "u" and values.size and int(values.max()) > _INT64_MAX:
        raise FormatError(f"unsigned value {int(values.max())} does not fit a signed int64")
    return np.asarray(values).astype(_CANONICAL[datatype], copy=True)


def selected(chunk: Chunk, columns: Collection[str] | None) -> Chunk:
    """Only the named columns of a chunk (all for None), for readers that parse whole rows."""
    if columns is None:
        return chunk
    return {name: values for name, values in chunk.items() if name in columns}


def masked(values: NDArray[Any], mask: NDArray[np.bool_] | None) -> NDArray[Any]:
    """``values`` as a masked array if ``mask`` masks any, else as they are."""
    if mask is None or not mask.any():
        return values
    return np.ma.MaskedArray(values, mask=mask)


def check_chunk_rows(chunk_rows: int) -> None:
    """Refuse a chunk size that is not positive."""
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, not {chunk_rows}")


def describe_column(path: Path, name: str, datatype: DataType, **meta: str | None) -> Column:
    """A manifest ``Column``; empty metadata is left out, invalid names the file."""
    try:
        return Column(name=name, datatype=datatype, **{k: v for k, v in meta.items() if v})
    except ValidationError as exc:
        raise FormatError(f"{path.name}: column {name!r} cannot be described: {exc}") from exc
