"""The arithmetic of the FITS checksum convention (FITS standard, appendix J).

Belongs here: the 32-bit ones'-complement sum of big-endian words, computing
it incrementally (bytes fed in pieces of any size) or over a byte range of a
file, the CHECKSUM value that makes an HDU sum to negative zero, and its ASCII
encoding. Nothing else: which HDUs to check and what a wrong sum means live in
``checks.fits_checks``; writing FITS files lives in ``services.synth``.

Memory stays bounded: a file range is memory-mapped and summed a slice at a
time, and the accumulator keeps at most three carried-over bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

# All 32 bits set: ones' complement -0, what a whole HDU with a right CHECKSUM sums to.
NEGATIVE_ZERO = 0xFFFFFFFF
_SUM_WORDS = 1 << 20  # words per numpy sum: 2**20 * 2**32 cannot overflow uint64
# ASCII punctuation between the digits and the letters, kept out of encoded checksums.
_EXCLUDED = frozenset(b":;<=>?@[\\]^_`")


def fold(total: int) -> int:
    """End-around carry: fold the bits above 32 back in."""
    while total > NEGATIVE_ZERO:
        total = (total & NEGATIVE_ZERO) + (total >> 32)
    return total


def _sum_words(words: NDArray[Any]) -> int:
    """Ones'-complement sum of an array of 32-bit words, a bounded slice at a time."""
    total = 0
    for first in range(0, words.size, _SUM_WORDS):
        total += int(words[first : first + _SUM_WORDS].sum(dtype=np.uint64))
    return fold(total)


def _padded_word(tail: bytes) -> int:
    """A trailing partial word, zero-padded on the right as FITS pads data."""
    return int.from_bytes(tail.ljust(4, b"\0"), "big")


class OnesComplementSum:
    """The 32-bit ones'-complement sum of a byte stream, fed in pieces of any size."""

    def __init__(self) -> None:
        self._value = 0
        self._carry = b""

    def add(self, data: bytes) -> None:
        """Add the next bytes of the stream; a partial word waits for the next piece."""
        data = self._carry + data
        whole = len(data) - len(data) % 4
        self._carry = data[whole:]
        words = np.frombuffer(data, dtype=">u4", count=whole // 4)
        self._value = fold(self._value + _sum_words(words))

    def total(self) -> int:
        """The sum so far, with any trailing partial word zero-padded."""
        if not self._carry:
            return self._value
        return fold(self._value + _padded_word(self._carry))


_WINDOW_WORDS = 2**24  # 64 MiB


def sum_file_range(path: Path, start: int, length: int) -> int:
    """Ones'-complement sum of ``length`` bytes of ``path`` from ``start`` (memory-mapped).

    A trailing partial word is zero-padded, as ``OnesComplementSum.total`` does.
    """
    if length <= 0:
        return 0
    count, rest = divmod(length, 4)
    total = 0
    # A window at a time: the pages a mapping touched stay resident (and count in the
    # process's memory) until it is unmapped, so one mapping would grow with the file.
    for first in range(0, count, _WINDOW_WORDS):
        size = min(_WINDOW_WORDS, count - first)
        words = np.memmap(path, dtype=">u4", mode="r", offset=start + 4 * first, shape=(size,))
        try:
            total = fold(total + _sum_words(words))
        finally:
            del words  # unmap now, not at garbage collection
    if rest:
        with path.open("rb") as fh:
            fh.seek(start + 4 * count)
            total = fold(total + _padded_word(fh.read(rest)))
    return total


def header_checksum(header: fits.Header, datasum: int) -> str:
    """The CHECKSUM value making the HDU's ones'-complement sum -0 (all ones).

    ``datasum`` is the data's sum (the DATASUM value); the header is summed as
    astropy renders it, with CHECKSUM zeroed and every other card as given.
    """
    work = header.copy()
    work["CHECKSUM"] = "0" * 16
    summed = OnesComplementSum()
    summed.add(work.tostring().encode("ascii"))
    return encode_checksum(~fold(summed.total() + datasum) & NEGATIVE_ZERO)


def encode_checksum(value: int) -> str:
    """ASCII-encode a 32-bit checksum (FITS checksum convention, section A.7.2)."""
    chars = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient, remainder = byte // 4 + ord("0"), byte % 4
        quad = [quotient + remainder, quotient, quotient, quotient]
        # Keep to alphanumerics: shift pairs off punctuation, preserving their sum.
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if quad[j] in _EXCLUDED or quad[j + 1] in _EXCLUDED:
                    quad[j] += 1
                    quad[j + 1] -= 1
                    changed = True
        for j in range(4):
            chars[4 * j + i] = quad[j]
    # The encoded string is rotated one place right.
    return bytes(chars[-1:] + chars[:-1]).decode("ascii")
