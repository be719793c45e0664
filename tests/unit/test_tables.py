"""Table readers: columns and their metadata, chunks, nulls, and broken files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from firstlight.domain.manifest import Column, DataType, FileFormat, TableDefinition
from firstlight.formats.columns import Chunk, datatype_of, numpy_dtype_of
from firstlight.formats.detect import FormatError
from firstlight.formats.tables import open_table, table_definition_from_file


def concat(chunks: list[Chunk], name: str) -> np.ma.MaskedArray[Any, Any]:
    return np.ma.concatenate([np.ma.asarray(c[name]) for c in chunks])


def write_fits_table(path: Path, rows: int = 10) -> Path:
    ids = np.arange(rows, dtype=np.int64) + 1000
    flags = np.array([i % 3 == 0 for i in range(rows)])
    scaled = np.arange(rows, dtype=np.int16)
    unsigned = np.arange(rows, dtype=np.uint32) + 4_000_000_000
    nullable = np.where(np.arange(rows) % 4 == 1, -99, np.arange(rows)).astype(np.int32)
    mags = np.where(np.arange(rows) % 5 == 2, np.nan, 15.0 + np.arange(rows)).astype(np.float32)
    names = np.array([f"star {i}" for i in range(rows)])
    cols = [
        fits.Column("source_id", "K", array=ids),
        fits.Column("RA", "D", unit="deg", array=np.linspace(0, 1, rows)),
        fits.Column("flag", "L", array=flags),
        fits.Column("scaled", "I", array=scaled),
        fits.Column("big", "J", bzero=2**31, array=unsigned),
        fits.Column("nullable", "J", null=-99, array=nullable),
        fits.Column("mag", "E", unit="mag", array=mags),
        fits.Column("name", "12A", array=names),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="SOURCES")
    header = table.header
    header.comments["EXTNAME"] = "A test catalogue"
    header["TSCAL4"] = 0.5
    header["TZERO4"] = 10.0
    header.set("TUCD1", "meta.id;meta.main", after="TFORM1")
    header.set("TCOMM1", "Unique id", after="TUCD1")
    header.set("TUCD2", "pos.eq.ra;meta.main", after="TUNIT2")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


# --- FITS -----------------------------------------------------------------------------


def test_fits_columns_carry_types_units_ucds_and_descriptions(tmp_path: Path) -> None:
    reader = open_table(write_fits_table(tmp_path / "t.fits"), FileFormat.FITS)
    columns = {c.name: c for c in reader.columns()}
    assert [c.datatype for c in columns.values()] == [
        DataType.INT64, DataType.FLOAT64, DataType.BOOLEAN, DataType.FLOAT64,
        DataType.INT64, DataType.INT32, DataType.FLOAT32, DataType.STRING,
    ]  # fmt: skip
    assert columns["source_id"] == Column(
        name="source_id", datatype=DataType.INT64, ucd="meta.id;meta.main", description="Unique id"
    )
    assert columns["RA"].unit == "deg"
    assert columns["RA"].ucd == "pos.eq.ra;meta.main"
    assert reader.num_rows() == 10


def test_fits_chunks_convert_scaled_bool_unsigned_and_strings(tmp_path: Path) -> None:
    reader = open_table(write_fits_table(tmp_path / "t.fits", rows=10), FileFormat.FITS)
    chunks = list(reader.iter_chunks(3))
    assert [len(c["source_id"]) for c in chunks] == [3, 3, 3, 1]
    assert concat(chunks, "source_id").tolist() == list(range(1000, 1010))
    assert concat(chunks, "flag").tolist() == [i % 3 == 0 for i in range(10)]
    assert concat(chunks, "scaled").tolist() == [10.0 + 0.5 * i for i in range(10)]
    assert concat(chunks, "big").tolist() == [4_000_000_000 + i for i in range(10)]
    assert concat(chunks, "name").tolist() == [f"star {i}" for i in range(10)]
    for chunk in chunks:
        for column in reader.columns():
            values = chunk[column.name]
            assert values.dtype == numpy_dtype_of(column.datatype) or (
                column.datatype is DataType.STRING and values.dtype.kind == "U"
            )
            assert values.dtype.isnative


def test_fits_nulls_are_masked(tmp_path: Path) -> None:
    reader = open_table(write_fits_table(tmp_path / "t.fits", rows=10), FileFormat.FITS)
    chunks = list(reader.iter_chunks(100))
    nullable = chunks[0]["nullable"]
    assert isinstance(nullable, np.ma.MaskedArray)
    assert np.flatnonzero(nullable.mask).tolist() == [1, 5, 9]
    mag = chunks[0]["mag"]
    assert isinstance(mag, np.ma.MaskedArray)
    assert np.flatnonzero(mag.mask).tolist() == [2, 7]
    assert not isinstance(chunks[0]["source_id"], np.ma.MaskedArray)


def write_plain_fits(path: Path, rows: int = 11) -> Path:
    """Only plain numbers (B, I, J, K, E, D), with TNULLn and NaN nulls, after an image."""
    n = np.arange(rows)
    cols = [
        fits.Column("byte", "B", array=(n % 256).astype(np.uint8)),
        fits.Column("short", "I", null=-1, array=np.where(n % 3 == 0, -1, n).astype(np.int16)),
        fits.Column("int", "J", array=(n * 1000).astype(np.int32)),
        fits.Column("long", "K", null=-7, array=np.where(n % 4 == 1, -7, n * 2**40)),
        fits.Column("mag", "E", array=np.where(n % 5 == 2, np.nan, n / 3).astype(np.float32)),
        fits.Column("ra", "D", array=np.where(n == 4, np.inf, n * 0.1)),
    ]
    table = fits.BinTableHDU.from_columns(cols)
    fits.HDUList([fits.PrimaryHDU(np.zeros((3, 3))), table]).writeto(path)
    return path


def test_fits_plain_tables_read_through_a_map_equal_astropys_values(tmp_path: Path) -> None:
    from firstlight.formats.fits_table import FitsTableReader

    plain = FitsTableReader(write_plain_fits(tmp_path / "plain.fits"))
    assert plain._plain is not None
    slow = FitsTableReader(plain.path)
    slow._plain = None
    for ours, theirs in zip(plain.iter_chunks(4), slow.iter_chunks(4), strict=True):
        assert ours.keys() == theirs.keys()
        for name in ours:
            a, b = ours[name], theirs[name]
            assert a.dtype == b.dtype
            assert a.dtype.isnative
            assert np.ma.getmaskarray(a).tolist() == np.ma.getmaskarray(b).tolist()
            assert np.array_equal(np.ma.getdata(a), np.ma.getdata(b), equal_nan=True)
    # Scaled, logical, string or unsigned columns: astropy reads the table.
    assert FitsTableReader(write_fits_table(tmp_path / "t.fits"))._plain is None


def test_fits_chunks_of_some_columns(tmp_path: Path) -> None:
    for path in (write_plain_fits(tmp_path / "p.fits"), write_fits_table(tmp_path / "t.fits")):
        reader = open_table(path, FileFormat.FITS)
        first = reader.columns()[0].name
        chunks = list(reader.iter_chunks(4, {first, "mag"}))
        assert [sorted(c) for c in chunks] == [sorted([first, "mag"])] * len(chunks)
        assert sum(len(c["mag"]) for c in chunks) == reader.num_rows()


def test_fits_reader_reads_the_first_binary_table_after_images(tmp_path: Path) -> None:
    path = tmp_path / "mixed.fits"
    table = fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.ones(4))])
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2))), fits.ImageHDU(np.zeros(3)), table]).writeto(
        path
    )
    reader = open_table(path, FileFormat.FITS)
    assert [c.name for c in reader.columns()] == ["x"]
    assert concat(list(reader.iter_chunks(10)), "x").tolist() == [1.0] * 4


def test_fits_without_table_or_with_array_columns_is_refused(tmp_path: Path) -> None:
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((2, 2))).writeto(image)
    with pytest.raises(FormatError, match="no binary table"):
        open_table(image, FileFormat.FITS)
    vector = tmp_path / "vector.fits"
    fits.BinTableHDU.from_columns([fits.Column("v", "3E", array=np.ones((2, 3)))]).writeto(vector)
    with pytest.raises(FormatError, match="'v' is an array column"):
        open_table(vector, FileFormat.FITS)


def test_fits_empty_table_has_no_chunks(tmp_path: Path) -> None:
    path = tmp_path / "empty.fits"
    fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.zeros(0))]).writeto(path)
    reader = open_table(path, FileFormat.FITS)
    assert reader.num_rows() == 0
    assert list(reader.iter_chunks(5)) == []


# --- VOTable --------------------------------------------------------------------------

VOTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE><TABLE name="objects">
<DESCRIPTION>Objects seen twice</DESCRIPTION>
<FIELD name="obj_id" datatype="long" ucd="meta.id;meta.main"/>
<FIELD name="RAJ2000" datatype="double" unit="deg">
  <DESCRIPTION>Right ascension</DESCRIPTION>
</FIELD>
<FIELD name="DEJ2000" datatype="double" unit="deg"/>
<FIELD name="pm" datatype="float" unit="mas/yr"/>
<FIELD name="label" datatype="char" arraysize="*"/>
<FIELD name="n" datatype="int"><VALUES null="-1"/></FIELD>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>10.5</TD><TD>-1.0</TD><TD>1.5</TD><TD>alpha</TD><TD>3</TD></TR>
<TR><TD>2</TD><TD>10.6</TD><TD>-1.1</TD><TD>NaN</TD><TD>beta</TD><TD>-1</TD></TR>
<TR><TD>3</TD><TD>10.7</TD><TD>-1.2</TD><TD>2.5</TD><TD>gamma</TD><TD>4</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
"""


