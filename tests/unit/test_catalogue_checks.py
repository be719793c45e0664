"""Catalogue checks against the manifest's table definition, in every table format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table

from firstlight.checks.catalogue_checks import check_catalogue
from firstlight.domain.findings import Finding
from firstlight.domain.manifest import FileFormat, TableDefinition

ROWS = 8


def definition(**changes: Any) -> TableDefinition:
    """source_id int64 key, ra/dec float64 in deg, mag float32."""
    columns = {
        "source_id": {"name": "source_id", "datatype": "int64"},
        "ra": {"name": "ra", "datatype": "float64", "unit": "deg"},
        "dec": {"name": "dec", "datatype": "float64", "unit": "deg"},
        "mag": {"name": "mag", "datatype": "float32"},
    }
    for name, change in changes.items():
        if change is None:
            del columns[name]
        else:
            columns[name] = {**columns[name], **change}
    return TableDefinition.model_validate(
        {
            "name": "stars",
            "columns": list(columns.values()),
            "primary_key": "source_id",
            "ra": "ra",
            "dec": "dec",
        }
    )


def values(**changes: Any) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {
        "source_id": np.arange(100, 100 + ROWS, dtype=np.int64),
        "ra": np.linspace(0.0, 359.9, ROWS),
        "dec": np.linspace(-90.0, 90.0, ROWS),
        "mag": np.full(ROWS, 12.5, dtype=np.float32),
    }
    data.update(changes)
    return data


# TFORM by numpy dtype; anything else is stored as float64 ("D").
FITS_FORMS = {np.dtype(np.int64): "K", np.dtype(np.int16): "I", np.dtype(np.float32): "E"}


def write_fits(
    path: Path,
    data: dict[str, np.ndarray],
    units: dict[str, str] | None = None,
    nulls: dict[str, int] | None = None,
) -> Path:
    units = {"ra": "deg", "dec": "deg"} if units is None else units
    cols = []
    for name, array in data.items():
        cols.append(
            fits.Column(
                name=name,
                format=FITS_FORMS.get(array.dtype, "D"),
                array=array,
                unit=units.get(name),
                null=(nulls or {}).get(name),
            )
        )
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="STARS")]).writeto(
        path, checksum=True
    )
    return path


def run(
    path: Path,
    fmt: FileFormat = FileFormat.FITS,
    table: TableDefinition | None = None,
    chunk_rows: int = 3,
) -> list[Finding]:
    # Chunks of 3 rows: every row check crosses chunk boundaries.
    return check_catalogue(path, "cat/stars." + fmt.value, fmt, table or definition(), chunk_rows)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def only(findings: list[Finding], check: str) -> Finding:
    [finding] = findings
    assert finding.check == check
    assert finding.file.startswith("cat/stars.") if finding.file else False
    return finding


# --- valid files, every format -------------------------------------------------------


def test_valid_fits(tmp_path: Path) -> None:
    assert run(write_fits(tmp_path / "s.fits", values())) == []


def test_valid_parquet(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table(values()), path)
    assert run(path, FileFormat.PARQUET, definition(ra={"unit": None}, dec={"unit": None})) == []


def test_valid_csv(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    Table(values()).write(path, format="ascii.csv")
    assert run(path, FileFormat.CSV) == []


def test_valid_votable(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    table = Table(values())
    table["ra"].unit = table["dec"].unit = "deg"
    table.write(path, format="votable")
    assert run(path, FileFormat.VOTABLE) == []


# --- columns -----------------------------------------------------------------------


def test_narrower_int_and_equivalent_unit_are_fine(tmp_path: Path) -> None:
    data = values(source_id=np.arange(ROWS, dtype=np.int16))
    path = write_fits(tmp_path / "s.fits", data, units={"ra": "degree", "dec": "deg"})
    assert run(path) == []


def test_float_into_int_column(tmp_path: Path) -> None:
    path = write_fits(tmp_path / "s.fits", values(source_id=np.arange(ROWS, dtype=np.float64)))
    finding = only(run(path), "table.columns")
    assert finding.column == "source_id"
    assert finding.observed == "float64"


def test_unit_differs(tmp_path: Path) -> None:
    path = write_fits(tmp_path / "s.fits", values(), units={"ra": "arcsec", "dec": "deg"})
    finding = only(run(path), "table.columns")
    assert (finding.column, finding.observed) == ("ra", "arcsec")


def test_missing_and_extra_columns(tmp_path: Path) -> None:
    data = values()
    data["MAGNITUDE"] = data.pop("mag")
    found = run(write_fits(tmp_path / "s.fits", data))
    assert sorted((f.check, f.column) for f in found) == [
        ("table.columns", "MAGNITUDE"),
        ("table.columns", "mag"),
    ]


def test_column_names_ignore_case(tmp_path: Path) -> None:
    data = {name.upper(): array for name, array in values().items()}
    path = write_fits(tmp_path / "s.fits", data, units={"RA": "deg", "DEC": "deg"})
    assert run(path) == []


def test_csv_with_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    Table(values()).write(path, format="ascii.csv")
    found = run(path, FileFormat.CSV, definition(mag={"name": "gmag"}))
    assert sorted(f.column or "" for f in found) == ["gmag", "mag"]
    assert {f.check for f in found} == {"table.columns"}


def test_csv_value_not_of_declared_type(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("source_id,ra,dec,mag\n1,10.0,20.0,12.0\nabc,11.0,21.0,12.0\n")
    finding = only(run(path, FileFormat.CSV), "table.read")
    assert "abc" in finding.reason or "source_id" in finding.reason


# --- rows ----------------------------------------------------------------------------


def test_empty_table(tmp_path: Path) -> None:
    empty = {name: array[:0] for name, array in values().items()}
    finding = only(run(write_fits(tmp_path / "s.fits", empty)), "table.empty")
    assert finding.failing_count == 0


def test_ra_out_of_range_names_rows(tmp_path: Path) -> None:
    ra = values()["ra"]
    ra[[1, 4, 7]] = [np.nan, 360.0, -0.1]
    finding = only(run(write_fits(tmp_path / "s.fits", values(ra=ra))), "table.ra_range")
    assert (finding.column, finding.failing_count, finding.sample_rows) == ("ra", 3, (1, 4, 7))
    assert finding.observed == "e.g. null, 360.0, -0.1"  # FITS: NaN is the float null


def test_dec_out_of_range_names_rows(tmp_path: Path) -> None:
    dec = values()["dec"]
    dec[[0, 5]] = [-90.5, np.inf]
    finding = only(run(write_fits(tmp_path / "s.fits", values(dec=dec))), "table.dec_range")
    assert (finding.column, finding.failing_count, finding.sample_rows) == ("dec", 2, (0, 5))


def test_sample_rows_are_capped_at_ten(tmp_path: Path) -> None:
    n = 25
    data = {
        "source_id": np.arange(n, dtype=np.int64),
        "ra": np.full(n, 400.0),
        "dec": np.zeros(n),
        "mag": np.zeros(n, dtype=np.float32),
    }
    finding = only(run(write_fits(tmp_path / "s.fits", data)), "table.ra_range")
    assert finding.failing_count == n
    assert finding.sample_rows == tuple(range(10))


def test_duplicate_ids_across_chunks(tmp_path: Path) -> None:
    ids = values()["source_id"]
    ids[[6, 7]] = ids[1]  # rows 1, 6 and 7 share an id, in different chunks of 3
    ids[5] = ids[2]
    finding = only(run(write_fits(tmp_path / "s.fits", values(source_id=ids))), "table.key_unique")
    assert finding.column == "source_id"
    assert finding.failing_count == 5
    assert finding.sample_rows == (1, 2, 5, 6, 7)
    assert finding.observed == "e.g. 101, 102"


def test_null_key_in_fits(tmp_path: Path) -> None:
    ids = values()["source_id"]
    ids[[3, 4]] = -1
    path = write_fits(tmp_path / "s.fits", values(source_id=ids), nulls={"source_id": -1})
    finding = only(run(path), "table.key_null")
    assert (finding.column, finding.failing_count, finding.sample_rows) == ("source_id", 2, (3, 4))


def test_null_key_and_position_in_parquet(tmp_path: Path) -> None:
    data: dict[str, Any] = {name: list(array) for name, array in values().items()}
    data["source_id"][2] = None
    data["ra"][6] = None
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table(data), path)
    table = definition(ra={"unit": None}, dec={"unit": None})
    found = {f.check: f for f in run(path, FileFormat.PARQUET, table)}
    assert set(found) == {"table.key_null", "table.ra_range"}
    assert found["table.key_null"].sample_rows == (2,)
    assert found["table.ra_range"].sample_rows == (6,)
    assert found["table.ra_range"].observed == "e.g. null"


def test_string_keys(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("source_id,ra,dec,mag\nA,1.0,2.0,3.0\nB,1.0,2.0,3.0\nA,1.0,2.0,3.0\n")
    table = definition(source_id={"datatype": "string"})
    finding = only(run(path, FileFormat.CSV, table), "table.key_unique")
    assert finding.sample_rows == (0, 2)


# --- unreadable files ----------------------------------------------------------------


def test_truncated_fits_table(tmp_path: Path) -> None:
    path = write_fits(tmp_path / "s.fits", values())
    with fits.open(path) as hdul:
        cut = hdul[1].fileinfo()["datLoc"] + 100  # inside the rows, not the padding
    path.write_bytes(path.read_bytes()[:cut])
    found = run(path)
    assert [f.check for f in errors(found)] == ["table.read"]


def test_fits_without_table(tmp_path: Path) -> None:
    path = tmp_path / "s.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(path)
    assert "binary table" in only(run(path), "table.read").reason


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        (FileFormat.PARQUET, b"PAR1 not really"),
        (FileFormat.VOTABLE, b"<VOTABLE><RESOURCE><TABLE><broken"),
        (FileFormat.CSV, b""),
        (FileFormat.OTHER, b"whatever"),
    ],
)
def test_garbage(tmp_path: Path, fmt: FileFormat, content: bytes) -> None:
    path = tmp_path / "s.bin"
    path.write_bytes(content)
    only(run(path, fmt), "table.read")
