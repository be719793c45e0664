"""VOTable BINARY2 rows: values in their binary form, NULLs in each row's flags.

Pure: columns and rows in, base64 text out (VOTable 1.4 section 5.5). Each
row is a bit mask of its NULL cells (first column in the highest bit) and
then every cell big-endian: integers and floats in their declared width
(a float32 column's value is written as the float32 it was stored as, so a
client reads back the same bits), booleans as ``T``/``F``, text and
variable-length arrays after a 4-byte count. Text is ASCII in ``char``;
a text column holding anything else is declared ``unicodeChar`` (UTF-16)
for the response (``unicode_columns``), since clients decode ``char`` as
ASCII.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from firstlight.query.service.votable import timestamp

if TYPE_CHECKING:
    from firstlight.query.service.votable import ColumnLike

_CHUNK_ROWS = 4096  # rows encoded per base64 piece
_NUMBERS = {"short": "h", "int": "i", "long": "q", "float": "f", "double": "d"}
_LENGTH = struct.Struct(">I")

Encoder = Callable[[Any], bytes]


def unicode_columns(columns: Sequence[ColumnLike], rows: Sequence[Sequence[Any]]) -> set[int]:
    """Indexes of text columns with a non-ASCII value in ``rows``."""
    texts = [i for i, c in enumerate(columns) if c.datatype == "char"]
    return {i for i in texts if any(isinstance(r[i], str) and not r[i].isascii() for r in rows)}


def binary2_stream(columns: Sequence[ColumnLike], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The base64 text of a BINARY2 STREAM holding ``rows``."""
    encoders = [_encoder(c) for c in columns]
    width = (len(columns) + 7) // 8
    pending = b""
    batch: list[bytes] = []
    for row in rows:
        flags = 0
        cells: list[bytes] = []
        for value, encode in zip(row, encoders, strict=True):
            flags <<= 1
            if value is None:
                flags |= 1
            cells.append(encode(value))
        flags <<= width * 8 - len(encoders)
        batch.append(flags.to_bytes(width, "big") + b"".join(cells))
        if len(batch) == _CHUNK_ROWS:
            pending = yield from _encoded(pending + b"".join(batch))
            batch = []
    tail = pending + b"".join(batch)
    if tail:
        yield base64.encodebytes(tail).decode("ascii")


def _encoded(data: bytes) -> Generator[str, None, bytes]:
    """Yield the base64 of whole 57-byte lines of ``data``; return what is left."""
    whole = len(data) - len(data) % 57  # 57 bytes = one 76-character base64 line
    if whole:
        yield base64.encodebytes(data[:whole]).decode("ascii")
    return data[whole:]


def _fixed_size(arraysize: str | None) -> int | None:
    """The element count of a fixed arraysize ("2"), None for variable ("*", "10*")."""
    if arraysize is None or not arraysize.isdigit():
        return None
    return int(arraysize)


def _encoder(col: ColumnLike) -> Encoder:
    datatype, arraysize = col.datatype, col.arraysize
    if datatype == "boolean":
        return _boolean
    if datatype in ("char", "unicodeChar"):
        # No arraysize: the FIELD is written with arraysize="*" (field_element).
        return _text_encoder(_fixed_size(arraysize), datatype == "unicodeChar")
    code = _NUMBERS.get(datatype)
    if code is None:
        raise ValueError(f"no BINARY2 encoding for datatype {datatype!r}")
    if arraysize is None:
        return _scalar_encoder(code)
    return _array_encoder(code, _fixed_size(arraysize))


def _boolean(value: Any) -> bytes:
    if value is None:
        return b"?"
    return b"T" if value else b"F"


def _scalar_encoder(code: str) -> Encoder:
    packer = struct.Struct(">" + code).pack
    floating = code in "fd"
    null = packer(math.nan if floating else 0)

    def encode(value: Any) -> bytes:
        if value is None:
            return null
        return packer(float(value) if floating else int(value))

    return encode


def _array_encoder(code: str, size: int | None) -> Encoder:
    floating = code in "fd"
    filler = math.nan if floating else 0

    def encode(value: Any) -> bytes:
        items = [] if value is None else [filler if v is None else v for v in value]
        if size is not None:
            items = (items + [filler] * size)[:size]
            return struct.pack(f">{size}{code}", *items)
        return _LENGTH.pack(len(items)) + struct.pack(f">{len(items)}{code}", *items)

    return encode


def _text_encoder(size: int | None, unicode: bool) -> Encoder:
    codec, unit = ("utf-16-be", 2) if unicode else ("ascii", 1)

    def encode(value: Any) -> bytes:
        raw = b"" if value is None else _as_text(value).encode(codec, "replace")
        if size is None:
            return _LENGTH.pack(len(raw) // unit) + raw
        return raw[: size * unit].ljust(size * unit, b"\0")

    return encode


def _as_text(value: Any) -> str:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, float):
        return repr(value)
    return str(value)
