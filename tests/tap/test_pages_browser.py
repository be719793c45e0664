"""The pages in a real browser (Debian's chromium, headless, driven by Playwright): what a
person sees, that every link answers, that nothing is fetched from another host and the
console stays clean; a screenshot of each page is kept (tests/browser.py says where)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.browser import artifacts_dir, browser
from tests.tap.conftest import Service

DEMO = "demo_dr1_v1"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


class Visit:
    """One page load, with every request it made and every console error it met."""

    def __init__(self, chromium: Any, service: Service, path: str, name: str) -> None:
        self.service = service
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        self.page = context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.response = self.page.goto(service.url + path, wait_until="networkidle")
        self.page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).inner_text())

    def links(self) -> list[str]:
        hrefs = self.page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        return [str(h) for h in hrefs]

    def assert_clean(self) -> None:
        assert self.response is not None and self.response.status == 200
        own = urlsplit(self.service.url).netloc
        assert [u for u in self.requests if urlsplit(u).netloc != own] == []
        assert self.errors == []

    def assert_links_work(self) -> None:
        own = urlsplit(self.service.url).netloc
        for href in dict.fromkeys(self.links()):
            assert urlsplit(href).netloc == own, href  # every link stays on the service
            got = httpx.get(urljoin(self.service.url, href), timeout=120)
            assert got.status_code == 200, href


def _image_shows_something(visit: Visit, selector: str) -> np.ndarray:
    loaded = visit.page.eval_on_selector(
        selector, "img => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0"
    )
    assert loaded, f"{selector} did not load"
    shot = Image.open(io.BytesIO(visit.page.locator(selector).screenshot())).convert("RGB")
    pixels = np.asarray(shot).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20, f"{selector} is blank"
    return pixels


def test_home_page_lists_the_release_and_its_links_work(chromium: Any, service: Service) -> None:
    visit = Visit(chromium, service, "/", "home")

    visit.assert_clean()
    assert "demo" in visit.text("#missions") and "dr1 v1" in visit.text("#missions")
    assert f"{service.url}/tap" in visit.text("#snippet-pyvo")
    visit.assert_links_work()


def test_release_page_shows_coverage_tables_files(chromium: Any, service: Service) -> None:
    visit = Visit(chromium, service, f"/releases/{DEMO}", "release")

    visit.assert_clean()
    assert visit.text("#release-title").startswith("demo dr1 v1")
    assert "demo.sources" in visit.text("#table-sources")
    pixels = _image_shows_something(visit, "#coverage")
    # The coverage is drawn in blue (#1565c0) on the pale sky.
    assert (np.abs(pixels.astype(int) - [21, 101, 192]).sum(axis=1) < 60).any()
    files = visit.page.locator("#files a.download")
    assert files.count() == 3  # the catalogue and two images; the rest is embargoed
    assert visit.page.locator("#embargo tbody tr").count() == 1  # one date, counts only
    visit.assert_links_work()


def test_mission_page(chromium: Any, service: Service) -> None:
    visit = Visit(chromium, service, "/missions/demo", "mission")

    visit.assert_clean()
    assert "dr1 v1" in visit.text("#releases")
    visit.assert_links_work()


def test_operations_page_draws_time_to_data(chromium: Any, service: Service) -> None:
    visit = Visit(chromium, service, "/operations", "operations")

    visit.assert_clean()
    _image_shows_something(visit, "#ttd-plot")
    assert visit.page.locator("#weeks tbody tr").count() == 1
    visit.assert_links_work()


def test_data_docs_render_offline_from_the_service(chromium: Any, service: Service) -> None:
    """Great Expectations' pages load Bootstrap and jQuery from CDNs; served here they load
    nothing from another host and still draw their tables (issue 13)."""
    from firstlight.services.context import context_for

    [entry] = context_for(service.settings).archive.ledger.entries("demo")
    assert entry.data_docs is not None
    visit = Visit(
        chromium, service, f"/operations/data-docs/{entry.delivery_pk}/index.html", "data-docs"
    )

    visit.assert_clean()  # every request to the service's 127.0.0.1 port, no console error
    results = visit.page.locator(".ge-index-page-validation-results-table tbody tr")
    assert results.count() == 2  # the catalogue's suite and the observations', drawn offline
    assert "demo.catalogue" in visit.text(".ge-index-page-validation-results-table")
    # Styled by the stylesheet the site holds (Bootstrap's alert grey), not unstyled HTML.
    grey = visit.page.eval_on_selector(
        ".alert-secondary", "e => getComputedStyle(e).backgroundColor"
    )
    assert grey == "rgb(226, 227, 229)"
    # A row opens its validation page, which renders from the service alone as well.
    results.first.click()
    visit.page.wait_for_load_state("networkidle")
    assert "/validations/" in visit.page.url
    assert "Expectation Validation Result" in visit.text("body")
    visit.page.screenshot(path=str(artifacts_dir() / "data-docs-validation.png"), full_page=True)
    visit.assert_clean()
