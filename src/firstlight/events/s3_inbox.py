"""The S3 inbox: deliveries uploaded to a bucket become local folders and arrivals.

Belongs here: noticing a delivery's ``manifest.json`` in S3 (from the bucket's
event notifications on SQS, or by listing the bucket), deciding whether the
delivery is complete enough to announce, downloading it into the local inbox,
and announcing it to an ``ArrivalSink``. Nothing here judges the delivery's
content: verification and validation do, on the local folder.

A delivery in S3 is a key prefix (``incoming/gaia-dr4-0001/``) holding data
objects and ``manifest.json``, written last. Objects stay in the bucket; the
archive only reads it.

**Two ways to notice.** With a queue (``sqs`` and ``queue_url``), each poll
receives S3 event notifications (keys arrive URL-encoded: they are decoded with
``unquote_plus``); a message is deleted only once its manifests are handled
(announced now, or found announced before). Without a queue, each poll lists
the bucket under ``prefix`` for ``manifest.json`` keys. Both keep a cursor:
manifest key -> ETag of the manifest announced, in a JSON file at
``cursor_path`` (replaced atomically), so a restart does not announce again
while a rewritten manifest (new ETag) is announced again. Duplicates are still
possible (a crash between announcing and saving the cursor); the ledger
settles them, as for every source.

**Complete or settled.** A delivery whose manifest lists files that are missing
from the bucket, or of another size, is looked at again ``recheck_seconds``
later (its message made visible again then, or its key skipped by listings
until then) until it is complete, or until ``settle_seconds`` have passed since
the manifest's LastModified; then what is there is downloaded and announced,
and verification names what is missing. A
manifest that does not parse is announced at once: nothing to wait for, and
verification says why it is wrong. A redelivery (say the missing files, after a
rejection) needs a new manifest: the same bytes are the same delivery.

**Fetching.** Every object under the delivery's prefix is downloaded, listed or
not (verification must see extra files), streamed to disk into a fresh folder
under ``staging_dir``, which is then renamed to ``inbox_dir/s3/<name>``:
``<name>`` is the prefix's last segment made safe plus the first 12 hex digits
of the manifest's sha256, so a rewritten manifest makes a new folder and the
inbox never shows half a delivery. ``staging_dir`` and ``inbox_dir`` must be on
one file system (the default ``Settings.s3_staging_dir`` is inside the inbox).
A folder that exists already (same manifest, fetched before) is not downloaded
again. Zero-byte keys ending in ``/`` (the prefix itself too) are folder markers
made by S3 consoles and carry nothing: they are skipped.

**Unsafe keys.** A key whose path inside the delivery fails
``check_relative_path`` (``..``, absolute, backslashes, hidden or odd names), or
that cannot be a file beside its siblings (``a`` and ``a/b`` both objects), is
never written under its own name. Its bytes are kept, inside the delivery
folder, under a *held* name: ``UNSAFE-KEY=`` plus the path percent-encoded
(every ``/`` included, so it is one file name, written nowhere but the
delivery's root), e.g. ``UNSAFE-KEY=..%2Fevil.fits``. A manifest can never list
such a name (``=`` and ``%`` are not allowed in manifest paths), so
verification always rejects the delivery with a ``verify.extra_file`` finding
whose file names the key; the quarantine keeps its bytes. Nothing is written
outside staging, and the file is not silently lost.

**Operators** with SQS run ``configure_notifications`` once per bucket (it
replaces the bucket's notification configuration) and set
``FIRSTLIGHT_S3_QUEUE_URL`` to the URL it returns; ``S3Inbox.from_settings``
then builds the clients (credentials from boto3's usual chain: environment,
profile, instance role). A delivery that fails to be handled (network, full
disk) is logged and tried again ``recheck_seconds`` later; ``run`` never dies
of an error. The queue is the inbox's own:
messages about other buckets or keys outside ``prefix`` are deleted unread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

from firstlight.config import Settings
from firstlight.domain.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    check_relative_path,
    parse_manifest,
    raw_identity,
)
from firstlight.events.arrival import Arrival, ArrivalSink

log = logging.getLogger(__name__)

HELD_KEY_PREFIX = "UNSAFE-KEY="
S3_SUBDIR = "s3"
# A manifest larger than this is not parsed (it is still downloaded and announced,
# as an unparseable one): parsing reads it whole into memory.
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_MAX_FILE_NAME = 200  # below NAME_MAX (255 bytes), leaving room for a hash
_CHUNK = 1024 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class _Outcome(Enum):
    ANNOUNCED = "announced"
    DONE = "done"  # announced before, or nothing left to announce
    PENDING = "pending"  # incomplete and not yet settled: look again later


@dataclass(frozen=True)
class _Object:
    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True)
class _FetchedManifest:
    key: str
    etag: str
    last_modified: datetime
    sha256: str
    size: int


class S3Inbox:
    """Announces deliveries uploaded to ``s3://bucket/prefix`` as local inbox folders."""

    def __init__(
        self,
        *,
        s3: Any,
        bucket: str,
        prefix: str,
        staging_dir: Path,
        inbox_dir: Path,
        sink: ArrivalSink,
        sqs: Any | None = None,
        queue_url: str | None = None,
        cursor_path: Path | None = None,
        settle_seconds: float = 600,
        recheck_seconds: int = 5,
    ) -> None:
        if (sqs is None) != (queue_url is None):
            raise ValueError("give both sqs and queue_url, or neither (list the bucket)")
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.sink = sink
        self.sqs = sqs
        self.queue_url = queue_url
        self.settle = timedelta(seconds=settle_seconds)
        self.recheck_seconds = max(1, int(recheck_seconds))
        self.staging_dir = staging_dir
        self.target_dir = inbox_dir / S3_SUBDIR
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.target_dir.mkdir(parents=True, exist_ok=True)
        # The move into the inbox must be one rename: across file systems it would be a copy
        # that the local watcher could see half done.
        if self.staging_dir.stat().st_dev != self.target_dir.stat().st_dev:
            raise ValueError(f"{staging_dir} and {inbox_dir} must be on one file system")
        self._cursor = _Cursor(cursor_path)
        self._recheck_at: dict[str, float] = {}  # listing: manifest key -> monotonic time

    @classmethod
    def from_settings(cls, settings: Settings, sink: ArrivalSink) -> S3Inbox:
        """The inbox of ``FIRSTLIGHT_S3_*``; credentials come from boto3's usual chain."""
        from firstlight.storage.s3_store import aws_client, s3_client

        if not settings.s3_bucket:
            raise ValueError("no S3 inbox: FIRSTLIGHT_S3_BUCKET is not set")
        s3 = s3_client(settings)
        sqs = None
        if settings.s3_queue_url:
            sqs = aws_client("sqs", settings.s3_region, _queue_endpoint(settings.s3_queue_url))
        return cls(
            s3=s3,
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            staging_dir=settings.s3_staging_dir,
            inbox_dir=settings.inbox_dir,
            sink=sink,
            sqs=sqs,
            queue_url=settings.s3_queue_url,
            cursor_path=settings.state_dir / f"s3-inbox-{settings.s3_bucket}.json",
            settle_seconds=settings.inbox_settle_seconds,
        )

    # --- polling -------------------------------------------------------------------------

    def poll_once(self) -> int:
        """Handle what is new since the last poll; return how many deliveries were announced."""
        if self.sqs is not None:
            return self._poll_queue()
        return self._poll_listing()

    def run(self, stop: threading.Event, poll_seconds: float) -> None:
        """Poll until ``stop`` is set; an error is logged and the next poll tries again."""
        while not stop.is_set():
            try:
                self.poll_once()
            # A long-running watcher outlives network blips, expired tokens and a bucket
            # briefly gone: anything that goes wrong now may work on the next poll.
            except Exception:
                log.exception("S3 inbox s3://%s/%s: poll failed", self.bucket, self.prefix)
            stop.wait(poll_seconds)

    def _poll_listing(self) -> int:
        announced = 0
        now = time.monotonic()
        for obj in self._list(self.prefix):
            if not _is_manifest_key(obj.key) or self._cursor.holds(obj.key, obj.etag):
                continue
            # A pending delivery waits recheck_seconds, as its message would: polls may come
            # every second, and each look downloads the manifest again.
            if self._recheck_at.get(obj.key, now) > now:
                continue
            outcome = self._try_handle(obj.key, obj.etag)
            if outcome is _Outcome.PENDING:
                self._recheck_at[obj.key] = now + self.recheck_seconds
            else:
                self._recheck_at.pop(obj.key, None)
            if outcome is _Outcome.ANNOUNCED:
                announced += 1
        return announced

    def _poll_queue(self) -> int:
        assert self.sqs is not None
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        announced = 0
        for message in response.get("Messages", []):
            announced += self._handle_message(message)
        return announced

    def _handle_message(self, message: dict[str, Any]) -> int:
        assert self.sqs is not None
        outcomes = [
            self._try_handle(key, etag) for key, etag in self._manifest_events(message["Body"])
        ]
        if _Outcome.PENDING in outcomes:
            # Not deleted: it comes back after recheck_seconds. Records already announced
            # are then found in the cursor.
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=self.recheck_seconds,
            )
        else:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return outcomes.count(_Outcome.ANNOUNCED)

    def _manifest_events(self, body: str) -> Iterator[tuple[str, str | None]]:
        """(manifest key, ETag) of each object-created record about our manifests."""
        for record in _records(body):
            if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                continue
            s3 = record.get("s3", {})
            if s3.get("bucket", {}).get("name") != self.bucket:
                continue
            key = unquote_plus(str(s3.get("object", {}).get("key", "")))
            if _is_manifest_key(key) and key.startswith(self.prefix):
                etag = s3.get("object", {}).get("eTag")
                yield key, _etag(etag) if etag else None

    def _try_handle(self, manifest_key: str, etag: str | None) -> _Outcome:
        """Handle one delivery; a failure is logged and it is looked at again later."""
        try:
            return self._handle(manifest_key, etag)
        # One bad delivery (a vanished object, a full disk) must not hold up the others.
        except Exception:
            log.exception("S3 inbox: s3://%s/%s failed; will retry", self.bucket, manifest_key)
            return _Outcome.PENDING

    # --- one delivery --------------------------------------------------------------------

    def _handle(self, manifest_key: str, etag: str | None) -> _Outcome:
        if etag is not None and self._cursor.holds(manifest_key, etag):
            return _Outcome.DONE
        delivery_prefix = manifest_key.removesuffix(MANIFEST_NAME)
        staging = Path(tempfile.mkdtemp(prefix="delivery-", dir=self.staging_dir))
        try:
            return self._stage_and_announce(manifest_key, delivery_prefix, staging)
        finally:
            # Gone when renamed into the inbox; otherwise nothing in it is needed any more.
            shutil.rmtree(staging, ignore_errors=True)

    def _stage_and_announce(
        self, manifest_key: str, delivery_prefix: str, staging: Path
    ) -> _Outcome:
        fetched = self._fetch_manifest(manifest_key, staging / MANIFEST_NAME)
        if fetched is None:
            log.warning("S3 inbox: s3://%s/%s is gone; nothing to fetch", self.bucket, manifest_key)
            return _Outcome.DONE
        if self._cursor.holds(manifest_key, fetched.etag):
            return _Outcome.DONE
        manifest = _parse(staging / MANIFEST_NAME, fetched.size)
        listed = list(self._list(delivery_prefix))
        objects = [o for o in listed if o.key != manifest_key]
        if manifest is not None and not self._ready(manifest, delivery_prefix, objects, fetched):
            return _Outcome.PENDING
        target = self.target_dir / _folder_name(delivery_prefix, self.bucket, fetched.sha256)
        if not target.exists():
            self._download_all(delivery_prefix, objects, staging)
            _move_into_inbox(staging, target)
        # The last byte's landing: the manifest's upload, written last, unless a data
        # object came after it (a late file, a settled incomplete delivery). Listed
        # times have milliseconds; GetObject's (an HTTP date) only seconds.
        landed = max(
            [fetched.last_modified, *(o.last_modified for o in listed if not _is_marker(o))]
        )
        self._announce(manifest, fetched, delivery_prefix, target, landed)
        return _Outcome.ANNOUNCED

    def _ready(
        self,
        manifest: Manifest,
        delivery_prefix: str,
        objects: list[_Object],
        fetched: _FetchedManifest,
    ) -> bool:
        """Complete, or waited for long enough (verification will name what is missing)."""
        sizes = {o.key: o.size for o in objects}
        missing = [f.path for f in manifest.files if sizes.get(delivery_prefix + f.path) != f.size]
        if not missing:
            return True
        if datetime.now(UTC) - fetched.last_modified >= self.settle:
            log.warning(
                "S3 inbox: s3://%s/%s settled incomplete (%d files missing or short, e.g. %s)",
                self.bucket,
                delivery_prefix,
                len(missing),
                missing[0],
            )
            return True
        return False

    def _announce(
        self,
        manifest: Manifest | None,
        fetched: _FetchedManifest,
        delivery_prefix: str,
        target: Path,
        landed_at: datetime,
    ) -> None:
        if manifest is not None:
            mission, delivery_id = manifest.mission, manifest.delivery_id
        else:
            # The folder's name, as admission will see it (the same shared rule).
            mission, delivery_id = raw_identity(_head(target / MANIFEST_NAME), target.name)
        self.sink.emit(
            Arrival(
                mission=mission,
                delivery_id=delivery_id,
                location=str(target.absolute()),
                manifest_sha256=fetched.sha256,
                source=f"s3://{self.bucket}/{delivery_prefix}",
                landed_at=landed_at,
            )
        )
        # Only after the sink took it: a failed emit is retried on the next poll.
        self._cursor.remember(fetched.key, fetched.etag)

    # --- S3 ------------------------------------------------------------------------------

    def _list(self, prefix: str) -> Iterator[_Object]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield _Object(
                    key=str(item["Key"]),
                    size=int(item["Size"]),
                    etag=_etag(item["ETag"]),
                    last_modified=item["LastModified"],
                )

    def _fetch_manifest(self, key: str, path: Path) -> _FetchedManifest | None:
        """Stream the manifest to ``path``; its ETag and date come with the same bytes."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        digest = hashlib.sha256()
        size = 0
        with path.open("xb") as out:
            for chunk in response["Body"].iter_chunks(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return _FetchedManifest(
            key=key,
            etag=_etag(response["ETag"]),
            last_modified=response["LastModified"],
            sha256=digest.hexdigest(),
            size=size,
        )

    def _download_all(self, delivery_prefix: str, objects: list[_Object], staging: Path) -> None:
        for obj in objects:
            if _is_marker(obj):
                continue  # a console's folder marker: no data
            rel = obj.key[len(delivery_prefix) :]
            path = _safe_path(staging, rel)
            if path is not None and self._download_to(obj.key, path):
                continue
            held = staging / held_name(rel)
            log.warning(
                "S3 inbox: key %r cannot be a file under its own name; kept as %s, "
                "so verification rejects the delivery",
                obj.key,
                held.name,
            )
            self._download_to(obj.key, held)

    def _download_to(self, key: str, path: Path) -> bool:
        """Stream one object to a new file; False when the path is taken by a sibling."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # "x": never overwrite, and never follow a link (staging holds none, but cheap).
            with path.open("xb") as out:
                self.s3.download_fileobj(self.bucket, key, out)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            return False
        return True


