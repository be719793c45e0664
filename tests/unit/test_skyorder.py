"""The loader's sky order: every row comes back once, unchanged, in q3c pixel order."""

from __future__ import annotations

import numpy as np
import pytest

from firstlight.domain.manifest import Column, DataType, TableDefinition
from firstlight.storage.backends.skyorder import NO_POSITION, in_pixel_order, pixel_keys, q3c_ipix
from firstlight.storage.catalogues import Chunk

DEFINITION = TableDefinition(
    name="t",
    columns=[
        Column(name="id", datatype=DataType.INT64),
        Column(name="RA", datatype=DataType.FLOAT64),
        Column(name="dec", datatype=DataType.FLOAT64),
        Column(name="mag", datatype=DataType.FLOAT32),
        Column(name="name", datatype=DataType.STRING),
    ],
    primary_key="id",
    ra="RA",
    dec="dec",
)


def _chunks(rows: int, size: int, seed: int = 3) -> list[Chunk]:
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, rows, size):
        n = min(size, rows - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        ra = rng.uniform(0, 360, n)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        ra[rng.random(n) < 0.05] = np.nan  # no position: last
        mag = np.ma.MaskedArray(rng.uniform(10, 20, n).astype(np.float32), mask=rng.random(n) < 0.2)
        # Names of a width that grows from chunk to chunk: runs of different layouts.
        names = np.array([f"s{i}" + "x" * (start // size) for i in ids], dtype=np.str_)
        out.append({"id": ids, "RA": ra, "dec": dec, "mag": mag, "name": names})
    return out


def _rows(chunks: list[Chunk]) -> dict[int, tuple[object, ...]]:
    rows: dict[int, tuple[object, ...]] = {}
    for chunk in chunks:
        mag = np.ma.MaskedArray(chunk["mag"])
        for i, row_id in enumerate(np.asarray(chunk["id"]).tolist()):
            rows[row_id] = (
                float(chunk["RA"][i]),
                float(chunk["dec"][i]),
                None if mag.mask is not np.ma.nomask and mag.mask[i] else float(mag[i]),
                str(chunk["name"][i]),
            )
    return rows


@pytest.mark.parametrize(("run_rows", "chunk_rows"), [(10_000, 300), (700, 256), (1, 5000)])
def test_every_row_once_unchanged_in_pixel_order(run_rows: int, chunk_rows: int) -> None:
    source = _chunks(3_000, 400)

    out = list(in_pixel_order(source, DEFINITION, run_rows=run_rows, chunk_rows=chunk_rows))

    keys = np.concatenate([pixel_keys(chunk, DEFINITION) for chunk in out])
    assert np.all(np.diff(keys) >= 0)
    assert keys[-1] == NO_POSITION and np.count_nonzero(keys == NO_POSITION) > 0
    got = _rows(out)
    assert sum(len(chunk["id"]) for chunk in out) == len(got) == 3_000
    # NaN == NaN for the rows without a position: compare as strings.
    assert {k: repr(v) for k, v in got.items()} == {k: repr(v) for k, v in _rows(source).items()}


def test_no_rows_no_chunks() -> None:
    assert list(in_pixel_order(iter([]), DEFINITION, run_rows=10, chunk_rows=10)) == []


def test_pixels_follow_the_cube_faces() -> None:
    ra = np.array([0.0, 90.0, 180.0, 270.0, 10.0, 10.0, 359.0, np.nan])
    dec = np.array([0.0, 0.0, 0.0, 0.0, 89.0, -89.0, 0.5, 0.0])

    faces = q3c_ipix(ra, dec)[:-1] >> 60

    assert faces.tolist() == [1, 2, 3, 4, 0, 5, 1]
    assert q3c_ipix(ra, dec)[-1] == NO_POSITION
    # The centre of a face is the middle of its Morton square.
    assert int(q3c_ipix([0.0], [0.0])[0]) == (1 << 60) | (3 << 58)
