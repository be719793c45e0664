"""The public store in S3 (a real moto server on loopback): write-once puts checked for
fixity, presigned downloads, and a release served through the query service, whose
``/files`` URLs redirect to S3 while embargoed products stay "not found"."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from firstlight.config import Settings
from firstlight.query.service.app import ServiceThread, create_app, server
from firstlight.services.context import close_contexts, context_for
from firstlight.storage.objectstore import FixityError, ImmutableObjectError
from firstlight.storage.s3_store import S3ObjectStore
from tests.deliveries import generated
from tests.s3 import client
from tests.steps import release
from tests.tap.conftest import EMBARGO_DAYS, MovableClock

MULTIPART_BYTES = 9 * 1024 * 1024  # above boto3's 8 MiB multipart threshold


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dummy credentials and no real AWS config, for the whole module (the service's too)."""
    home = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(home / "no-aws-config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "no-aws-credentials"))
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        yield


def _new_bucket(endpoint: str) -> str:
    name = f"firstlight-pub-{uuid.uuid4().hex[:12]}"
    client("s3", endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(s3_endpoint: str, aws_env: None, tmp_path: Path) -> S3ObjectStore:
    settings = Settings(
        data_dir=tmp_path / "var",
        public_s3_bucket=_new_bucket(s3_endpoint),
        public_s3_prefix="/public/",
        s3_endpoint_url=s3_endpoint,
    )
    return S3ObjectStore.from_settings(settings)


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_put_then_presigned_download_matches_the_sha256(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    data = b"SIMPLE  = T" + bytes(range(256)) * 40
    key = "demo/dr1/1/images/a.fits"

    stored = store.put_file(_file(tmp_path, "a.fits", data), key, _sha256(data))

    assert (stored.key, stored.size, stored.sha256) == (key, len(data), _sha256(data))
    assert stored.url == f"s3://{store.bucket}/public/{key}"
    assert store.exists(key) and not store.exists("demo/dr1/1/images/b.fits")
    assert store.local_path(key) is None
    response = httpx.get(store.presigned_url(key, 60, "application/fits"))
    assert response.status_code == 200
    assert _sha256(response.content) == _sha256(data)
    assert response.headers["content-type"] == "application/fits"


def test_same_content_again_is_a_no_op_other_content_is_refused(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    first, other = b"first version", b"another version"
    key = "demo/dr1/1/x.csv"
    store.put_file(_file(tmp_path, "1", first), key, _sha256(first))

    again = store.put_file(_file(tmp_path, "2", first), key, _sha256(first))
    with pytest.raises(ImmutableObjectError, match=r"x\.csv"):
        store.put_file(_file(tmp_path, "3", other), key, _sha256(other))

    assert again.sha256 == _sha256(first)
    assert _sha256(httpx.get(store.presigned_url(key, 60)).content) == _sha256(first)


def test_an_object_written_without_a_checksum_is_hashed_by_reading_it_back(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    data, other = b"uploaded by hand, no checksum", b"something else"
    key = "demo/dr1/1/hand.csv"
    store.client.put_object(Bucket=store.bucket, Key=f"public/{key}", Body=data)

    store.put_file(_file(tmp_path, "same", data), key, _sha256(data))
    with pytest.raises(ImmutableObjectError):
        store.put_file(_file(tmp_path, "other", other), key, _sha256(other))


def test_a_wrong_sha256_is_a_fixity_error_and_leaves_nothing(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    data = b"the bytes"
    key = "demo/dr1/1/bad.fits"

    with pytest.raises(FixityError, match=r"bad\.fits"):
        store.put_file(_file(tmp_path, "bad", data), key, _sha256(b"other bytes"))

    assert not store.exists(key)


def test_a_multipart_upload_is_checked_on_the_whole_object(
    store: S3ObjectStore, tmp_path: Path
) -> None:
    data = bytes(range(256)) * (MULTIPART_BYTES // 256)
    source = _file(tmp_path, "big", data)

    stored = store.put_file(source, "demo/dr1/1/big.fits", _sha256(data))
    with pytest.raises(FixityError):
        store.put_file(source, "demo/dr1/1/big2.fits", _sha256(b"not it"))

    assert stored.size == len(data)
    assert not store.exists("demo/dr1/1/big2.fits")


def test_unsafe_keys_are_refused(store: S3ObjectStore, tmp_path: Path) -> None:
    source = _file(tmp_path, "x", b"x")
    for key in ("../escape", "/abs/key", ""):
        with pytest.raises(ValueError):
            store.put_file(source, key, _sha256(b"x"))


# --- a release into the S3 public store, served by the query service ----------------------


@dataclass(frozen=True)
class S3Service:
    url: str
    settings: Settings
    clock: MovableClock
    manifest: dict[str, Any]

    def product(self, product_type: str) -> dict[str, Any]:
        return next(f for f in self.manifest["files"] if f["product_type"] == product_type)


@pytest.fixture(scope="module")
def s3_service(
    s3_endpoint: str, aws_env: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Service]:
    data_dir = tmp_path_factory.mktemp("s3-public") / "var"
    settings = Settings(
        data_dir=data_dir,
        query_port=0,
        public_s3_bucket=_new_bucket(s3_endpoint),
        public_s3_prefix="released",
        s3_endpoint_url=s3_endpoint,
    )
    embargo_until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=EMBARGO_DAYS)
    path = generated(data_dir / "deliveries", rows=200, embargo_until=embargo_until)
    release(context_for(settings), path)
    close_contexts()
    clock = MovableClock()
    thread = ServiceThread(
        server(settings, host="127.0.0.1", port=0, app=create_app(settings, clock=clock))
    )
    thread.start()
    try:
        yield S3Service(
            thread.url, settings, clock, json.loads((path / "manifest.json").read_text())
        )
    finally:
        thread.stop()


def _key(path: object) -> str:
    return f"demo/dr1/1/{path}"


def test_released_files_are_in_the_bucket_not_the_public_folder(s3_service: S3Service) -> None:
    image = s3_service.product("image")
    settings = s3_service.settings
    s3 = client("s3", str(settings.s3_endpoint_url))

    head = s3.head_object(Bucket=settings.public_s3_bucket, Key=f"released/{_key(image['path'])}")

    assert head["ContentLength"] == image["size"]
    assert not any(p.is_file() for p in settings.public_dir.rglob("*"))


def test_files_redirects_to_a_presigned_url_whose_bytes_match_the_manifest(
    s3_service: S3Service,
) -> None:
    image = s3_service.product("image")

    answer = httpx.get(f"{s3_service.url}/files/{_key(image['path'])}")
    followed = httpx.get(f"{s3_service.url}/files/{_key(image['path'])}", follow_redirects=True)

    assert answer.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(str(s3_service.settings.s3_endpoint_url))
    assert "Signature" in location
    assert followed.status_code == 200
    assert _sha256(followed.content) == image["sha256"]
    assert followed.headers["content-type"] == "application/fits"


def test_obscore_access_url_names_the_service_not_the_bucket(s3_service: S3Service) -> None:
    image = s3_service.product("image")
    query = (
        "SELECT access_url FROM ivoa.obscore "
        f"WHERE access_url LIKE '%{image['path']}'"  # the archive holds the s3:// URL
    )

    response = httpx.get(
        f"{s3_service.url}/tap/sync", params={"LANG": "ADQL", "QUERY": query, "FORMAT": "json"}
    )

    assert response.status_code == 200
    [[url]] = response.json()["data"]
    assert url == f"{s3_service.url}/files/{_key(image['path'])}"
    body = httpx.get(url, follow_redirects=True).content
    assert _sha256(body) == image["sha256"]


def test_embargoed_product_is_a_404_like_a_missing_one(s3_service: S3Service) -> None:
    spectrum = s3_service.product("spectrum")

    embargoed = httpx.get(f"{s3_service.url}/files/{_key(spectrum['path'])}")
    missing = httpx.get(f"{s3_service.url}/files/{_key('spectra/nosuch.fits')}")

    assert (embargoed.status_code, embargoed.text) == (missing.status_code, missing.text)
    assert embargoed.status_code == 404


def test_after_its_date_an_embargoed_file_is_served_from_the_embargo_store(
    s3_service: S3Service,
) -> None:
    spectrum = s3_service.product("spectrum")
    s3_service.clock.shift(timedelta(days=EMBARGO_DAYS + 1))
    try:
        answer = httpx.get(f"{s3_service.url}/files/{_key(spectrum['path'])}")
    finally:
        s3_service.clock.shift(timedelta())

    assert answer.status_code == 200  # not yet copied to S3: the service sends it itself
    assert _sha256(answer.content) == spectrum["sha256"]
