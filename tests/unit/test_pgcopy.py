"""Binary COPY rows from numpy columns: the bytes PostgreSQL expects, in order when asked."""

from __future__ import annotations

import struct

import numpy as np

from firstlight.domain.manifest import Column, DataType, TableDefinition
from firstlight.storage.backends.pgcopy import encode_chunk

DEFINITION = TableDefinition(
    name="t",
    columns=[
        Column(name="id", datatype=DataType.INT64),
        Column(name="flag", datatype=DataType.BOOLEAN),
        Column(name="small", datatype=DataType.INT16),
        Column(name="mag", datatype=DataType.FLOAT32),
        Column(name="ra", datatype=DataType.FLOAT64),
    ],
)
FORMATS = {"id": ">q", "flag": ">?", "small": ">h", "mag": ">f", "ra": ">d"}


def _reference(chunk: dict[str, np.ndarray]) -> bytes:
    """Row by row with struct, NULL for masked values and NaN."""
    out = bytearray()
    for i in range(len(chunk["id"])):
        out += struct.pack(">h", len(FORMATS))
        for name, fmt in FORMATS.items():
            values = chunk[name]
            value = np.ma.getdata(values)[i]
            null = bool(np.ma.getmaskarray(values)[i]) or (
                fmt in (">f", ">d") and not np.isfinite(value)
            )
            if null:
                out += struct.pack(">i", -1)
            else:
                packed = struct.pack(fmt, value.item())
                out += struct.pack(">i", len(packed)) + packed
    return bytes(out)


def _chunk(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    mag = rng.uniform(10, 20, rows).astype(np.float32)
    mag[rng.random(rows) < 0.3] = np.nan
    return {
        "id": np.arange(rows, dtype=np.int64) * 7,
        "flag": np.ma.MaskedArray(rng.random(rows) < 0.5, mask=rng.random(rows) < 0.2),
        "small": np.ma.MaskedArray(rng.integers(-99, 99, rows, dtype=np.int16), mask=False),
        "mag": mag,
        "ra": rng.uniform(0, 360, rows),
    }


def test_keep_order_gives_each_row_in_place() -> None:
    chunk = _chunk(500)

    assert bytes(encode_chunk(chunk, DEFINITION, keep_order=True)) == _reference(chunk)


def test_grouped_rows_are_the_same_rows() -> None:
    chunk = _chunk(500)
    expected = _reference(chunk)

    grouped = bytes(encode_chunk(chunk, DEFINITION))

    assert len(grouped) == len(expected) and grouped != expected  # same bytes, other order
    assert sorted(grouped) == sorted(expected)