def test_votable_columns_and_chunks(tmp_path: Path) -> None:
    path = tmp_path / "t.xml"
    path.write_text(VOTABLE)
    reader = open_table(path, FileFormat.VOTABLE)
    columns = {c.name: c for c in reader.columns()}
    assert columns["obj_id"].ucd == "meta.id;meta.main"
    assert columns["RAJ2000"].description == "Right ascension"
    assert columns["RAJ2000"].unit == "deg"
    assert columns["pm"].unit is not None
    assert columns["label"].datatype is DataType.STRING
    assert reader.num_rows() == 3
    chunks = list(reader.iter_chunks(2))
    assert [len(c["obj_id"]) for c in chunks] == [2, 1]
    assert concat(chunks, "label").tolist() == ["alpha", "beta", "gamma"]
    assert chunks[0]["label"].dtype.kind == "U"
    assert np.ma.getmaskarray(chunks[0]["pm"]).tolist() == [False, True]
    assert np.ma.getmaskarray(chunks[0]["n"]).tolist() == [False, True]


def test_votable_definition_guesses_roles_and_description(tmp_path: Path) -> None:
    path = tmp_path / "t.vot"
    path.write_text(VOTABLE)
    definition = table_definition_from_file(path, FileFormat.VOTABLE, "objects")
    assert definition.description == "Objects seen twice"
    assert definition.primary_key == "obj_id"
    assert (definition.ra, definition.dec) == ("RAJ2000", "DEJ2000")


