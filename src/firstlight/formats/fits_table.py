"""The FITS binary-table reader.

Belongs here: ``FitsTableReader`` (the first binary table of a FITS file,
read chunk by chunk through a memory map of its own) and what it needs from
the header: columns' types, units, UCDs and descriptions from TTYPE/TUNIT/
TUCD/TCOMM cards, nulls from NaN, TNULLn and undefined logicals, and the
refusal of array and variable-length columns.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from firstlight.domain.manifest import Column, DataType
from firstlight.formats.columns import (
    Chunk,
    canonical,
    check_chunk_rows,
    datatype_of,
    describe_column,
    masked,
)
from firstlight.formats.detect import FormatError

# Comments that astropy and cfitsio write on EXTNAME by themselves: no description.
_BOILERPLATE_COMMENTS = {"extension name", "name of this binary table extension"}


class FitsTableReader:
    """The first binary table of a FITS file, read through a memory map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index, self._header, self._types = _inspect_fits_table(path)
        self._plain = _plain_layout(path, self._index, self._header)

    def columns(self) -> list[Column]:
        head = self._header
        return [
            describe_column(
                self.path,
                name,
                datatype,
                unit=_card(head, f"TUNIT{i}"),
                ucd=_card(head, f"TUCD{i}"),
                description=_card(head, f"TCOMM{i}"),
            )
            for i, (name, datatype) in enumerate(self._types, start=1)
        ]

    def num_rows(self) -> int:
        return int(self._header.get("NAXIS2", 0))

    def description(self) -> str | None:
        """The EXTNAME card's comment, else the EXTNAME itself."""
        if "EXTNAME" not in self._header:
            return None
        comment = self._header.comments["EXTNAME"].strip()
        if comment.lower() in _BOILERPLATE_COMMENTS:
            comment = ""
        return comment or str(self._header["EXTNAME"]).strip() or None

    def iter_chunks(
        self, chunk_rows: int, columns: Collection[str] | None = None
    ) -> Iterator[Chunk]:
        check_chunk_rows(chunk_rows)
        total = self.num_rows()
        wanted = [
            (i, name, datatype)
            for i, (name, datatype) in enumerate(self._types)
            if columns is None or name in columns
        ]
        for start in range(0, total, chunk_rows):
            yield self._read(start, min(start + chunk_rows, total), wanted)

    def _read(self, start: int, stop: int, wanted: list[tuple[int, str, DataType]]) -> Chunk:
        if self._plain is not None:
            return self._read_plain(start, stop, self._plain, wanted)
        return self._read_astropy(start, stop, wanted)

    def _read_plain(
        self, start: int, stop: int, layout: _PlainLayout, wanted: list[tuple[int, str, DataType]]
    ) -> Chunk:
        """Rows ``start`` to ``stop`` of a table whose stored values are its values.

        A memory map of just these rows (unmapped when its copies are made): the
        same values and nulls as astropy gives, without building its column
        objects for every chunk, which took most of a chunk's time.
        """
        offset, record = layout
        rows = np.memmap(
            self.path, dtype=record, mode="r", offset=offset + start * record.itemsize,
            shape=(stop - start,),
        )  # fmt: skip
        try:
            chunk: Chunk = {}
            for i, name, datatype in wanted:
                stored = rows[(record.names or ())[i]]
                values = canonical(np.asarray(stored), datatype)
                chunk[name] = masked(values, self._null_mask(i + 1, datatype, values, stored))
            return chunk
        finally:
            del rows

    def _read_astropy(
        self, start: int, stop: int, wanted: list[tuple[int, str, DataType]]
    ) -> Chunk:
        """Rows ``start`` to ``stop`` through a memory map of their own.

        The pages a mapping has touched stay resident (and counted in the
        process's memory) as long as it lives, so one mapping for the whole
        read would grow with the file: each chunk maps the file anew and
        unmaps it before the chunk (copies, never views) is returned.
        """
        with _open_fits(self.path) as hdul:
            data = hdul[self._index].data
            # The raw records (big-endian, unscaled) hold what TNULLn and 'L' nulls mean.
            raw = data.view(np.ndarray)
            try:
                return self._chunk(data[start:stop], raw[start:stop], wanted)
            finally:
                # Drop the views so closing the file can unmap it.
                del data, raw

    def _chunk(
        self, records: Any, raw: NDArray[Any], wanted: list[tuple[int, str, DataType]]
    ) -> Chunk:
        chunk: Chunk = {}
        for i, name, datatype in wanted:
            try:
                values = canonical(np.asarray(records.field(i)), datatype)
            except (FormatError, UnicodeDecodeError) as exc:
                raise FormatError(f"{self.path.name}: column {name!r}: {exc}") from exc
            stored = raw[(raw.dtype.names or ())[i]]
            chunk[name] = masked(values, self._null_mask(i + 1, datatype, values, stored))
        return chunk

    def _null_mask(
        self, number: int, datatype: DataType, values: NDArray[Any], stored: NDArray[Any]
    ) -> NDArray[np.bool_] | None:
        """FITS nulls: NaN for floats, TNULLn for integers, a zero byte for logicals."""
        if datatype in {DataType.FLOAT32, DataType.FLOAT64}:
            return np.asarray(np.isnan(values), dtype=bool)
        if datatype is DataType.BOOLEAN:
            return np.asarray(stored == 0, dtype=bool)
        tnull = self._header.get(f"TNULL{number}")
        if tnull is not None and datatype is not DataType.STRING:
            return np.asarray(stored == int(tnull), dtype=bool)
        return None


