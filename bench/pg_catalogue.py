"""The generated catalogue of the PostgreSQL ingest bench: 15 numeric columns in FITS.

Written chunk by chunk (memory bounded by one chunk) with CHECKSUM/DATASUM, so
the library's validation accepts it. Each chunk draws from its own seeded
stream, so a smaller file holds the first rows of a larger one. Two float
columns have NaN in some rows: firstlight loads them as NULL, the raw COPY
baseline as NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from firstlight.domain.manifest import Column, DataType, TableDefinition
from firstlight.formats.fits_checksum import OnesComplementSum, header_checksum

TABLE_NAME = "sources"
CHUNK_ROWS = 250_000
_BLOCK = 2880
_SEED = 20261125
_FIELD = (150.0, 2.2, 2.0)  # centre ra, dec and half-width of the field (deg)

# name, TFORM, numpy dtype as stored (big-endian), DataType, unit, UCD
COLUMNS: tuple[tuple[str, str, str, DataType, str | None, str | None], ...] = (
    ("source_id", "K", ">i8", DataType.INT64, None, "meta.id;meta.main"),
    ("ra", "D", ">f8", DataType.FLOAT64, "deg", "pos.eq.ra;meta.main"),
    ("dec", "D", ">f8", DataType.FLOAT64, "deg", "pos.eq.dec;meta.main"),
    ("ra_error", "E", ">f4", DataType.FLOAT32, "mas", "stat.error;pos.eq.ra"),
    ("dec_error", "E", ">f4", DataType.FLOAT32, "mas", "stat.error;pos.eq.dec"),
    ("parallax", "E", ">f4", DataType.FLOAT32, "mas", "pos.parallax.trig"),
    ("parallax_error", "E", ">f4", DataType.FLOAT32, "mas", "stat.error;pos.parallax.trig"),
    ("pmra", "E", ">f4", DataType.FLOAT32, "mas/yr", "pos.pm;pos.eq.ra"),
    ("pmdec", "E", ">f4", DataType.FLOAT32, "mas/yr", "pos.pm;pos.eq.dec"),
    ("phot_g_mean_mag", "E", ">f4", DataType.FLOAT32, "mag", "phot.mag;em.opt"),
    ("bp_rp", "E", ">f4", DataType.FLOAT32, "mag", "phot.color"),
    ("ruwe", "E", ">f4", DataType.FLOAT32, None, "stat.fit"),
    ("n_obs", "J", ">i4", DataType.INT32, None, "meta.number"),
    ("quality_flags", "J", ">i4", DataType.INT32, None, "meta.code.qual"),
    ("epoch_mjd", "D", ">f8", DataType.FLOAT64, "d", "time.epoch"),
)
RECORD = np.dtype([(name, dtype) for name, _, dtype, _, _, _ in COLUMNS])
NULLABLE = {"parallax": 0.15, "bp_rp": 0.08}  # share of NaN


def definition() -> TableDefinition:
    """The table definition a manifest would hold for this file."""
    return TableDefinition(
        name=TABLE_NAME,
        description="Generated catalogue of the PostgreSQL ingest bench",
        columns=[
            Column(name=name, datatype=datatype, unit=unit, ucd=ucd)
            for name, _, _, datatype, unit, ucd in COLUMNS
        ],
        primary_key="source_id",
        ra="ra",
        dec="dec",
    )


def records(start: int, stop: int) -> np.ndarray:
    """Rows ``start`` to ``stop`` as big-endian FITS records (start: a chunk boundary)."""
    n = stop - start
    rng = np.random.default_rng([_SEED, start // CHUNK_ROWS])
    ra0, dec0, half = _FIELD
    out = np.empty(n, dtype=RECORD)
    out["source_id"] = np.arange(start + 1, stop + 1, dtype=np.int64) * 1000 + 7
    out["ra"] = ra0 + rng.uniform(-half, half, n)
    out["dec"] = dec0 + rng.uniform(-half, half, n)
    mag = rng.uniform(12.0, 21.0, n)
    out["ra_error"] = 0.02 * 10 ** (0.2 * (mag - 12))
    out["dec_error"] = 0.018 * 10 ** (0.2 * (mag - 12))
    out["parallax"] = rng.exponential(1.0, n)
    out["parallax_error"] = 0.03 * 10 ** (0.2 * (mag - 12))
    out["pmra"] = rng.normal(-2.0, 5.0, n)
    out["pmdec"] = rng.normal(-4.0, 5.0, n)
    out["phot_g_mean_mag"] = mag
    out["bp_rp"] = rng.normal(1.0, 0.4, n)
    out["ruwe"] = 1.0 + rng.exponential(0.1, n)
    out["n_obs"] = rng.integers(5, 400, n)
    out["quality_flags"] = rng.integers(0, 16, n)
    out["epoch_mjd"] = 57388.0 + rng.uniform(0, 1000, n)
    for name, share in NULLABLE.items():
        out[name][rng.random(n) < share] = np.nan
    return out


def write_catalogue(path: Path, rows: int) -> int:
    """Write ``rows`` rows to ``path``; returns the file's size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    primary = fits.PrimaryHDU()
    primary.header.set("EXTEND", True, after="NAXIS")
    primary.header["ORIGIN"] = "firstlight bench"
    primary.add_checksum()
    header = _table_header(rows)
    header.set("CHECKSUM", "0" * 16)
    header.set("DATASUM", "0")
    datasum = OnesComplementSum()
    with path.open("wb") as fh:
        fh.write(primary.header.tostring().encode("ascii"))
        table_start = fh.tell()
        fh.write(header.tostring().encode("ascii"))
        for start in range(0, rows, CHUNK_ROWS):
            data = records(start, min(start + CHUNK_ROWS, rows)).tobytes()
            datasum.add(data)
            fh.write(data)
        fh.write(b"\0" * (-(rows * RECORD.itemsize) % _BLOCK))
        header["DATASUM"] = str(datasum.total())
        header["CHECKSUM"] = header_checksum(header, datasum.total())
        fh.seek(table_start)
        fh.write(header.tostring().encode("ascii"))
    return path.stat().st_size


def _table_header(rows: int) -> fits.Header:
    template = fits.BinTableHDU.from_columns(
        [
            fits.Column(name=name, format=tform, unit=unit, array=np.zeros(0, dtype))
            for name, tform, dtype, _, unit, _ in COLUMNS
        ],
        name=TABLE_NAME.upper(),
    )
    header = template.header.copy()
    header["NAXIS2"] = rows
    for i, (*_, ucd) in enumerate(COLUMNS, start=1):
        if ucd:
            anchor = f"TUNIT{i}" if f"TUNIT{i}" in header else f"TFORM{i}"
            header.set(f"TUCD{i}", ucd, after=anchor)
    return header
