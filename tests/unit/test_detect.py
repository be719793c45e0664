"""Format and product-type detection from content, the extension only breaking ties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from firstlight.domain.manifest import FileFormat, ProductType
from firstlight.formats.detect import (
    FormatError,
    detect_format,
    detect_product_type,
    scan_xml_prolog,
    sniff_csv_delimiter,
)

VOTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- produced by hand -->
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE><TABLE><FIELD name="a" datatype="int"/>
<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def write_image(path: Path, *, wcs: bool = True, in_extension: bool = False) -> Path:
    header = fits.Header()
    if wcs:
        for key, value in {
            "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.0, "CRVAL2": -5.0,
            "CRPIX1": 8.0, "CRPIX2": 8.0, "CDELT1": -1e-4, "CDELT2": 1e-4,
        }.items():  # fmt: skip
            header[key] = value
    data = np.zeros((16, 16), dtype=np.float32)
    if in_extension:
        hdus = [fits.PrimaryHDU(), fits.ImageHDU(data=data, header=header)]
    else:
        hdus = [fits.PrimaryHDU(data=data, header=header)]
    fits.HDUList(hdus).writeto(path)
    return path


def write_table(
    path: Path, columns: dict[str, tuple[np.ndarray, str | None]], extname: str
) -> Path:
    cols = [
        fits.Column(name=name, format="D" if values.dtype.kind == "f" else "K", unit=unit,
                    array=values)
        for name, (values, unit) in columns.items()
    ]  # fmt: skip
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


# --- formats --------------------------------------------------------------------------


def test_fits_is_detected_by_its_first_card(tmp_path: Path) -> None:
    assert detect_format(write_image(tmp_path / "image.dat")) is FileFormat.FITS


def test_parquet_needs_magic_at_both_ends(tmp_path: Path) -> None:
    good = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3]}), good)
    assert detect_format(good) is FileFormat.PARQUET
    truncated = write(tmp_path / "cut.parquet", good.read_bytes()[:-8])
    assert detect_format(truncated) is FileFormat.OTHER


@pytest.mark.parametrize(
    "text",
    [
        VOTABLE,
        VOTABLE.replace("<VOTABLE", "<vot:VOTABLE").replace("</VOTABLE", "</vot:VOTABLE"),
        '\ufeff<!DOCTYPE VOTABLE SYSTEM "http://example.invalid/votable.dtd">\n<VOTABLE/>',
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><VOTABLE>&a;</VOTABLE>',
    ],
)
def test_votable_is_detected_by_its_root_element(tmp_path: Path, text: str) -> None:
    assert detect_format(write(tmp_path / "t.xml", text)) is FileFormat.VOTABLE


def test_other_xml_is_not_a_votable(tmp_path: Path) -> None:
    path = write(tmp_path / "t.vot", '<?xml version="1.0"?>\n<html><body/></html>\n')
    assert detect_format(path) is FileFormat.OTHER


def test_entity_declarations_are_seen_but_not_expanded() -> None:
    laughs = '<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><VOTABLE>&b;</VOTABLE>'
    prolog = scan_xml_prolog(laughs)
    assert prolog.root == "VOTABLE"
    assert prolog.declares_entities


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("t.csv", "id,ra,dec\n1,10.5,-3.2\n2,11.0,-3.1\n"),
        ("t.tsv", "id\tname\n1\talpha\n2\tbeta, with comma\n"),
        ("no_extension", 'id;"label"\n1;"a;b"\n'),
        ("header_only.csv", "source_id,ra,dec\n"),
        ("one_column.csv", "source_id\n1\n2\n"),
    ],
)
def test_csv_is_delimited_text_with_a_header(tmp_path: Path, name: str, text: str) -> None:
    assert detect_format(write(tmp_path / name, text)) is FileFormat.CSV


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("README.txt", "Hello, world\nGoodbye, moon\n"),
        ("notes.md", "a,b\n1,2\n"),
        ("one_column.dat.gz", "source_id\n1\n2\n"),
        ("ragged.csv", "a,b,c\n1,2\n3\n"),
        ("numbers.csv", "1,2\n3,4\n"),
        ("binary.csv", bytes(range(256)) * 4),
        ("latin1.csv", "name,city\nJos\xe9,S\xe3o Paulo\n".encode("latin-1")),
        ("empty.csv", b""),
    ],
)
def test_other_text_and_binary_is_other(tmp_path: Path, name: str, data: str | bytes) -> None:
    assert detect_format(write(tmp_path / name, data)) is FileFormat.OTHER


def test_only_the_first_kilobytes_are_read(tmp_path: Path) -> None:
    # A header line longer than the sniffed head cannot be judged: not a table.
    wide = ",".join(f"c{i}" for i in range(10_000)) + "\n"
    assert detect_format(write(tmp_path / "wide.csv", wide)) is FileFormat.OTHER
    long_rows = "a,b\n" + "1,2\n" * 100_000
    assert detect_format(write(tmp_path / "long.csv", long_rows)) is FileFormat.CSV


def test_sniffer_prefers_the_delimiter_giving_most_columns() -> None:
    assert sniff_csv_delimiter("a;b,c;d\n1;2,3;4\n") == ";"
    assert sniff_csv_delimiter("a|b|c\n1|2|3\n") == "|"
    assert sniff_csv_delimiter("just text\n") is None


# --- product types --------------------------------------------------------------------


def test_image_with_celestial_wcs(tmp_path: Path) -> None:
    path = write_image(tmp_path / "i.fits")
    assert detect_product_type(path, FileFormat.FITS) is ProductType.IMAGE
    ext = write_image(tmp_path / "e.fits", in_extension=True)
    assert detect_product_type(ext, FileFormat.FITS) is ProductType.IMAGE


def test_image_without_wcs_is_auxiliary(tmp_path: Path) -> None:
    path = write_image(tmp_path / "flat.fits", wcs=False)
    assert detect_product_type(path, FileFormat.FITS) is ProductType.AUXILIARY


def test_primary_only_header_is_auxiliary(tmp_path: Path) -> None:
    path = tmp_path / "h.fits"
    fits.PrimaryHDU().writeto(path)
    assert detect_product_type(path, FileFormat.FITS) is ProductType.AUXILIARY


def test_spectrum_by_columns_or_extname(tmp_path: Path) -> None:
    values = np.linspace(1.0, 2.0, 5)
    by_name = write_table(
        tmp_path / "a.fits", {"WAVE": (values, None), "FLUX": (values, None)}, "DATA"
    )
    by_unit = write_table(
        tmp_path / "b.fits", {"lam": (values, "nm"), "flux_nu": (values, "Jy")}, "DATA"
    )
    by_extname = write_table(tmp_path / "c.fits", {"X": (values, None)}, "SPECTRUM")
    for path in (by_name, by_unit, by_extname):
        assert detect_product_type(path, FileFormat.FITS) is ProductType.SPECTRUM, path.name


def test_distance_units_do_not_make_a_spectrum(tmp_path: Path) -> None:
    values = np.linspace(1.0, 2.0, 5)
    path = write_table(
        tmp_path / "cat.fits", {"dist": (values, "pc"), "flux_g": (values, "Jy")}, "SOURCES"
    )
    assert detect_product_type(path, FileFormat.FITS) is ProductType.CATALOGUE


def test_timeseries_by_time_column_or_extname(tmp_path: Path) -> None:
    values = np.linspace(1.0, 2.0, 5)
    by_column = write_table(tmp_path / "a.fits", {"TIME": (values, "d")}, "DATA")
    by_extname = write_table(tmp_path / "b.fits", {"t": (values, "d")}, "LIGHTCURVE")
    for path in (by_column, by_extname):
        assert detect_product_type(path, FileFormat.FITS) is ProductType.TIMESERIES


def test_other_binary_table_is_a_catalogue(tmp_path: Path) -> None:
    path = write_table(tmp_path / "c.fits", {"id": (np.arange(3), None)}, "SOURCES")
    assert detect_product_type(path, FileFormat.FITS) is ProductType.CATALOGUE


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (FileFormat.VOTABLE, ProductType.CATALOGUE),
        (FileFormat.CSV, ProductType.CATALOGUE),
        (FileFormat.PARQUET, ProductType.CATALOGUE),
        (FileFormat.OTHER, ProductType.AUXILIARY),
    ],
)
def test_non_fits_types(tmp_path: Path, fmt: FileFormat, expected: ProductType) -> None:
    assert detect_product_type(tmp_path / "unused", fmt) is expected


def test_unreadable_fits_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.fits", "SIMPLE  = T" + "x" * 100)
    with pytest.raises(FormatError, match=r"broken\.fits"):
        detect_product_type(path, FileFormat.FITS)
