"""Shared fixtures: an isolated data directory per test, a Prefect harness per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firstlight.config import Settings
from firstlight.services.context import Context, close_contexts, context_for


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

    with prefect_test_harness(server_startup_timeout=60):
        yield
