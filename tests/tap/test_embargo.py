"""Embargo never leaks, through any door: TAP rows and counts, TAP_SCHEMA, VOSI tables,
cone search, DataLink and file URLs; and everything appears after its date, no rebuild."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
import pyvo

from tests.tap.conftest import DARK, EMBARGO_DAYS, MovableClock, Service

DARK_DID = "ivo://firstlight/dark?dark_dr1_v1/images/dark_field01_g.fits"
DARK_FILE = "dark/dr1/1/images/dark_field01_g.fits"


def _doors(service: Service) -> dict[str, object]:
    """What each door says about mission "dark" right now."""
    tap = pyvo.dal.TAPService(service.tap)

    def one(query: str) -> object:
        try:
            return [tuple(r) for r in tap.search(query).to_table()]
        except pyvo.dal.DALQueryError as exc:
            return f"error: {exc}"

    links = httpx.get(f"{service.url}/datalink/links?ID={quote(DARK_DID)}").text
    cone = httpx.get(f"{service.url}/scs/{DARK}/sources?RA=40&DEC=-30&SR=1").text
    return {
        "rows": one(f"SELECT COUNT(*) FROM {DARK}.sources"),
        "obscore": one(f"SELECT COUNT(*) FROM ivoa.obscore WHERE obs_collection = '{DARK}'"),
        "tap_schema": one(
            f"SELECT COUNT(*) FROM tap_schema.tables WHERE schema_name LIKE '{DARK}%'"
        ),
        "vosi": f"{DARK}.sources" in httpx.get(f"{service.tap}/tables").text,
        "datalink": "not found" not in links and "/files/" in links,
        "scs": 'name="Error"' not in cone,
        "file": httpx.get(f"{service.url}/files/{DARK_FILE}").status_code,
    }


def test_embargoed_delivery_is_invisible_everywhere(service: Service) -> None:
    doors = _doors(service)

    assert isinstance(doors["rows"], str) and "dark" in doors["rows"]
    assert doors["obscore"] == [(0,)]
    assert doors["tap_schema"] == [(0,)]
    assert (doors["vosi"], doors["datalink"], doors["scs"], doors["file"]) == (
        False, False, False, 404,
    )  # fmt: skip


def test_embargoed_delivery_is_visible_after_its_date(
    service: Service, clock: MovableClock
) -> None:
    clock.shift(timedelta(days=EMBARGO_DAYS + 1))

    doors = _doors(service)

    assert doors["rows"] == [(300,)]
    assert doors["obscore"] == [(1,)]
    assert doors["tap_schema"] != [(0,)]
    assert (doors["vosi"], doors["datalink"], doors["scs"], doors["file"]) == (
        True, True, True, 200,
    )  # fmt: skip


def test_error_messages_do_not_tell_embargoed_from_missing(service: Service) -> None:
    tap = pyvo.dal.TAPService(service.tap)
    said = []
    for table in (f"{DARK}.sources", "dawn.sources"):  # same length: same column in the message
        with pytest.raises(pyvo.dal.DALQueryError) as caught:
            tap.search(f"SELECT * FROM {table}")
        said.append(str(caught.value).replace(table, "T"))

    assert said[0] == said[1]
