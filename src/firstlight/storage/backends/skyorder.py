"""Catalogue rows in q3c pixel order on their way into PostgreSQL, in bounded memory.

A cone search reads few pages when rows sharing a patch of sky share pages.
PostgreSQL's ``CLUSTER`` gets that order after the load by sorting and
rewriting the whole table and then rebuilding every index on it (most of the
index step). Here the loader sends the rows already in that order instead:

- ``q3c_ipix`` is q3c's ``q3c_ang2ipix`` in numpy: the cube face the
  position falls on, its gnomonic projection onto that face, the two
  coordinates quantised to 2**30 steps and bit-interleaved (Morton order).
  Tests compare it with the server's own function.
- ``in_pixel_order`` is an external merge sort of the chunks: runs of up to
  ``run_rows`` rows are sorted by pixel and spilled, a record per row, to
  anonymous temporary files (unlinked from the start: a killed process
  leaves nothing behind); the runs are then merged block by block with
  numpy, never row by row in Python, reading the files with ``pread`` (not
  mapped: the process's resident size stays that of the blocks). Memory
  holds one run while sorting and about one output chunk while merging.

Rows without a position (NULL or NaN ra/dec) sort last, as NULL keys do in
a B-tree. The order is only a storage order: nothing relies on it for
correctness, so an input outside the usual ranges just lands somewhere.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.storage.catalogues import Chunk, null_mask

NSIDE = 2**30  # q3c's pixels per face side: face * NSIDE**2 + Morton(x, y)
NO_POSITION = np.iinfo(np.int64).max
# Morton spreading of 10 bits at a time: bit b of the index to bit 2b.
_SPREAD = np.array(
    [sum(((i >> b) & 1) << (2 * b) for b in range(10)) for i in range(1024)], dtype=np.int64
)
# cos and sin of a quarter turn times 0..3.
_COS_TURN = np.array([1.0, 0.0, -1.0, 0.0])
_SIN_TURN = np.array([0.0, 1.0, 0.0, -1.0])


def q3c_ipix(ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """q3c's pixel of each position (degrees); ``NO_POSITION`` where either is not finite.

    Only ``tan`` is called (numpy's ``sin``/``cos`` are several times slower
    here); the results can differ from q3c's in the last quantisation step
    for a rare position, which moves it by one pixel in the storage order.
    """
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    ok = np.isfinite(ra) & np.isfinite(dec)
    if not ok.all():
        ra, dec = np.where(ok, ra, 0.0), np.where(ok, dec, 0.0)
    outside = (ra < 0.0) | (ra > 360.0)
    if outside.any():
        ra = np.where(outside, np.mod(ra, 360.0), ra)
    # Equatorial faces 1-4 are centred on ra 0, 90, 180, 270.
    turns = np.floor((ra + 45.0) / 90.0)
    turns[turns >= 4.0] = 0.0
    x = np.tan(np.radians(ra - turns * 90.0))
    quadrant = turns.astype(np.intp)
    tan_d = np.tan(np.radians(dec))
    secant = np.sqrt(1.0 + x * x)  # 1 / cos(offset from the face's centre)
    y = tan_d * secant
    face = quadrant + 1
    # Beyond an equatorial face's edge: the polar faces (0 north, 5 south),
    # projected from the pole along z. Few rows: computed for them alone.
    polar = np.flatnonzero(np.abs(y) > 1.0)
    if polar.size:
        q, t = quadrant[polar], tan_d[polar]
        cos_o = 1.0 / secant[polar]
        sin_o = x[polar] * cos_o
        # (cos, sin) of ra: the offset's, turned by the quadrant.
        cos_r = _COS_TURN[q] * cos_o - _SIN_TURN[q] * sin_o
        sin_r = _SIN_TURN[q] * cos_o + _COS_TURN[q] * sin_o
        north = t > 0
        x[polar] = np.where(north, sin_r, -sin_r) / t
        y[polar] = -cos_r / t
        face[polar] = np.where(north, 0, 5)
    half = NSIDE / 2
    x += 1.0
    x *= half
    y += 1.0
    y *= half
    xi = np.clip(np.floor(x), 0, NSIDE - 1).astype(np.int64)
    yi = np.clip(np.floor(y), 0, NSIDE - 1).astype(np.int64)
    pixel = (face.astype(np.int64) << 60) | _spread(xi) | (_spread(yi) << 1)
    return np.where(ok, pixel, NO_POSITION)


def _spread(v: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The 30 low bits of each value moved to the even bit positions (by 10-bit table)."""
    spread: npt.NDArray[np.int64] = (
        _SPREAD[v & 1023] | (_SPREAD[(v >> 10) & 1023] << 20) | (_SPREAD[v >> 20] << 40)
    )
    return spread


