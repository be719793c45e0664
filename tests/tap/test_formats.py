"""Every output format carries the delivered values bit for bit: BINARY2 (the default),
TABLEDATA, CSV and JSON, against the catalogue's FITS file read with numpy."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table

from tests.tap.conftest import CATALOGUE_ROWS, Service

QUERY = "SELECT * FROM demo.sources ORDER BY source_id"


@pytest.fixture(scope="module")
def delivered(service: Service) -> np.ndarray:
    """The catalogue as delivered, sorted by source_id."""
    for path in sorted(Path(service.settings.data_dir).rglob("catalogue/sources.fits")):
        with fits.open(path) as hdul:
            data = np.array(hdul[1].data)
        if len(data) == CATALOGUE_ROWS:  # demo's, not the embargoed mission's
            return data[np.argsort(data["source_id"], kind="stable")]
    raise AssertionError("the delivered catalogue is not under the data directory")


def _get(service: Service, fmt: str) -> httpx.Response:
    response = httpx.get(
        f"{service.tap}/sync",
        params={"LANG": "ADQL", "QUERY": QUERY, "MAXREC": "100000", "RESPONSEFORMAT": fmt},
        timeout=120,
    )
    assert response.status_code == 200, response.text[:500]
    return response


def _columns_from_votable(body: bytes) -> dict[str, np.ndarray]:
    table = parse_single_table(io.BytesIO(body)).to_table()
    return {name: np.asarray(table[name]) for name in table.colnames}


def _columns_from_text(fmt: str, body: str, like: np.ndarray) -> dict[str, np.ndarray]:
    """CSV and JSON carry decimal text: parsed to the delivered column's own dtype."""
    if fmt == "json":
        doc = json.loads(body)
        names = [m["name"] for m in doc["metadata"]]
        rows: list[list[Any]] = doc["data"]
    else:
        reader = csv.reader(io.StringIO(body))
        names, *rows = list(reader)
    out: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        dtype = like.dtype[name].newbyteorder("=")
        # float() then the column's own type: the shortest repr of a float32 round-trips.
        # NULL (an empty CSV cell, JSON null) is how both carry a NaN the file holds.
        values = [
            (math.nan if r[i] in ("", None) else float(r[i])) if dtype.kind == "f" else int(r[i])
            for r in rows
        ]
        out[name] = np.asarray(values, dtype=np.float64 if dtype.kind == "f" else dtype)
        out[name] = out[name].astype(dtype)
    return out


@pytest.mark.parametrize("fmt", ["votable", "votable/td", "csv", "json"])
def test_values_are_bit_identical_to_the_delivered_file(
    service: Service, delivered: np.ndarray, fmt: str
) -> None:
    response = _get(service, fmt)
    if fmt.startswith("votable"):
        got = _columns_from_votable(response.content)
    else:
        got = _columns_from_text(fmt, response.text, delivered)

    assert len(got["source_id"]) == CATALOGUE_ROWS
    for name in delivered.dtype.names or ():
        want = delivered[name].astype(delivered.dtype[name].newbyteorder("="))
        have = got[name.lower()]
        assert have.dtype == want.dtype, f"{fmt} {name}: {have.dtype} vs {want.dtype}"
        # Bits, not values: -0.0, NaN payloads and the last ulp all count.
        assert have.tobytes() == want.tobytes(), f"{fmt}: column {name} differs"


def test_binary2_is_the_default_and_smaller(service: Service) -> None:
    plain = httpx.get(
        f"{service.tap}/sync", params={"LANG": "ADQL", "QUERY": QUERY, "MAXREC": "100000"}
    )
    tabledata = _get(service, "votable/td")

    assert "<BINARY2>" in plain.text
    assert "<TABLEDATA>" in tabledata.text
    assert len(plain.content) < 0.6 * len(tabledata.content)
