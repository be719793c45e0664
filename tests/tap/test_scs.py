"""Simple Cone Search 1.03 per catalogue, through pyvo's SCSService."""

from __future__ import annotations

import httpx
import pytest
import pyvo

from tests.tap.conftest import CATALOGUE_ROWS, Service


def test_pyvo_cone_search_returns_nearest_rows_with_scs_ucds(service: Service) -> None:
    scs = pyvo.dal.SCSService(f"{service.url}/scs/demo/sources")

    result = scs.search(pos=(150.0, 2.0), radius=0.2)

    table = result.to_table()
    assert 0 < len(table) < CATALOGUE_ROWS
    ucds = {f.ucd: f.name for f in result.fielddescs}
    assert {"ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"} <= set(ucds)
    assert (ucds["POS_EQ_RA_MAIN"], ucds["POS_EQ_DEC_MAIN"]) == ("ra", "dec")


def test_verbosity_picks_the_columns(service: Service) -> None:
    scs = pyvo.dal.SCSService(f"{service.url}/scs/demo/sources")

    small = scs.search(pos=(150.0, 2.0), radius=0.1, verbosity=1)
    full = scs.search(pos=(150.0, 2.0), radius=0.1, verbosity=3)

    assert [f.ucd for f in small.fielddescs] == ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"]
    assert "distance" in full.fieldnames and len(full.fieldnames) > 4
    assert len(small) == len(full)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("RA=150&DEC=2", "SR is missing"),
        ("RA=150&DEC=95&SR=0.1", "DEC=95.0 is outside"),
        ("RA=400&DEC=2&SR=0.1", "RA=400.0 is outside"),
        ("RA=x&DEC=2&SR=0.1", "RA='x' is not a number"),
        ("RA=150&DEC=2&SR=0.1&VERB=7", "VERB='7'"),
    ],
)
def test_bad_requests_get_an_scs_error(service: Service, query: str, says: str) -> None:
    response = httpx.get(f"{service.url}/scs/demo/sources?{query}")

    assert response.status_code == 200
    assert '<INFO ID="Error" name="Error"' in response.text
    assert says in response.text


def test_unknown_catalogue_is_an_error_not_a_crash(service: Service) -> None:
    scs = pyvo.dal.SCSService(f"{service.url}/scs/demo/nosuch")

    with pytest.raises(pyvo.dal.DALQueryError, match="has no table 'nosuch'"):
        scs.search(pos=(150.0, 2.0), radius=0.1)


def test_observation_cone_finds_public_products_only(service: Service) -> None:
    scs = pyvo.dal.SCSService(f"{service.url}/scs/demo/obscore")

    table = scs.search(pos=(150.0, 2.0), radius=3).to_table()

    assert set(table["dataproduct_type"]) == {"image"}  # spectra, light curves: embargoed
    assert all(str(u).startswith(f"{service.url}/files/") for u in table["access_url"])