def pixel_keys(chunk: Chunk, definition: TableDefinition) -> npt.NDArray[np.int64]:
    """The sort key of each row of a chunk: its q3c pixel."""
    assert definition.ra is not None and definition.dec is not None
    lookup = {name.lower(): values for name, values in chunk.items()}
    coords = []
    for name in (definition.ra, definition.dec):
        values = lookup[name.lower()]
        data = np.asarray(np.ma.getdata(values), dtype=np.float64)
        coords.append(np.where(null_mask(values, DataType.FLOAT64), np.nan, data))
    return q3c_ipix(coords[0], coords[1])


def in_pixel_order(
    chunks: Iterable[Chunk],
    definition: TableDefinition,
    *,
    run_rows: int,
    chunk_rows: int,
    spill_dir: Path | None = None,
) -> Iterator[Chunk]:
    """The rows of ``chunks`` in q3c pixel order, in chunks of about ``chunk_rows`` rows.

    Columns come back as views into records (masked where a chunk has NULLs).
    """
    runs: list[_Run] = []
    pending: list[Chunk] = []
    names: list[str] = []
    held = 0
    try:
        for chunk in chunks:
            rows = _rows(chunk)
            if not rows:
                continue
            names = names or list(chunk)
            pending.append(chunk)
            held += rows
            if held >= run_rows:
                runs.append(_Run.spill(_sorted_records(pending, names, definition), spill_dir))
                pending, held = [], 0
        if not runs:  # everything fitted in one run: no file at all
            if pending:
                records = _sorted_records(pending, names, definition)
                pending = []
                for start in range(0, len(records), chunk_rows):
                    yield _columns(records[start : start + chunk_rows], names)
            return
        if pending:
            runs.append(_Run.spill(_sorted_records(pending, names, definition), spill_dir))
        pending = []
    except BaseException:
        for run in runs:
            run.close()
        raise
    yield from _merge(runs, names, chunk_rows)


def _rows(chunk: Chunk) -> int:
    return len(next(iter(chunk.values()))) if chunk else 0


def _sorted_records(
    chunks: list[Chunk], names: list[str], definition: TableDefinition
) -> np.ndarray:
    """The rows of ``chunks`` as records (key, then value and NULL flag per column), by key."""
    fields: list[tuple[str, np.dtype[Any]]] = [("_key", np.dtype(np.int64))]
    for i, name in enumerate(names):
        dtypes = [_plain(np.ma.getdata(c[name])).dtype for c in chunks]
        fields += [(f"v{i}", np.result_type(*dtypes)), (f"m{i}", np.dtype(np.bool_))]
    records = np.empty(sum(_rows(c) for c in chunks), dtype=fields)
    start = 0
    for chunk in chunks:
        part = records[start : start + _rows(chunk)]
        part["_key"] = pixel_keys(chunk, definition)
        for i, name in enumerate(names):
            part[f"v{i}"] = _plain(np.ma.getdata(chunk[name]))
            part[f"m{i}"] = np.ma.getmaskarray(chunk[name])
        start += len(part)
    return _gather(records, np.argsort(records["_key"], kind="stable"))


