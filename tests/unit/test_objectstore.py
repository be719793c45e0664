"""The local object store: write-once, fixity checked, safe keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from firstlight.storage.objectstore import FixityError, ImmutableObjectError, LocalObjectStore


def _file(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_put_then_put_again_is_a_no_op(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "public")
    src, sha = _file(tmp_path, "a.fits", b"x" * 100)
    first = store.put_file(src, "m/dr1/1/a.fits", sha)
    again = store.put_file(src, "m/dr1/1/a.fits", sha)
    assert first == again and first.size == 100
    assert store.exists("m/dr1/1/a.fits")
    assert first.url.startswith("file://") and first.url.endswith("/m/dr1/1/a.fits")


def test_other_content_under_an_existing_key_is_refused(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "public")
    a, sha_a = _file(tmp_path, "a", b"one")
    b, sha_b = _file(tmp_path, "b", b"two")
    store.put_file(a, "k/a", sha_a)
    with pytest.raises(ImmutableObjectError, match="k/a exists"):
        store.put_file(b, "k/a", sha_b)
    assert (tmp_path / "public" / "k" / "a").read_bytes() == b"one"


def test_fixity_failure_leaves_nothing(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "public")
    src, _ = _file(tmp_path, "a", b"bytes")
    with pytest.raises(FixityError, match="sha256 after copy"):
        store.put_file(src, "k/a", "0" * 64)
    assert not store.exists("k/a")
    assert list((tmp_path / "public" / "k").iterdir()) == []


def test_unsafe_keys_are_refused(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "public")
    src, sha = _file(tmp_path, "a", b"x")
    with pytest.raises(ValueError, match="leaves"):
        store.put_file(src, "../escape", sha)
