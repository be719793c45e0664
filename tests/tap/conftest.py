"""A running query service over an archive with one released delivery, for real clients.

The delivery (tests/deliveries.generated) holds images (public), a spectrum
and a light curve embargoed for a year, and a catalogue; a second mission
("dark") has all of its delivery, catalogue included, embargoed. The service runs
with uvicorn on a free loopback port in a thread; its clock can be moved
(``service.clock.shift``) to see the embargo lift without a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firstlight.config import Settings
from firstlight.domain.manifest import now_utc
from firstlight.producer.manifest_builder import build_manifest, write_manifest
from firstlight.producer.synth import synthesize_delivery
from firstlight.query.service.app import ServiceThread, create_app, server
from firstlight.services.context import close_contexts, context_for
from tests.deliveries import generated
from tests.steps import release

CATALOGUE_ROWS = 1500
DARK = "dark"  # a mission whose whole delivery is embargoed
EMBARGO_DAYS = 365


@dataclass
class MovableClock:
    """Now, plus however far a test moved it."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return now_utc() + self.offset

    def shift(self, delta: timedelta) -> None:
        self.offset = delta


@dataclass(frozen=True)
class Service:
    url: str
    tap: str
    settings: Settings
    clock: MovableClock
    manifest: dict[str, object]
    embargo_until: datetime

    def products(self, product_type: str) -> list[dict[str, object]]:
        files = self.manifest["files"]
        assert isinstance(files, list)
        return [f for f in files if f["product_type"] == product_type]


def dark_delivery(root: Path, until: datetime) -> Path:
    """Mission "dark": a catalogue and an image, all embargoed until ``until``."""
    path = synthesize_delivery(
        root, mission=DARK, delivery_id="dark-v1", catalogue_rows=300, images=1, spectra=0,
        timeseries=0, center_ra=40.0, center_dec=-30.0,
    )  # fmt: skip
    (path / "manifest.json").unlink()
    write_manifest(
        path,
        build_manifest(
            path, mission=DARK, delivery_id="dark-v1", release_name="dr1", release_version="1",
            producer="tests", release_date=until,
        ),
    )  # fmt: skip
    return path


def start_service(data_dir: Path, database_url: str | None = None) -> Iterator[Service]:
    settings = Settings(data_dir=data_dir, database_url=database_url, query_port=0)
    ctx = context_for(settings)
    embargo_until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=EMBARGO_DAYS)
    path = generated(data_dir / "deliveries", rows=CATALOGUE_ROWS, embargo_until=embargo_until)
    manifest = json.loads((path / "manifest.json").read_text())
    release(ctx, path)
    release(ctx, dark_delivery(data_dir / "deliveries", embargo_until))
    close_contexts()
    clock = MovableClock()
    app = create_app(settings, clock=clock)
    thread = ServiceThread(server(settings, host="127.0.0.1", port=0, app=app))
    thread.start()
    try:
        yield Service(thread.url, f"{thread.url}/tap", settings, clock, manifest, embargo_until)
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service over SQLite (the embedded default)."""
    yield from start_service(tmp_path_factory.mktemp("tap") / "var")


@pytest.fixture
def clock(service: Service) -> Iterator[MovableClock]:
    """The service's clock, put back after the test."""
    yield service.clock
    service.clock.shift(timedelta())