def _gather(records: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``records[order]``, copied as opaque bytes (a structured copy goes field by field)."""
    opaque = np.dtype((np.void, records.dtype.itemsize))
    gathered: np.ndarray = records.view(opaque)[order].view(records.dtype)
    return gathered


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """Records of one layout end to end, copied as opaque bytes."""
    layout = parts[0].dtype
    if any(p.dtype != layout for p in parts):
        return np.concatenate(parts)  # string widths differ: numpy promotes field by field
    opaque = np.dtype((np.void, layout.itemsize))
    joined: np.ndarray = np.concatenate([p.view(opaque) for p in parts]).view(layout)
    return joined


def _columns(records: np.ndarray, names: list[str]) -> Chunk:
    """A chunk of views into ``records``: masked arrays where some value is NULL."""
    columns: Chunk = {}
    for i, name in enumerate(names):
        values, mask = records[f"v{i}"], records[f"m{i}"]
        columns[name] = np.ma.MaskedArray(values, mask=mask) if mask.any() else values
    return columns


def _plain(values: np.ndarray) -> np.ndarray:
    """A column a record can hold (object columns of text become unicode)."""
    if values.dtype.kind == "O":
        return np.array(["" if v is None else str(v) for v in values], dtype=np.str_)
    return values


class _Run:
    """One sorted run of records in an anonymous temporary file, read back a block at a time.

    ``buffer`` holds the rows read (``pread``, not mapped: the resident size
    stays that of the blocks) but not yet merged.
    """

    def __init__(self, file: IO[bytes], layout: np.dtype[np.void], rows: int) -> None:
        self.file, self.layout, self.rows = file, layout, rows
        self.read = 0
        self.buffer = np.empty(0, dtype=layout)

    @classmethod
    def spill(cls, records: np.ndarray, folder: Path | None) -> _Run:
        # Unlinked from the start (TemporaryFile): a killed process leaves nothing.
        # The run owns the file until its close(), after the merge.
        file = tempfile.TemporaryFile(prefix="firstlight-sort-", dir=folder)  # noqa: SIM115
        try:
            records.tofile(file)
            file.flush()
        except BaseException:
            file.close()
            raise
        return cls(file, records.dtype, len(records))

    @property
    def done(self) -> bool:
        return self.read >= self.rows and not len(self.buffer)

    def top_up(self, block: int) -> None:
        """Read rows until ``block`` are buffered (or the run is exhausted)."""
        want = min(block - len(self.buffer), self.rows - self.read)
        if want <= 0:
            return
        size = self.layout.itemsize
        raw = os.pread(self.file.fileno(), want * size, self.read * size)
        fresh = np.frombuffer(raw, dtype=self.layout)
        self.read += want
        self.buffer = _concatenate([self.buffer, fresh]) if len(self.buffer) else fresh

    def take(self, bound: int) -> np.ndarray:
        """The buffered records with a key up to ``bound``, removed from the buffer."""
        stop = int(np.searchsorted(self.buffer["_key"], bound, "right"))
        taken, self.buffer = self.buffer[:stop], self.buffer[stop:]
        return taken

    def close(self) -> None:
        self.file.close()


def _merge(runs: list[_Run], names: list[str], chunk_rows: int) -> Iterator[Chunk]:
    """The runs merged by key, a block of every live run at a time.

    Each round takes, from every run, its buffered rows up to the smallest last
    buffered key of all runs: no row still on disk can have a smaller key, and
    the run that set the bound gives its whole buffer, so every round progresses.
    """
    block = max(1024, chunk_rows // len(runs))
    live = list(runs)
    try:
        while live:
            for run in live:
                run.top_up(block)
            bound = min(int(run.buffer["_key"][-1]) for run in live)
            merged = _concatenate([run.take(bound) for run in live])
            live = [run for run in live if not run.done]
            yield _columns(_gather(merged, np.argsort(merged["_key"], kind="stable")), names)
    finally:
        for run in runs:
            run.close()
