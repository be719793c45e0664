"""Exact duplicate-key detection over a streamed table, in memory that does not grow with it.

Belongs here: ``DuplicateKeys``, which takes a table's non-null keys chunk by
chunk (with their row numbers) and answers which rows share a key with
another row, exactly, holding at most about ``partition_rows`` keys at once:

- keys and rows stay in memory up to ``partition_rows``; beyond
  that they are spilled to disk, split by a hash of the key into enough
  partitions that each holds about ``partition_rows`` (from the table's row
  count when the format knows it, else ``UNKNOWN_PARTITIONS``; at most
  ``MAX_PARTITIONS``, two open files each), so equal keys
  always meet in one partition, which is then sorted on its own. Rows are
  read back only for a partition that has a duplicate;
- keys that arrived in strictly increasing order (a catalogue sorted by its
  key, as many are) are unique by that alone: nothing is sorted or read back.

The spill is ``16`` bytes a row in a temporary folder, removed by ``close``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

import numpy as np
from numpy.typing import NDArray

PARTITION_ROWS = 1_000_000  # about 40 MB of keys, rows and sort order at once
UNKNOWN_PARTITIONS = 64  # when the format does not say how many rows it holds
MAX_PARTITIONS = 256  # two open files each, numbers fit a uint16; beyond, partitions grow
SAMPLE = 10
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads nearby keys


@dataclass(frozen=True)
class Duplicates:
    """Rows whose key another row also has, and the keys repeated."""

    rows: int  # how many rows
    keys: int  # how many distinct key values repeat
    sample_rows: tuple[int, ...]  # the first SAMPLE rows, ascending
    sample_keys: tuple[Any, ...]  # the SAMPLE smallest repeated keys, ascending


@dataclass
class _Found:
    rows: int = 0
    keys: int = 0
    sample_rows: list[NDArray[np.int64]] = field(default_factory=list)
    sample_keys: list[NDArray[Any]] = field(default_factory=list)

    def add(self, keys: NDArray[Any], rows: NDArray[np.int64]) -> None:
        """One partition's keys and rows (every row of each of its key values)."""
        if not _repeats(keys):
            return
        order = np.argsort(keys)  # the rows found are sorted afterwards: no need for stable
        ordered = keys[order]
        same = ordered[1:] == ordered[:-1]
        involved = np.zeros(ordered.size, dtype=bool)
        involved[1:] |= same
        involved[:-1] |= same
        repeated = np.unique(ordered[1:][same])
        self.rows += int(np.count_nonzero(involved))
        self.keys += int(repeated.size)
        self.sample_rows.append(np.sort(rows[order[involved]])[:SAMPLE])
        self.sample_keys.append(repeated[:SAMPLE])

    def result(self) -> Duplicates:
        if not self.rows:
            return Duplicates(0, 0, (), ())
        rows = np.sort(np.concatenate(self.sample_rows))[:SAMPLE]
        keys = np.sort(np.concatenate(self.sample_keys))[:SAMPLE]
        return Duplicates(
            self.rows, self.keys, tuple(int(r) for r in rows), tuple(k.item() for k in keys)
        )


class DuplicateKeys:
    """Keys streamed in chunk by chunk; ``duplicates()`` at the end."""

    def __init__(self, expected_rows: int | None, partition_rows: int = PARTITION_ROWS) -> None:
        self.expected_rows = expected_rows
        self.partition_rows = partition_rows
        self._increasing = True
        self._last: Any = None
        self._keys: list[NDArray[Any]] = []
        self._rows: list[NDArray[np.int64]] = []
        self._held = 0
        self._spill: _Spill | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def add(self, keys: NDArray[Any], rows: NDArray[np.int64]) -> None:
        """Non-null keys and their row numbers (rows ascending across calls)."""
        if not keys.size:
            return
        if self._increasing:
            rising = bool(np.all(keys[1:] > keys[:-1]))
            self._increasing = rising and (self._last is None or bool(keys[0] > self._last))
            self._last = keys[-1]
        if self._spill is not None:
            self._spill.write(keys, rows)
            return
        self._keys.append(keys)
        self._rows.append(rows)
        self._held += keys.size
        if self._held > self.partition_rows:
            # Spilled even while sorted: a later key out of order may repeat any of these.
            self._spill = _Spill(self._partitions())
            for held_keys, held_rows in zip(self._keys, self._rows, strict=True):
                self._spill.write(held_keys, held_rows)
            self._keys, self._rows, self._held = [], [], 0

    def duplicates(self) -> Duplicates:
        found = _Found()
        if self._increasing:
            return found.result()
        if self._spill is None:
            if self._keys:
                found.add(np.concatenate(self._keys), np.concatenate(self._rows))
            return found.result()
        self._spill.finish()
        for partition in range(self._spill.count):
            keys = self._spill.keys(partition)
            if _repeats(keys):  # most often not: then its rows are never read back
                found.add(keys, self._spill.rows(partition))
        return found.result()

    def _partitions(self) -> int:
        if self.expected_rows is None:
            return UNKNOWN_PARTITIONS
        return min(MAX_PARTITIONS, max(2, math.ceil(self.expected_rows / self.partition_rows)))


