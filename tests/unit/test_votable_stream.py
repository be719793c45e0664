"""VOTable TABLEDATA is streamed: same values as astropy's whole read, bounded memory."""

from __future__ import annotations

import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import votable

from firstlight.domain.manifest import DataType, FileFormat
from firstlight.formats.columns import Chunk
from firstlight.formats.detect import FormatError
from firstlight.formats.tables import open_table

MIXED = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE><TABLE>
<FIELD name="id" datatype="long" ucd="meta.id;meta.main"/>
<FIELD name="ok" datatype="boolean"/>
<FIELD name="nobs" datatype="unsignedByte"><VALUES null="255"/></FIELD>
<FIELD name="band" datatype="short"/>
<FIELD name="n" datatype="int"><VALUES null="-1"/></FIELD>
<FIELD name="pm" datatype="float" unit="mas/yr" ucd="pos.pm"/>
<FIELD name="ra" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main">
  <DESCRIPTION> Right ascension </DESCRIPTION>
</FIELD>
<FIELD name="flux" datatype="double"><VALUES null="-999"/></FIELD>
<FIELD name="label" datatype="char" arraysize="*"/>
<FIELD name="code" datatype="char" arraysize="3"/>
<FIELD name="greek" datatype="unicodeChar" arraysize="*"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>T</TD><TD>3</TD><TD>7</TD><TD>3</TD><TD>1.5</TD><TD>10.5</TD>
<TD>1.0</TD><TD> alpha </TD><TD>abcdef</TD><TD>\u03b1</TD></TR>
<TR><TD>2</TD><TD>?</TD><TD>255</TD><TD></TD><TD>-1</TD><TD>NaN</TD><TD>10.6</TD>
<TD>-999</TD><TD></TD><TD>x</TD><TD>\u03b2</TD></TR>
<TR><TD>3</TD><TD>false</TD><TD></TD><TD>0x10</TD><TD>nan</TD><TD></TD><TD>inf</TD>
<TD>NaN</TD><TD>gamma</TD><TD/><TD/></TR>
<TR><TD>4</TD><TD></TD><TD>0</TD><TD>-2</TD><TD>5</TD><TD>null</TD><TD></TD>
<TD></TD><TD>delta</TD><TD>de</TD><TD>\u03b4</TD></TR>
<TR><TD>5</TD><TD>1</TD><TD>9</TD><TD>4</TD><TD>6</TD><TD>-0.5</TD><TD>-1e3</TD>
<TD>2e5</TD><TD>eps</TD><TD>e</TD><TD>\u03b5</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""


def concat(chunks: list[Chunk], name: str) -> np.ma.MaskedArray[Any, Any]:
    return np.ma.concatenate([np.ma.asarray(c[name]) for c in chunks])