# Where a table's rows start in the file, and one row's stored (big-endian) layout.
_PlainLayout = tuple[int, np.dtype[Any]]
_SCALAR_FORM = re.compile(r"^(\d*)([BIJKED])$")
_STORED = {"B": ">u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}


def _plain_layout(path: Path, index: int, header: fits.Header) -> _PlainLayout | None:
    """The layout of a table whose columns are plain numbers, else None (astropy reads it).

    Plain: every column one integer or float (TFORM B, I, J, K, E or D) without
    TSCALn/TZEROn (no scaling, no unsigned offset) or TDIMn, and the file long
    enough for every row (else astropy's own error is the finding).
    """
    fields = []
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        match = _SCALAR_FORM.match(str(header.get(f"TFORM{i}", "")).strip().upper())
        if match is None or match.group(1) not in ("", "1"):
            return None
        if any(f"{card}{i}" in header for card in ("TSCAL", "TZERO", "TDIM")):
            return None
        fields.append((f"c{i}", _STORED[match.group(2)]))
    record = np.dtype(fields)
    if not fields or record.itemsize != int(header.get("NAXIS1", -1)):
        return None
    with _open_fits(path) as hdul:
        offset = int(hdul[index].fileinfo()["datLoc"])
    if offset + record.itemsize * int(header.get("NAXIS2", 0)) > path.stat().st_size:
        return None
    return offset, record


def _open_fits(path: Path) -> fits.HDUList:
    try:
        return fits.open(path, memmap=True, mode="readonly")
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path.name}: unreadable FITS: {exc}") from exc


def _inspect_fits_table(path: Path) -> tuple[int, fits.Header, list[tuple[str, DataType]]]:
    """Index, header and (name, type) of each column of the first binary table."""
    with _open_fits(path) as hdul:
        index = next(
            (
                i
                for i, hdu in enumerate(hdul)
                if hdu.header.get("XTENSION") == "BINTABLE" and not hdu.header.get("ZIMAGE")
            ),
            None,
        )
        if index is None:
            raise FormatError(f"{path.name}: no binary table HDU")
        header = hdul[index].header.copy()
        _refuse_variable_arrays(path, header)
        data = hdul[index].data
        try:
            # A zero-row slice shows the converted dtypes (scaled, unsigned, logical).
            empty = data[:0]
            types = [
                (name, _fits_datatype(path, name, np.asarray(empty.field(i))))
                for i, name in enumerate(data.columns.names)
            ]
        finally:
            del data
    return index, header, types


def _refuse_variable_arrays(path: Path, header: fits.Header) -> None:
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        tform = str(header.get(f"TFORM{i}", "")).upper()
        if "P" in tform or "Q" in tform:
            name = header.get(f"TTYPE{i}", f"#{i}")
            raise FormatError(f"{path.name}: column {name!r} is a variable-length array")


def _fits_datatype(path: Path, name: str, empty: NDArray[Any]) -> DataType:
    if empty.ndim > 1:
        raise FormatError(f"{path.name}: column {name!r} is an array column, not a scalar")
    try:
        return datatype_of(empty.dtype)
    except FormatError as exc:
        raise FormatError(f"{path.name}: column {name!r}: {exc}") from exc


def _card(header: fits.Header, keyword: str) -> str | None:
    value = header.get(keyword)
    return None if value is None else str(value).strip() or None
