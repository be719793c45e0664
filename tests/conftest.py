"""Shared fixtures: an isolated data directory per test, a Prefect harness per session,
a PostgreSQL database per test cloned from a per-session template (tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firstlight.config import Settings
from firstlight.services.context import Context, close_contexts, context_for
from tests.postgres import (
    database_from_template,
    drop_stale_databases,
    pg_server_url,
    pg_unreachable_reason,
    skip_or_fail,
    template_database,
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a fresh data directory, also exported for flows and the CLI."""
    data_dir = tmp_path / "var"
    monkeypatch.setenv("FIRSTLIGHT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FIRSTLIGHT_INGEST_CHUNK_ROWS", "700")  # several chunks even when small
    return Settings()


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    yield context_for(settings)
    close_contexts()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A Prefect test harness (temporary database and API), started once a session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=600):  # a loaded machine is slow, not broken
        yield


# --- PostgreSQL (tests/postgres.py): skips without a server, fails under CI=true -------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgres: needs the PostgreSQL test server (make pg-setup; FIRSTLIGHT_TEST_PG_URL)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a PostgreSQL fixture, so `-m "not postgres"` leaves them out."""
    for item in items:
        if {"pg_url", "pg_template"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """Name of a template database with q3c and pg_sphere, made once a session, dropped after."""
    admin_url = pg_server_url()
    reason = pg_unreachable_reason(admin_url)
    if reason is not None:
        skip_or_fail(reason)
    drop_stale_databases(admin_url)
    with template_database(admin_url) as name:
        yield name


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://...) of a fresh database cloned from the template."""
    with database_from_template(pg_server_url(), pg_template) as url:
        yield url


# --- S3 and SQS (tests/s3.py): a moto server on loopback, once a session -------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of a moto server (S3, SQS) on 127.0.0.1; never skipped."""
    from tests.s3 import moto_server

    with moto_server() as url:
        yield url