class _Cursor:
    """Manifest key -> ETag of the manifest announced; in memory without a path."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.etags: dict[str, str] = self._load()

    def holds(self, key: str, etag: str) -> bool:
        return self.etags.get(key) == etag

    def remember(self, key: str, etag: str) -> None:
        self.etags[key] = etag
        if self.path is not None:
            _write_atomically(self.path, json.dumps(self.etags, indent=1, sort_keys=True))

    def _load(self) -> dict[str, str]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            # Starting over only repeats announcements, which the ledger settles.
            log.warning("S3 inbox cursor %s unreadable (%s): starting afresh", self.path, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items()}


def configure_notifications(s3: Any, sqs: Any, bucket: str, queue_name: str) -> str:
    """Make ``queue_name``, let ``bucket`` send to it, and notify it of new manifests.

    Replaces the bucket's notification configuration. Returns the queue URL, for
    ``FIRSTLIGHT_S3_QUEUE_URL``.
    """
    queue_url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = str(attributes["Attributes"]["QueueArn"])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:*:*:{bucket}"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "suffix", "Value": MANIFEST_NAME}]}
                    },
                }
            ]
        },
    )
    return queue_url


def held_name(rel: str) -> str:
    """The one-segment name under which an unsafe key's bytes are kept in the delivery."""
    name = HELD_KEY_PREFIX + quote(rel, safe="")
    if len(name) <= _MAX_FILE_NAME:
        return name
    # Too long for a file name: a prefix of it stays readable, the hash keeps it unique.
    return name[: _MAX_FILE_NAME - 13] + "~" + hashlib.sha256(rel.encode()).hexdigest()[:12]


