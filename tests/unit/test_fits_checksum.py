"""FITS checksum arithmetic, against astropy's own CHECKSUM and DATASUM values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from firstlight.formats.fits_checksum import (
    NEGATIVE_ZERO,
    OnesComplementSum,
    encode_checksum,
    fold,
    header_checksum,
    sum_file_range,
)

WHEN = "fixed comment, no wall clock"


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    """An image and a binary table, CHECKSUM and DATASUM computed by astropy."""
    rng = np.random.default_rng(7)
    image = fits.PrimaryHDU(rng.normal(size=(37, 53)).astype(np.float32))
    image.header["OBJECT"] = "M 31"
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="id", format="K", array=np.arange(101, dtype=np.int64)),
            fits.Column(name="flux", format="D", array=rng.normal(size=101)),
            fits.Column(name="band", format="3A", array=np.array(["g", "r", "i"] * 33 + ["z"] * 2)),
        ],
        name="SOURCES",
    )
    hdul = fits.HDUList([image, table])
    hdul.update_extend()
    for hdu in hdul:
        hdu.add_checksum(when=WHEN)
    path = tmp_path / "sealed.fits"
    hdul.writeto(path, checksum=False)
    return path


def spans(path: Path) -> list[tuple[fits.Header, int, int, int]]:
    """(header, header start, data start, data length) of each HDU of ``path``."""
    with fits.open(path) as hdul:
        return [
            (
                hdu.header.copy(),
                hdu.fileinfo()["hdrLoc"],
                hdu.fileinfo()["datLoc"],
                hdu.fileinfo()["datSpan"],
            )
            for hdu in hdul
        ]


@pytest.mark.parametrize("index", [0, 1], ids=["image", "bintable"])
def test_datasum_and_checksum_match_astropy(sealed: Path, index: int) -> None:
    header, header_start, data_start, data_length = spans(sealed)[index]
    datasum = sum_file_range(sealed, data_start, data_length)
    assert datasum == int(header["DATASUM"])
    assert header_checksum(header, datasum) == header["CHECKSUM"]
    whole = sum_file_range(sealed, header_start, data_start + data_length - header_start)
    assert whole == NEGATIVE_ZERO


@pytest.mark.parametrize("index", [0, 1], ids=["image", "bintable"])
def test_file_range_summed_window_by_window_is_the_same(
    sealed: Path, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large files are mapped a window at a time (flat memory): windows of 7 words here."""
    import firstlight.formats.fits_checksum as checksum

    header, _, data_start, data_length = spans(sealed)[index]
    monkeypatch.setattr(checksum, "_WINDOW_WORDS", 7)
    assert sum_file_range(sealed, data_start, data_length) == int(header["DATASUM"])


def test_incremental_sum_in_odd_pieces_matches_the_file_range(sealed: Path) -> None:
    data = sealed.read_bytes()
    summed = OnesComplementSum()
    position, size = 0, 1
    while position < len(data):
        summed.add(data[position : position + size])
        position += size
        size = (size + 2) % 1000  # 1, 3, 5, ..., 999, 1, ...: every piece odd-sized
    assert summed.total() == sum_file_range(sealed, 0, len(data))


@pytest.mark.parametrize(("start", "length"), [(0, 1), (3, 6), (7, 1001), (2881, 4321)])
def test_a_ragged_range_is_zero_padded_like_the_incremental_sum(
    sealed: Path, start: int, length: int
) -> None:
    summed = OnesComplementSum()
    summed.add(sealed.read_bytes()[start : start + length])
    assert sum_file_range(sealed, start, length) == summed.total()


def test_empty_input_sums_to_zero(sealed: Path) -> None:
    assert OnesComplementSum().total() == 0
    assert sum_file_range(sealed, 100, 0) == 0


def test_fold_carries_end_around() -> None:
    assert fold(0x1_0000_0000) == 1
    assert fold(NEGATIVE_ZERO + NEGATIVE_ZERO) == NEGATIVE_ZERO
    assert fold(NEGATIVE_ZERO) == NEGATIVE_ZERO


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "0000000000000000"),
        (1, "0000100000000000"),
        (0x80000000, "0P000P000P000P00"),
        (0x12345678, "N6AGN49EN4AEN49E"),
        (0xDEADBEEF, "kiafngVZkgadkgUZ"),
        (NEGATIVE_ZERO, "orrrrooooooooooo"),
    ],
)
def test_encode_known_values(value: int, encoded: str) -> None:
    assert encode_checksum(value) == encoded
    # astropy's encoder (private) is the reference ASCII encoding of the FITS standard.
    assert encode_checksum(value) == fits.PrimaryHDU()._char_encode(value)


def test_a_corrupted_byte_is_detected(sealed: Path) -> None:
    header, header_start, data_start, data_length = spans(sealed)[1]
    data = bytearray(sealed.read_bytes())
    data[data_start + 17] ^= 0x01
    sealed.write_bytes(bytes(data))
    datasum = sum_file_range(sealed, data_start, data_length)
    assert datasum != int(header["DATASUM"])
    header_sum = sum_file_range(sealed, header_start, data_start - header_start)
    assert fold(header_sum + datasum) != NEGATIVE_ZERO
