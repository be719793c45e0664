"""DataLink links and file downloads: public products download and match their manifest,
embargoed ones are "not found" exactly like products that do not exist."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from urllib.parse import quote

import httpx
from astropy.io.votable import parse
from pyvo.dal.adhoc import DatalinkRecord, DatalinkResults

from tests.tap.conftest import EMBARGO_DAYS, MovableClock, Service


def _did(service: Service, path: object) -> str:
    return f"ivo://firstlight/demo?demo_dr1_v1/{path}"


def _links(service: Service, did: str) -> DatalinkResults:
    return DatalinkResults.from_result_url(f"{service.url}/datalink/links?ID={quote(did)}")


def _this(links: DatalinkResults) -> DatalinkRecord:
    """The #this link (pyvo's bysemantics would fetch the vocabulary from the internet)."""
    return next(r for r in links if r.semantics == "#this")


def test_public_product_links_to_its_file_whose_sha256_matches_the_manifest(
    service: Service,
) -> None:
    image = service.products("image")[0]

    links = _links(service, _did(service, image["path"]))

    this = _this(links)
    assert this.error_message is None or str(this.error_message) in ("", "--")
    assert this.content_type == "application/fits"
    assert int(this.content_length) == image["size"]
    body = httpx.get(this.access_url).content
    assert hashlib.sha256(body).hexdigest() == image["sha256"]


def test_embargoed_and_missing_products_get_the_same_answer(service: Service) -> None:
    spectrum = service.products("spectrum")[0]
    embargoed = _links(service, _did(service, spectrum["path"]))
    missing = _links(service, _did(service, "spectra/nosuch.fits"))

    said = [str(r[0]["error_message"]) for r in (embargoed, missing)]
    assert [str(r[0]["access_url"]) for r in (embargoed, missing)] == ["", ""]
    assert said[0] == f"NotFoundFault: {_did(service, spectrum['path'])} not found"
    assert said[1] == f"NotFoundFault: {_did(service, 'spectra/nosuch.fits')} not found"


def test_embargoed_file_url_is_a_404_like_a_missing_one(service: Service) -> None:
    spectrum = service.products("spectrum")[0]
    key = f"demo/dr1/1/{spectrum['path']}"

    embargoed = httpx.get(f"{service.url}/files/{key}")
    missing = httpx.get(f"{service.url}/files/demo/dr1/1/spectra/nosuch.fits")

    assert (embargoed.status_code, embargoed.text) == (missing.status_code, missing.text)
    assert embargoed.status_code == 404


def test_embargoed_product_appears_after_its_date_without_a_rebuild(
    service: Service, clock: MovableClock
) -> None:
    spectrum = service.products("spectrum")[0]
    clock.shift(timedelta(days=EMBARGO_DAYS + 1))

    this = _this(_links(service, _did(service, spectrum["path"])))

    body = httpx.get(this.access_url).content
    assert hashlib.sha256(body).hexdigest() == spectrum["sha256"]


def test_unsafe_file_keys_are_not_found(service: Service) -> None:
    for key in ("../archive.db", "demo/../../archive.db", "%2e%2e/archive.db"):
        assert httpx.get(f"{service.url}/files/{key}").status_code == 404


def test_datalink_answers_several_ids_at_once(service: Service) -> None:
    images = [_did(service, f["path"]) for f in service.products("image")]
    response = httpx.post(f"{service.url}/datalink/links", data={"ID": images})
    links = DatalinkResults(parse(io.BytesIO(response.content)))
    assert response.headers["content-type"].startswith("application/x-votable+xml;content=datalink")
    assert sorted(str(r["ID"]) for r in links) == sorted(images)
