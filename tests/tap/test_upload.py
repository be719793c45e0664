"""TAP_UPLOAD: a user's table, queried as TAP_UPLOAD.name and crossmatched with a catalogue,
through pyvo (sync and async) and STILTS ``tapquery``; limits and bad references refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvo
from astropy.io.votable import from_table, writeto
from astropy.table import Table

from firstlight.domain.sky import angular_separation_deg
from firstlight.query.service.params import ParameterError
from firstlight.query.service.upload import UploadLimits, read_uploads
from tests.tap.conftest import Service
from tests.tap.taplint import stilts

RADIUS_DEG = 2 / 3600  # 2 arcsec
CROSSMATCH = (
    "SELECT u.my_id, s.source_id FROM TAP_UPLOAD.mine AS u JOIN demo.sources AS s "
    f"ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, {RADIUS_DEG}))"
)


@pytest.fixture(scope="module")
def tap(service: Service) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(service.tap)


@pytest.fixture(scope="module")
def catalogue(tap: pyvo.dal.TAPService) -> Table:
    return tap.search("SELECT source_id, ra, dec FROM demo.sources", maxrec=100_000).to_table()


@pytest.fixture(scope="module")
def mine(catalogue: Table) -> Table:
    """40 positions: 30 within 1 arcsec of a catalogue source, 10 far from any."""
    rng = np.random.default_rng(14)
    picked = rng.choice(len(catalogue), 30, replace=False)
    ra = np.asarray(catalogue["ra"][picked], dtype=np.float64) + rng.uniform(-1, 1, 30) / 3600
    dec = np.asarray(catalogue["dec"][picked], dtype=np.float64) + rng.uniform(-1, 1, 30) / 3600
    far_ra, far_dec = rng.uniform(0, 10, 10), rng.uniform(-60, -50, 10)
    return Table(
        {
            "my_id": np.arange(40, dtype=np.int32),
            "ra": np.concatenate([ra, far_ra]),
            "dec": np.concatenate([dec, far_dec]),
            "label": [f"p{i}" for i in range(40)],
        }
    )


def expected_pairs(mine: Table, catalogue: Table) -> set[tuple[int, int]]:
    """The crossmatch computed with numpy: every pair within the radius."""
    pairs: set[tuple[int, int]] = set()
    cat_ra = np.asarray(catalogue["ra"], dtype=np.float64)
    cat_dec = np.asarray(catalogue["dec"], dtype=np.float64)
    for row in mine:
        sep = angular_separation_deg(float(row["ra"]), float(row["dec"]), cat_ra, cat_dec)
        for i in np.flatnonzero(sep <= RADIUS_DEG):
            pairs.add((int(row["my_id"]), int(catalogue["source_id"][i])))
    return pairs


def pairs_of(table: Table) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in zip(table["my_id"], table["source_id"], strict=True)}


def test_pyvo_sync_crossmatch_equals_numpy(
    tap: pyvo.dal.TAPService, mine: Table, catalogue: Table
) -> None:
    got = tap.search(CROSSMATCH, uploads={"mine": mine}).to_table()

    expected = expected_pairs(mine, catalogue)
    assert len(expected) >= 30
    assert pairs_of(got) == expected


def test_pyvo_async_crossmatch_equals_numpy(
    tap: pyvo.dal.TAPService, mine: Table, catalogue: Table
) -> None:
    got = tap.run_async(CROSSMATCH, uploads={"mine": mine}).to_table()

    assert pairs_of(got) == expected_pairs(mine, catalogue)


def test_uploaded_values_come_back_unchanged(tap: pyvo.dal.TAPService, mine: Table) -> None:
    got = tap.search(
        "SELECT my_id, ra, dec, label FROM TAP_UPLOAD.mine ORDER BY my_id", uploads={"mine": mine}
    ).to_table()

    assert list(got["my_id"]) == list(mine["my_id"])
    assert np.array_equal(np.asarray(got["ra"]), np.asarray(mine["ra"]))  # bit for bit
    assert list(got["label"]) == list(mine["label"])


def test_the_upload_is_gone_after_its_query(tap: pyvo.dal.TAPService, mine: Table) -> None:
    tap.search("SELECT COUNT(*) FROM TAP_UPLOAD.mine", uploads={"mine": mine})

    with pytest.raises(pyvo.dal.DALQueryError, match="mine"):
        tap.search("SELECT COUNT(*) FROM TAP_UPLOAD.mine")


def test_stilts_tapquery_uploads_a_table(
    service: Service, tmp_path: Path, mine: Table, catalogue: Table
) -> None:
    source = tmp_path / "mine.vot"
    writeto(from_table(mine), str(source))
    out = tmp_path / "out.vot"
    proc = subprocess.run(
        [
            stilts(), "tapquery", f"tapurl={service.tap}", f"adql={CROSSMATCH}",
            "nupload=1", f"upload1={source}", "ufmt1=votable", "upname1=mine",
            "upvotformat=BINARY2", f"out={out}", "ofmt=votable",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert pairs_of(Table.read(out, format="votable")) == expected_pairs(mine, catalogue)


def test_an_upload_reference_to_a_url_is_refused(service: Service) -> None:
    response = httpx.post(
        f"{service.tap}/sync",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT * FROM TAP_UPLOAD.t",
            "UPLOAD": "t,http://127.0.0.1:1/t.xml",
        },
    )

    assert response.status_code == 400
    assert "only inline tables (param:part)" in response.text


def test_a_missing_part_is_named(service: Service) -> None:
    response = httpx.post(
        f"{service.tap}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:nope"},
    )

    assert "has no part named 'nope'" in response.text


def test_a_file_that_is_not_a_votable_is_refused(service: Service) -> None:
    response = httpx.post(
        f"{service.tap}/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
        files={"t": ("t.xml", b"ra,dec\n1,2\n", "text/csv")},
    )

    assert response.status_code == 400
    assert "UPLOAD t: not a VOTable" in response.text


def _votable_bytes(table: Table, tmp_path: Path) -> bytes:
    path = tmp_path / "t.vot"
    writeto(from_table(table), str(path))
    return path.read_bytes()


def test_limits_refuse_too_many_rows_and_bytes(tmp_path: Path, mine: Table) -> None:
    data = _votable_bytes(mine, tmp_path)

    with pytest.raises(ParameterError, match="more than 39 rows"):
        read_uploads([("mine", "p")], {"p": data}, UploadLimits(max_bytes=10**6, max_rows=39))
    with pytest.raises(ParameterError, match="at most 100"):
        read_uploads([("mine", "p")], {"p": data}, UploadLimits(max_bytes=100, max_rows=10**6))
    (table,) = read_uploads([("mine", "p")], {"p": data}, UploadLimits(10**6, 40))
    assert len(table.rows) == 40
    assert [c.name for c in table.columns] == ["my_id", "ra", "dec", "label"]