def test_votable_with_entity_declarations_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE VOTABLE [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        + VOTABLE.split("\n", 1)[1].replace("alpha", "&x;")
    )
    with pytest.raises(FormatError, match="entities"):
        open_table(path, FileFormat.VOTABLE)


def test_broken_votable_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    path.write_text(VOTABLE[: len(VOTABLE) // 2])
    with pytest.raises(FormatError, match=r"cut\.xml"):
        open_table(path, FileFormat.VOTABLE)


def test_votable_array_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "arr.xml"
    text = VOTABLE.replace('name="pm" datatype="float"', 'name="pm" datatype="float" arraysize="2"')
    for value in ("1.5", "NaN", "2.5"):
        text = text.replace(f"<TD>{value}</TD>", "<TD>1 2</TD>")
    path.write_text(text)
    with pytest.raises(FormatError, match="'pm' is an array column"):
        open_table(path, FileFormat.VOTABLE)


# --- CSV ------------------------------------------------------------------------------

CSV = "id,code,ra,dec,flag,name\n" + "".join(
    f"{i},{i:03d},{10 + i / 10},{-5 + i / 10},{'true' if i % 2 else 'false'},"
    f"{'' if i == 4 else f'n{i}'}\n"
    for i in range(1, 8)
)


def csv_definition() -> TableDefinition:
    return TableDefinition(
        name="t",
        columns=[
            Column(name="id", datatype=DataType.INT32),
            Column(name="code", datatype=DataType.STRING),
            Column(name="ra", datatype=DataType.FLOAT64, unit="deg"),
            Column(name="dec", datatype=DataType.FLOAT32, unit="deg"),
            Column(name="flag", datatype=DataType.BOOLEAN),
            Column(name="name", datatype=DataType.STRING),
        ],
    )


def test_csv_inferred_types_and_nulls(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    reader = open_table(path, FileFormat.CSV)
    types = {c.name: c.datatype for c in reader.columns()}
    assert types == {
        "id": DataType.INT64, "code": DataType.INT64, "ra": DataType.FLOAT64,
        "dec": DataType.FLOAT64, "flag": DataType.BOOLEAN, "name": DataType.STRING,
    }  # fmt: skip
    assert all(c.unit is None and c.ucd is None for c in reader.columns())
    assert reader.num_rows() is None
    chunks = list(reader.iter_chunks(3))
    assert [len(c["id"]) for c in chunks] == [3, 3, 1]
    name = concat(chunks, "name")
    assert np.flatnonzero(np.ma.getmaskarray(name)).tolist() == [3]


def test_csv_with_a_definition_uses_its_types(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    reader = open_table(path, FileFormat.CSV, csv_definition())
    assert [c.datatype for c in reader.columns()] == [c.datatype for c in csv_definition().columns]
    chunk = next(reader.iter_chunks(100))
    assert chunk["code"].tolist()[:2] == ["001", "002"]  # kept as text: no guessing
    assert chunk["id"].dtype == np.int32
    assert chunk["dec"].dtype == np.float32
    assert chunk["flag"].tolist()[:2] == [True, False]


def test_csv_definition_must_name_the_same_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV.replace("name", "label", 1))
    with pytest.raises(FormatError, match=r"missing \['name'\], not defined \['label'\]"):
        open_table(path, FileFormat.CSV, csv_definition())


def test_csv_bad_value_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(CSV.replace("\n5,", "\nfive,"))
    reader = open_table(path, FileFormat.CSV, csv_definition())
    with pytest.raises(FormatError, match=r"bad\.csv"):
        list(reader.iter_chunks(100))


def test_csv_tab_delimited_and_temporal_values_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("id\twhen\n1\t2024-01-02T03:04:05\n2\t2024-02-03T04:05:06\n")
    reader = open_table(path, FileFormat.CSV)
    assert {c.name: c.datatype for c in reader.columns()}["when"] is DataType.STRING
    assert next(reader.iter_chunks(10))["when"].dtype.kind == "U"


# --- Parquet --------------------------------------------------------------------------


def write_parquet(path: Path) -> Path:
    schema = pa.schema(
        [
            pa.field("source_id", pa.int64(), metadata={"ucd": "meta.id;meta.main"}),
            pa.field("ra", pa.float64(), metadata={"unit": "deg", "ucd": "pos.eq.ra;meta.main"}),
            pa.field("dec", pa.float64(), metadata={"unit": "deg", "ucd": "pos.eq.dec;meta.main"}),
            pa.field("mag", pa.float32(), metadata={"unit": "mag", "description": "G mag"}),
            pa.field("nobs", pa.uint8()),
            pa.field("band", pa.dictionary(pa.int8(), pa.string())),
        ]
    )
    table = pa.table(
        {
            "source_id": list(range(10)),
            "ra": [float(i) for i in range(10)],
            "dec": [0.5] * 10,
            "mag": [None if i == 3 else 15.0 + i for i in range(10)],
            "nobs": list(range(10)),
            "band": pa.array(["g", "r"] * 5).dictionary_encode(),
        },
        schema=schema,
    )
    pq.write_table(table, path, row_group_size=4)
    return path


def test_parquet_columns_from_field_metadata(tmp_path: Path) -> None:
    reader = open_table(write_parquet(tmp_path / "t.parquet"), FileFormat.PARQUET)
    columns = {c.name: c for c in reader.columns()}
    assert columns["ra"].unit == "deg"
    assert columns["ra"].ucd == "pos.eq.ra;meta.main"
    assert columns["mag"].description == "G mag"
    assert columns["nobs"].datatype is DataType.INT16
    assert columns["band"].datatype is DataType.STRING
    assert reader.num_rows() == 10


def test_parquet_chunks_cross_row_groups(tmp_path: Path) -> None:
    reader = open_table(write_parquet(tmp_path / "t.parquet"), FileFormat.PARQUET)
    chunks = list(reader.iter_chunks(3))
    assert [len(c["ra"]) for c in chunks] == [3, 3, 3, 1]
    assert concat(chunks, "source_id").tolist() == list(range(10))
    assert concat(chunks, "band").tolist() == ["g", "r"] * 5
    assert chunks[1]["nobs"].dtype == np.int16
    assert np.ma.getmaskarray(chunks[1]["mag"]).tolist() == [True, False, False]


def test_parquet_definition_from_ucds(tmp_path: Path) -> None:
    definition = table_definition_from_file(
        write_parquet(tmp_path / "t.parquet"), FileFormat.PARQUET, "sources"
    )
    assert (definition.primary_key, definition.ra, definition.dec) == ("source_id", "ra", "dec")


def test_parquet_nested_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"xs": [[1, 2], [3]]}), path)
    with pytest.raises(FormatError, match="'xs'"):
        open_table(path, FileFormat.PARQUET)