class _Spill:
    """Keys and rows on disk, split by a hash of the key into ``count`` partitions."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.folder = Path(tempfile.mkdtemp(prefix="firstlight-keys-"))
        self._dtype: np.dtype[Any] | None = None  # numeric keys: raw, in the first chunk's type
        self._keys: list[IO[bytes]] = []
        self._rows: list[IO[bytes]] = []
        for i in range(count):
            self._keys.append((self.folder / f"{i}.keys").open("wb"))
            self._rows.append((self.folder / f"{i}.rows").open("wb"))

    def write(self, keys: NDArray[Any], rows: NDArray[np.int64]) -> None:
        if self._dtype is None:
            self._dtype = None if keys.dtype.kind == "U" else keys.dtype
        part = partition_of(keys, self.count)
        order = np.argsort(part, kind="stable")  # a radix sort: partitions are small integers
        bounds = np.searchsorted(part[order], np.arange(self.count + 1))
        keys, rows = keys[order], rows[order].astype(np.int64, copy=False)
        for i in range(self.count):
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo:
                if self._dtype is None:
                    # np.save blocks: string keys change width from chunk to chunk.
                    np.save(self._keys[i], keys[lo:hi], allow_pickle=False)
                else:
                    keys[lo:hi].astype(self._dtype, copy=False).tofile(self._keys[i])
                rows[lo:hi].tofile(self._rows[i])

    def finish(self) -> None:
        for handle in (*self._keys, *self._rows):
            handle.close()

    def keys(self, partition: int) -> NDArray[Any]:
        path = self.folder / f"{partition}.keys"
        if self._dtype is not None:
            return np.fromfile(path, dtype=self._dtype)
        blocks = []
        size = path.stat().st_size
        with path.open("rb") as handle:
            while handle.tell() < size:
                blocks.append(np.load(handle, allow_pickle=False))
        return np.concatenate(blocks) if blocks else np.empty(0, dtype=np.int64)

    def rows(self, partition: int) -> NDArray[np.int64]:
        return np.fromfile(self.folder / f"{partition}.rows", dtype=np.int64)

    def close(self) -> None:
        for handle in (*self._keys, *self._rows):
            handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _repeats(keys: NDArray[Any]) -> bool:
    """Whether any key occurs twice (a sort of the keys alone: cheaper than their order)."""
    ordered = np.sort(keys)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def partition_of(keys: NDArray[Any], count: int) -> NDArray[np.uint16]:
    """Which of ``count`` partitions each key goes to: equal keys, equal partition."""
    if keys.dtype.kind == "U":
        codes = np.ascontiguousarray(keys).view(np.uint32).reshape(keys.size, -1)
        weights = np.arange(1, codes.shape[1] + 1, dtype=np.uint64) * _MULTIPLIER
        # Padding is zeros, so a key hashes alike whatever width its chunk has.
        hashed = (codes.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    elif keys.dtype.kind == "f":
        hashed = (keys.astype(np.float64) + 0.0).view(np.uint64)  # -0.0 equals 0.0
    else:
        hashed = keys.astype(np.int64).view(np.uint64)
    mixed = (hashed * _MULTIPLIER) >> np.uint64(32)
    part: NDArray[np.uint16] = (mixed % np.uint64(count)).astype(np.uint16)
    return part
