"""Fixtures of the fault-injection suite: an archive on SQLite and on PostgreSQL whose
claims lapse within a second (a rerun takes over a dead run's delivery without waiting), and
the producer's originals kept aside so quarantine can be compared byte for byte."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from firstlight.config import Settings
from firstlight.services.context import Context, close_contexts, context_for


@pytest.fixture
def fault_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FIRSTLIGHT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("FIRSTLIGHT_INGEST_CHUNK_ROWS", "700")
    monkeypatch.setenv("FIRSTLIGHT_CLAIM_LEASE_SECONDS", "1")
    return Settings()


@pytest.fixture
def lite(fault_settings: Settings) -> Iterator[Context]:
    yield context_for(fault_settings)
    close_contexts()


@pytest.fixture
def pg(pg_url: str, fault_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    monkeypatch.setenv("FIRSTLIGHT_DATABASE_URL", pg_url)
    yield context_for(Settings())
    close_contexts()


@pytest.fixture(params=["sqlite", "postgresql"])
def archive(request: pytest.FixtureRequest) -> Context:
    """Both backends (the PostgreSQL one is marked `postgres` by its fixture)."""
    name = "lite" if request.param == "sqlite" else "pg"
    ctx: Context = request.getfixturevalue(name)
    return ctx


def drop_in_inbox(ctx: Context, original: Path) -> Path:
    """A copy of the producer's delivery in the inbox (the original stays for comparisons)."""
    inbox = ctx.settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / original.name
    shutil.copytree(original, target, symlinks=True)
    return target