# --- shared ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("?", DataType.BOOLEAN), ("i1", DataType.INT16), ("u1", DataType.INT16),
        ("i2", DataType.INT16), ("u2", DataType.INT32), ("i4", DataType.INT32),
        (">u4", DataType.INT64), ("i8", DataType.INT64), ("u8", DataType.INT64),
        ("f2", DataType.FLOAT32), (">f4", DataType.FLOAT32), ("f8", DataType.FLOAT64),
        ("U5", DataType.STRING), ("S5", DataType.STRING), ("O", DataType.STRING),
    ],
)  # fmt: skip
def test_datatype_mapping(dtype: str, expected: DataType) -> None:
    assert datatype_of(np.dtype(dtype)) is expected


@pytest.mark.parametrize("dtype", ["c8", "M8[s]", "(3,)f4"])
def test_unmapped_types_are_refused(dtype: str) -> None:
    with pytest.raises(FormatError):
        datatype_of(np.dtype(dtype))


def test_definition_from_names_when_no_ucds(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ObjID,RA_ICRS,DE_ICRS\n1,2,3\n")
    definition = table_definition_from_file(path, FileFormat.CSV, "t")
    assert definition.primary_key == "ObjID"
    assert (definition.ra, definition.dec) == ("RA_ICRS", "DE_ICRS")
    path.write_text("name,ra,decl\n1,2,3\n")
    definition = table_definition_from_file(path, FileFormat.CSV, "t")
    assert (definition.primary_key, definition.ra, definition.dec) == (None, None, None)
    path.write_text("id,ra,dec\n1,2,3\n")
    definition = table_definition_from_file(path, FileFormat.CSV, "t")
    assert (definition.primary_key, definition.ra, definition.dec) == ("id", "ra", "dec")


def test_fits_definition_description_from_extname(tmp_path: Path) -> None:
    definition = table_definition_from_file(
        write_fits_table(tmp_path / "t.fits"), FileFormat.FITS, "t"
    )
    assert definition.description == "A test catalogue"
    assert (definition.primary_key, definition.ra, definition.dec) == ("source_id", None, None)


def test_chunk_rows_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(CSV)
    with pytest.raises(ValueError, match="positive"):
        next(open_table(path, FileFormat.CSV).iter_chunks(0))


def test_other_format_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a table"):
        open_table(tmp_path / "x.bin", FileFormat.OTHER)