def astropy_table(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return votable.parse(str(path), verify="ignore").get_first_table().array


@pytest.mark.parametrize("chunk_rows", [1, 2, 5, 100])
def test_streamed_chunks_equal_astropy_whole_read(tmp_path: Path, chunk_rows: int) -> None:
    path = tmp_path / "mixed.vot"
    path.write_text(MIXED, encoding="utf-8")
    reader = open_table(path, FileFormat.VOTABLE)
    chunks = list(reader.iter_chunks(chunk_rows))
    expected = [min(chunk_rows, 5 - i) for i in range(0, 5, chunk_rows)]
    assert [len(c["id"]) for c in chunks] == expected
    whole = astropy_table(path)
    for column in reader.columns():
        ours = concat(chunks, column.name)
        theirs = whole[column.name]
        mask = np.ma.getmaskarray(theirs)
        assert np.ma.getmaskarray(ours).tolist() == mask.tolist(), column.name
        theirs_data = np.ma.getdata(theirs)[~mask]
        if column.datatype is DataType.STRING:
            theirs_data = theirs_data.astype(np.str_)
        np.testing.assert_array_equal(np.ma.getdata(ours)[~mask], theirs_data, column.name)
    columns = {c.name: c for c in reader.columns()}
    assert [c.datatype for c in columns.values()] == [
        DataType.INT64, DataType.BOOLEAN, DataType.INT16, DataType.INT16, DataType.INT32,
        DataType.FLOAT32, DataType.FLOAT64, DataType.FLOAT64, DataType.STRING,
        DataType.STRING, DataType.STRING,
    ]  # fmt: skip
    assert columns["ra"].description == "Right ascension"
    assert columns["ra"].ucd == "pos.eq.ra;meta.main"
    assert columns["pm"].ucd == "pos.pm"
    assert (columns["ra"].unit, columns["pm"].unit) == ("deg", "mas.yr**-1")
    assert reader.num_rows() == 5
    assert chunks[0]["pm"].dtype == np.float32 and chunks[0]["nobs"].dtype == np.int16


def test_columns_equal_astropy_path(tmp_path: Path) -> None:
    """BINARY2 goes through astropy whole; its columns match the streamed ones."""
    path = tmp_path / "mixed.vot"
    path.write_text(MIXED, encoding="utf-8")
    streamed = open_table(path, FileFormat.VOTABLE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vot = votable.parse(str(path), verify="ignore")
        vot.get_first_table().format = "binary2"
        binary = tmp_path / "binary.vot"
        vot.to_xml(str(binary))
    whole = open_table(binary, FileFormat.VOTABLE)
    assert whole.columns() == streamed.columns()
    for a, b in zip(whole.iter_chunks(2), streamed.iter_chunks(2), strict=True):
        for name in a:
            assert np.ma.getmaskarray(a[name]).tolist() == np.ma.getmaskarray(b[name]).tolist()


def write_big(path: Path, rows: int) -> Path:
    head = (
        '<?xml version="1.0"?>\n<VOTABLE version="1.4"><RESOURCE><TABLE>'
        '<FIELD name="id" datatype="long"/><FIELD name="x" datatype="double"/>'
        '<FIELD name="s" datatype="char" arraysize="*"/><DATA><TABLEDATA>\n'
    )
    with path.open("w") as fh:
        fh.write(head)
        for i in range(rows):
            fh.write(f"<TR><TD>{i}</TD><TD>{i * 0.5}</TD><TD>row number {i}</TD></TR>\n")
        fh.write("</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n")
    return path


def peak_while_iterating(path: Path, chunk_rows: int) -> tuple[int, int, float]:
    reader = open_table(path, FileFormat.VOTABLE)
    tracemalloc.start()
    started = time.perf_counter()
    rows = 0
    try:
        for chunk in reader.iter_chunks(chunk_rows):
            rows += len(chunk["id"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rows, peak, time.perf_counter() - started


def test_memory_does_not_grow_with_rows(tmp_path: Path) -> None:
    small = write_big(tmp_path / "small.vot", 20_000)
    big = write_big(tmp_path / "big.vot", 200_000)
    rows_small, peak_small, _ = peak_while_iterating(small, 5_000)
    rows_big, peak_big, seconds = peak_while_iterating(big, 5_000)
    assert (rows_small, rows_big) == (20_000, 200_000)
    print(f"peak 20k rows {peak_small} B, 200k rows {peak_big} B, 200k in {seconds:.2f} s")
    assert peak_big <= 1.5 * peak_small


def test_doctype_with_entities_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "laughs.vot"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE VOTABLE [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        + MIXED.split("\n", 1)[1].replace("alpha", "&b;")
    )
    with pytest.raises(FormatError, match="entities"):
        open_table(path, FileFormat.VOTABLE)


@pytest.mark.parametrize(
    "text",
    [
        MIXED.replace("<TD>gamma</TD>", "<TD>gamma</TR>"),  # malformed in the rows
        MIXED.replace("</TD><TD>7</TD>", "</TD>"),  # a row short of a cell
        MIXED.replace("<TD>0x10</TD>", "<TD>many</TD>"),  # not an integer
    ],
)
def test_broken_rows_name_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.vot"
    path.write_text(text, encoding="utf-8")
    reader = open_table(path, FileFormat.VOTABLE)
    with pytest.raises(FormatError, match=r"broken\.vot"):
        list(reader.iter_chunks(2))


def test_malformed_header_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.vot"
    path.write_text(MIXED.replace('<FIELD name="ok" datatype="boolean"/>', "<FIELD name="))
    with pytest.raises(FormatError, match=r"bad\.vot: unreadable VOTable"):
        open_table(path, FileFormat.VOTABLE)


def test_table_without_data_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.vot"
    path.write_text(MIXED.split("<DATA>", maxsplit=1)[0] + "</TABLE></RESOURCE></VOTABLE>\n")
    reader = open_table(path, FileFormat.VOTABLE)
    assert len(reader.columns()) == 11
    assert reader.num_rows() == 0
    assert list(reader.iter_chunks(10)) == []
