"""The S3 inbox against a real S3 and SQS (a moto server over HTTP on loopback)."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from firstlight.checks.verify import read_manifest, verify_files
from firstlight.config import Settings
from firstlight.domain.findings import DeliveryRejected
from firstlight.domain.manifest import MANIFEST_NAME, manifest_sha256
from firstlight.events.arrival import CollectingSink
from firstlight.events.s3_inbox import S3Inbox, configure_notifications, held_name
from firstlight.services.context import Context
from firstlight.services.verification import admit_delivery, verify_delivery
from tests.deliveries import generated, tree_digest
from tests.s3 import client

PREFIX = "incoming/"


@dataclass
class Bucket:
    endpoint: str
    name: str
    s3: Any
    sqs: Any


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated delivery, read-only, shared by the module's tests."""
    return generated(tmp_path_factory.mktemp("s3-delivery") / "d", rows=200)


@pytest.fixture
def bucket(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket on the moto server, with dummy credentials and no real AWS config."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    name = f"firstlight-{uuid.uuid4().hex[:16]}"
    s3 = client("s3", s3_endpoint)
    s3.create_bucket(Bucket=name)
    return Bucket(s3_endpoint, name, s3, client("sqs", s3_endpoint))


def upload(
    bucket: Bucket,
    prefix: str,
    folder: Path,
    *,
    skip: tuple[str, ...] = (),
    manifest: bool = True,
    data: bool = True,
) -> None:
    """Upload as a producer does: the data files, then manifest.json last."""
    if data:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and rel != MANIFEST_NAME and rel not in skip:
                bucket.s3.upload_file(str(path), bucket.name, prefix + rel)
    if manifest:
        bucket.s3.upload_file(str(folder / MANIFEST_NAME), bucket.name, prefix + MANIFEST_NAME)


def make_inbox(
    settings: Settings, bucket: Bucket, sink: CollectingSink, *, queue: bool, **kwargs: Any
) -> S3Inbox:
    queue_url = None
    if queue:
        queue_url = configure_notifications(
            bucket.s3, bucket.sqs, bucket.name, f"q-{uuid.uuid4().hex[:12]}"
        )
    return S3Inbox(
        s3=bucket.s3,
        bucket=bucket.name,
        prefix=PREFIX,
        staging_dir=settings.s3_staging_dir,
        inbox_dir=settings.inbox_dir,
        sink=sink,
        sqs=bucket.sqs if queue else None,
        queue_url=queue_url,
        **kwargs,
    )


def poll_until(inbox: S3Inbox, sink: CollectingSink, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.arrivals) < count and time.monotonic() < deadline:
        inbox.poll_once()
    assert len(sink.arrivals) == count


def queue_is_empty(inbox: S3Inbox) -> bool:
    assert inbox.sqs is not None
    attributes = inbox.sqs.get_queue_attributes(
        QueueUrl=inbox.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return set(attributes.values()) == {"0"}


def uploaded_at(bucket: Bucket, prefix: str) -> dict[str, datetime]:
    """Each object's LastModified, as S3 lists it."""
    listed = bucket.s3.list_objects_v2(Bucket=bucket.name, Prefix=prefix)["Contents"]
    return {item["Key"]: item["LastModified"] for item in listed}


def staging_is_empty(settings: Settings) -> bool:
    return not any(settings.s3_staging_dir.iterdir())


# --- with SQS ------------------------------------------------------------------------------


def test_queue_announces_a_delivery_under_a_url_encoded_prefix(
    settings: Settings, bucket: Bucket, delivery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_url = configure_notifications(
        bucket.s3, bucket.sqs, bucket.name, f"q-{uuid.uuid4().hex[:12]}"
    )
    monkeypatch.setenv("FIRSTLIGHT_S3_BUCKET", bucket.name)
    monkeypatch.setenv("FIRSTLIGHT_S3_PREFIX", PREFIX)
    monkeypatch.setenv("FIRSTLIGHT_S3_ENDPOINT_URL", bucket.endpoint)
    monkeypatch.setenv("FIRSTLIGHT_S3_QUEUE_URL", queue_url)
    sink = CollectingSink()
    inbox = S3Inbox.from_settings(Settings(), sink)  # SQS endpoint: the queue URL's host
    prefix = PREFIX + "gaia dr4+x/"
    upload(bucket, prefix, delivery)

    poll_until(inbox, sink, 1)

    (arrival,) = sink.arrivals
    sha = manifest_sha256((delivery / MANIFEST_NAME).read_bytes())
    folder = Path(arrival.location)
    assert folder == (settings.inbox_dir / "s3" / f"gaia_dr4_x-{sha[:12]}").absolute()
    assert tree_digest(folder) == tree_digest(delivery)
    assert (arrival.mission, arrival.delivery_id) == ("demo", "demo-v1")
    assert arrival.manifest_sha256 == sha
    assert arrival.source == f"s3://{bucket.name}/{prefix}"
    assert inbox.poll_once() == 0
    assert queue_is_empty(inbox)
    assert staging_is_empty(settings)


def test_queue_waits_for_data_uploaded_after_the_manifest(
    settings: Settings, bucket: Bucket, delivery: Path
) -> None:
    sink = CollectingSink()
    inbox = make_inbox(settings, bucket, sink, queue=True, recheck_seconds=1)
    upload(bucket, PREFIX + "d1/", delivery, data=False)

    for _ in range(3):
        assert inbox.poll_once() == 0
    assert not queue_is_empty(inbox)  # kept for a later look, not deleted

    time.sleep(1.1)  # S3 times have (at best) millisecond steps: make "later" unmistakable
    upload(bucket, PREFIX + "d1/", delivery, manifest=False)
    poll_until(inbox, sink, 1)

    assert tree_digest(Path(sink.arrivals[0].location)) == tree_digest(delivery)
    # Time-to-data starts with the last byte's upload: the data that came after the manifest.
    times = uploaded_at(bucket, PREFIX + "d1/")
    assert sink.arrivals[0].landed_at == max(times.values())
    assert max(times.values()) > times[PREFIX + "d1/" + MANIFEST_NAME]
    assert inbox.poll_once() == 0
    assert queue_is_empty(inbox)


def test_queue_announces_an_incomplete_delivery_once_settled(
    settings: Settings, bucket: Bucket, delivery: Path
) -> None:
    sink = CollectingSink()
    inbox = make_inbox(settings, bucket, sink, queue=True, settle_seconds=3, recheck_seconds=1)
    missing = "images/demo_field02_r.fits"
    upload(bucket, PREFIX + "d1/", delivery, skip=(missing,))

    assert inbox.poll_once() == 0
    poll_until(inbox, sink, 1)

    folder = Path(sink.arrivals[0].location)
    assert not (folder / missing).exists()
    manifest, _ = read_manifest(folder)
    findings = verify_files(folder, manifest).findings
    assert [(f.check, f.file) for f in findings] == [("verify.missing_file", missing)]
    assert queue_is_empty(inbox)


# --- listing the bucket --------------------------------------------------------------------


def test_listing_announces_once_across_polls_and_restarts(
    settings: Settings, bucket: Bucket, delivery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRSTLIGHT_S3_BUCKET", bucket.name)
    monkeypatch.setenv("FIRSTLIGHT_S3_PREFIX", PREFIX)
    monkeypatch.setenv("FIRSTLIGHT_S3_ENDPOINT_URL", bucket.endpoint)
    configured = Settings()
    sink = CollectingSink()
    upload(bucket, PREFIX + "d1/", delivery)
    for marker in ("d1/", "d1/images/"):  # folder markers, as S3 consoles make them
        bucket.s3.put_object(Bucket=bucket.name, Key=PREFIX + marker, Body=b"")

    assert S3Inbox.from_settings(configured, sink).poll_once() == 1
    inbox = S3Inbox.from_settings(configured, sink)
    assert inbox.poll_once() == 0
    assert inbox.poll_once() == 0

    folder = Path(sink.arrivals[0].location)
    assert tree_digest(folder) == tree_digest(delivery)
    assert verify_files(folder, read_manifest(folder)[0]).ok
    # Time-to-data starts at the manifest's upload (written last; markers carry nothing).
    times = uploaded_at(bucket, PREFIX + "d1/")
    assert sink.arrivals[0].landed_at == times[PREFIX + "d1/" + MANIFEST_NAME]
    assert (
        sink.arrivals[0].payload()["landed_at"] == times[PREFIX + "d1/" + MANIFEST_NAME].isoformat()
    )
    cursor = configured.state_dir / f"s3-inbox-{bucket.name}.json"
    assert json.loads(cursor.read_text()).keys() == {PREFIX + "d1/" + MANIFEST_NAME}


def test_listing_announces_a_rewritten_manifest_again(
    settings: Settings, bucket: Bucket, delivery: Path, tmp_path: Path
) -> None:
    sink = CollectingSink()
    inbox = make_inbox(settings, bucket, sink, queue=False, cursor_path=tmp_path / "cursor.json")
    upload(bucket, PREFIX + "d1/", delivery)
    assert inbox.poll_once() == 1

    manifest, _ = read_manifest(delivery)
    rewritten = manifest.model_copy(update={"producer": "corrected"}).to_json().encode()
    key = PREFIX + "d1/" + MANIFEST_NAME
    bucket.s3.put_object(Bucket=bucket.name, Key=key, Body=rewritten)

    assert inbox.poll_once() == 1
    assert inbox.poll_once() == 0
    first, second = sink.arrivals
    assert second.manifest_sha256 == manifest_sha256(rewritten) != first.manifest_sha256
    assert first.location != second.location
    assert (Path(second.location) / MANIFEST_NAME).read_bytes() == rewritten
    assert Path(first.location).is_dir()  # the first fetch is left for its own run


def test_listing_downloads_objects_the_manifest_does_not_list(
    settings: Settings, bucket: Bucket, delivery: Path
) -> None:
    sink = CollectingSink()
    inbox = make_inbox(settings, bucket, sink, queue=False)
    upload(bucket, PREFIX + "d1/", delivery, manifest=False)
    bucket.s3.put_object(Bucket=bucket.name, Key=PREFIX + "d1/notes/readme.txt", Body=b"hi\n")
    upload(bucket, PREFIX + "d1/", delivery, data=False)

    assert inbox.poll_once() == 1

    folder = Path(sink.arrivals[0].location)
    assert (folder / "notes" / "readme.txt").read_bytes() == b"hi\n"
    findings = verify_files(folder, read_manifest(folder)[0]).findings
    assert [(f.check, f.file) for f in findings] == [("verify.extra_file", "notes/readme.txt")]


UNSAFE = ("../evil.fits", "sub/../../../up.fits", "a\\b.fits", "/abs.fits", ".hidden", "..")
# Both safe, but S3 may hold a file "clash" and a file "clash/inner.fits"; a disk cannot.
CLASH = ("clash", "clash/inner.fits")


def test_unsafe_keys_stay_inside_the_delivery_and_reject_it_by_name(
    settings: Settings, ctx: Context, bucket: Bucket, delivery: Path
) -> None:
    sink = CollectingSink()
    inbox = make_inbox(settings, bucket, sink, queue=False)
    upload(bucket, PREFIX + "d1/", delivery, manifest=False)
    for i, rel in enumerate(UNSAFE + CLASH):
        bucket.s3.put_object(Bucket=bucket.name, Key=PREFIX + "d1/" + rel, Body=b"x" * i)
    upload(bucket, PREFIX + "d1/", delivery, data=False)

    assert inbox.poll_once() == 1

    folder = Path(sink.arrivals[0].location)
    written = {p for p in settings.data_dir.rglob("*") if p.is_file()}
    outside = {p for p in written if not p.is_relative_to(folder)}
    # Only the ledger's SQLite files (archive.db, -wal, -shm): nothing of the delivery.
    assert all(p.parent == settings.data_dir and p.name.startswith("archive.db") for p in outside)
    held = [*UNSAFE, CLASH[1]]
    for rel in held:
        assert (folder / held_name(rel)).read_bytes() == b"x" * (UNSAFE + CLASH).index(rel)
    assert (folder / CLASH[0]).is_file()
    assert held_name("../evil.fits") == "UNSAFE-KEY=..%2Fevil.fits"
    assert staging_is_empty(settings)

    ticket = admit_delivery(ctx, folder)
    with pytest.raises(DeliveryRejected) as rejected:
        verify_delivery(ctx, ticket)
    named = {f.file for f in rejected.value.report.findings if f.check == "verify.extra_file"}
    assert named == {CLASH[0]} | {held_name(rel) for rel in held}


# --- the long-running loop -----------------------------------------------------------------


def test_run_survives_errors_and_stops_when_told(
    settings: Settings, bucket: Bucket, delivery: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = CollectingSink()
    later = Bucket(bucket.endpoint, f"firstlight-{uuid.uuid4().hex[:16]}", bucket.s3, bucket.sqs)
    inbox = make_inbox(settings, later, sink, queue=False)
    stop = threading.Event()
    thread = threading.Thread(target=inbox.run, args=(stop, 0.05))
    with caplog.at_level(logging.ERROR, logger="firstlight.events.s3_inbox"):
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while not caplog.records and time.monotonic() < deadline:
                time.sleep(0.05)  # the bucket does not exist yet: polls fail
            bucket.s3.create_bucket(Bucket=later.name)
            upload(later, PREFIX + "d1/", delivery)
            while not sink.arrivals and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert not thread.is_alive()
    assert "poll failed" in caplog.records[0].getMessage()
    assert len(sink.arrivals) == 1
