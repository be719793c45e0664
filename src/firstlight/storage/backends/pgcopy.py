"""PostgreSQL's binary COPY format, built from numpy columns without a Python loop per row.

A binary COPY row is a field count, then per field a length (-1 for NULL)
and the value's big-endian bytes. Rows that share a pattern of NULLs share
one fixed layout, so each pattern becomes one numpy record array. Grouped,
they may be sent pattern after pattern, all of them views into one buffer;
when the rows' order matters (``keep_order``: the loader sent them in sky
order) every row is filled in the layout without NULLs instead, and the
bytes of its NULL values are then cut out by one boolean selection. A row's
pattern is one integer built from the columns that have a NULL in the chunk
(sorting rows of booleans as records is slow); a chunk without NULLs is
encoded without gathering rows at all. Columns of
text have no fixed width: tables with them go through psycopg's own per-row
binary writer instead.

``encode_ahead`` reads and encodes the next chunk in a worker thread while
the caller sends the current one: on a few cores the client's numpy work and
the server's parsing then overlap instead of taking turns (about 1.3x the
rows/s on 2 cores), for the memory of one more chunk.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator

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


def encode_ahead(
    chunks: Iterable[Chunk],
    definition: TableDefinition,
    depth: int = 1,
    *,
    keep_order: bool = False,
) -> Iterator[tuple[int, memoryview]]:
    """(rows, COPY rows) of each chunk, read and encoded by a worker thread.

    At most ``depth`` chunks are read ahead of the one being sent, so memory
    stays bounded by the chunk size. The worker runs in a copy of the caller's
    context (callbacks inside ``chunks`` see its context variables); what it
    raises is raised here. Closing the iterator early stops the worker.
    """
    slots = threading.Semaphore(depth)
    ready: queue.SimpleQueue[tuple[int, memoryview] | BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()

    def produce() -> None:
        source = iter(chunks)
        try:
            while True:
                slots.acquire()
                chunk = None if stop.is_set() else next(source, None)
                if chunk is None:
                    break
                rows = len(next(iter(chunk.values()))) if chunk else 0
                data = encode_chunk(chunk, definition, keep_order=keep_order)
                del chunk  # the source arrays go before the next chunk is read
                ready.put((rows, data))
                del data
            ready.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(
        target=contextvars.copy_context().run, args=(produce,), name="copy-encode", daemon=True
    )
    worker.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            slots.release()  # the worker may read the next chunk while this one is sent
            yield item
            del item
    finally:
        stop.set()
        slots.release()
        worker.join()


def encode_chunk(
    chunk: Chunk, definition: TableDefinition, *, keep_order: bool = False
) -> memoryview:
    """One chunk as binary COPY rows (no header or trailer), in one buffer."""
    lookup = {name.lower(): values for name, values in chunk.items()}
    cols = [(col.datatype, lookup[col.name.lower()]) for col in definition.columns]
    if not cols:
        return memoryview(b"")
    masks = [null_mask(values, dt) for dt, values in cols]
    groups = [(_layout(cols, nulls), nulls, rows) for nulls, rows in _row_groups(masks)]
    total = len(masks[0])
    if keep_order and len(groups) > 1:
        return _in_order(cols, masks)
    sizes = [layout.itemsize * (total if rows is None else len(rows)) for layout, _, rows in groups]
    buffer = np.empty(sum(sizes), dtype=np.uint8)
    offset = 0
    for (layout, nulls, rows), size in zip(groups, sizes, strict=True):
        _fill(buffer[offset : offset + size].view(layout), cols, nulls, rows)
        offset += size
    return buffer.data


def _in_order(cols: list[tuple[DataType, np.ndarray]], masks: list[np.ndarray]) -> memoryview:
    """The rows in their own order: all filled in the full layout, then NULLs' bytes cut out.

    A NULL field keeps its length (-1) and loses its value's bytes; one boolean
    selection over the rows' bytes drops them all, row after row.
    """
    total = len(masks[0])
    layout = _layout(cols, np.zeros(len(cols), dtype=bool))
    records = np.empty(total, dtype=layout)
    _fill(records, cols, np.zeros(len(cols), dtype=bool), None)
    keep = np.ones((total, layout.itemsize), dtype=bool)
    for i, mask in enumerate(masks):
        if mask.any():
            records[f"l{i}"][mask] = -1
            value_type, offset = layout.fields[f"v{i}"][:2]  # type: ignore[index]
            keep[mask, offset : offset + value_type.itemsize] = False
    kept: np.ndarray = records.view(np.uint8).reshape(total, layout.itemsize)[keep]
    return kept.data


def _row_groups(masks: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Rows grouped by their pattern of NULLs: (NULL per column, the rows; None for all)."""
    nullable = [i for i, mask in enumerate(masks) if mask.any()]
    if not nullable:
        return [(np.zeros(len(masks), dtype=bool), None)]
    if len(nullable) < 63:
        codes = np.zeros(len(masks[0]), dtype=np.int64)
        for bit, i in enumerate(nullable):
            codes |= masks[i].astype(np.int64) << bit
    else:
        stacked = np.column_stack([masks[i] for i in nullable])
        codes = np.unique(stacked, axis=0, return_inverse=True)[1].reshape(-1)
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.diff(codes[order])) + 1
    if not starts.size:
        return [(np.array([mask[0] for mask in masks]), None)]
    return [(np.array([mask[rows[0]] for mask in masks]), rows) for rows in np.split(order, starts)]


def _layout(cols: list[tuple[DataType, np.ndarray]], nulls: np.ndarray) -> np.dtype[np.void]:
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, (datatype, _) in enumerate(cols):
        fields.append((f"l{i}", ">i4"))
        if not nulls[i]:
            fields.append((f"v{i}", WIRE_TYPES[datatype]))
    return np.dtype(fields)


def _fill(
    out: np.ndarray,
    cols: list[tuple[DataType, np.ndarray]],
    nulls: np.ndarray,
    rows: np.ndarray | None,
) -> None:
    # Field count and lengths are the same in every row: one record broadcast
    # fills them in a single pass (field by field they cost more than the values).
    template = np.zeros((), dtype=out.dtype)
    template["n"] = len(cols)
    for i, (datatype, _) in enumerate(cols):
        template[f"l{i}"] = -1 if nulls[i] else np.dtype(WIRE_TYPES[datatype]).itemsize
    out[...] = template
    for i, (_, values) in enumerate(cols):
        if not nulls[i]:
            data = np.ma.getdata(values)
            out[f"v{i}"] = data if rows is None else data[rows]