def _safe_path(root: Path, rel: str) -> Path | None:
    """Where ``rel`` goes under ``root``, or None when it is not a safe relative path."""
    if rel != MANIFEST_NAME:  # check_relative_path refuses the manifest's own name
        try:
            check_relative_path(rel)
        except ValueError:
            return None
    path = root.joinpath(*PurePosixPath(rel).parts)
    return path if path.is_relative_to(root) else None


def _is_marker(obj: _Object) -> bool:
    """A zero-byte key ending in ``/`` (the prefix too): an S3 console's folder marker."""
    return obj.key.endswith("/") and obj.size == 0


def _is_manifest_key(key: str) -> bool:
    return key == MANIFEST_NAME or key.endswith("/" + MANIFEST_NAME)


def _etag(value: str) -> str:
    """ETags come quoted from listings and bare in event records."""
    return value.strip('"')


def _records(body: str) -> list[dict[str, Any]]:
    """The S3 event records in a message (direct, or wrapped by SNS); none for test events."""
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "Records" not in data and "Message" in data:
            data = json.loads(data["Message"])
    except (TypeError, ValueError, RecursionError):  # a poison message is dropped, not fatal
        log.warning("S3 inbox: ignoring a message that is not JSON: %.200s", body)
        return []
    records = data.get("Records") if isinstance(data, dict) else None
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _parse(path: Path, size: int) -> Manifest | None:
    if size > MAX_MANIFEST_BYTES:
        return None
    try:
        return parse_manifest(path.read_bytes(), source=MANIFEST_NAME)
    except ManifestError:
        return None


def _last_segment(delivery_prefix: str) -> str:
    return delivery_prefix.rstrip("/").rsplit("/", 1)[-1]


def _folder_name(delivery_prefix: str, bucket: str, sha256: str) -> str:
    base = _SAFE_NAME.sub("_", _last_segment(delivery_prefix) or bucket).strip("._-")
    return f"{base[:100] or 'delivery'}-{sha256[:12]}"


def _move_into_inbox(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError:
        # Another poller renamed the same delivery first: theirs is the same bytes.
        if not target.is_dir():
            raise


def _queue_endpoint(queue_url: str) -> str | None:
    """SQS endpoint of a queue URL: boto3's own for AWS, the URL's host for others (moto)."""
    parts = urlsplit(queue_url)
    if parts.hostname is None or parts.hostname.endswith(".amazonaws.com"):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as tmp:
        tmp.write(text)
        tmp.flush()
        # On disk before the rename: a crash must leave the old cursor or the new, whole.
        os.fsync(tmp.fileno())
    Path(tmp.name).replace(path)


def _head(manifest_path: Path) -> bytes:
    """The manifest's bytes for identity, or none when unreadable or absurdly large."""
    try:
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            return b""
        return manifest_path.read_bytes()
    except OSError:
        return b""
