"""PostgreSQL's binary COPY format, built from numpy columns without a Python loop per row.

A binary COPY row is a field count, then per field a length (-1 for NULL)
and the value's big-endian bytes. Rows that share a pattern of NULLs share
one fixed layout, so each pattern becomes one numpy record array written
with a single ``tobytes``; rows may be sent in any order (the table is
clustered afterwards). Columns of text have no fixed width: tables with them
go through psycopg's own per-row binary writer instead.
"""

from __future__ import annotations

import numpy as np

from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.storage.catalogues import Chunk, null_mask

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

# numpy big-endian type of each fixed-width DataType (PostgreSQL's wire format).
WIRE_TYPES: dict[DataType, str] = {
    DataType.BOOLEAN: "u1",
    DataType.INT16: ">i2",
    DataType.INT32: ">i4",
    DataType.INT64: ">i8",
    DataType.FLOAT32: ">f4",
    DataType.FLOAT64: ">f8",
}


def fixed_width(definition: TableDefinition) -> bool:
    return all(col.datatype in WIRE_TYPES for col in definition.columns)


def encode_chunk(chunk: Chunk, definition: TableDefinition) -> bytes:
    """One chunk as binary COPY rows (no header or trailer)."""
    lookup = {name.lower(): values for name, values in chunk.items()}
    cols = [(col.datatype, lookup[col.name.lower()]) for col in definition.columns]
    if not cols:
        return b""
    masks = np.column_stack([null_mask(values, dt) for dt, values in cols])
    patterns, inverse = np.unique(masks, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    parts: list[bytes] = []
    for p, pattern in enumerate(patterns):
        rows = np.flatnonzero(inverse == p)
        parts.append(_encode_rows(cols, pattern, rows))
    return b"".join(parts)


def _encode_rows(
    cols: list[tuple[DataType, np.ndarray]], nulls: np.ndarray, rows: np.ndarray
) -> bytes:
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, (datatype, _) in enumerate(cols):
        fields.append((f"l{i}", ">i4"))
        if not nulls[i]:
            fields.append((f"v{i}", WIRE_TYPES[datatype]))
    out = np.empty(len(rows), dtype=np.dtype(fields))
    out["n"] = len(cols)
    for i, (datatype, values) in enumerate(cols):
        if nulls[i]:
            out[f"l{i}"] = -1
        else:
            out[f"l{i}"] = np.dtype(WIRE_TYPES[datatype]).itemsize
            out[f"v{i}"] = np.ma.getdata(values)[rows]
    return out.tobytes()
