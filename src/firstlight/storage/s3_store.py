"""An S3 bucket as the public object store, and the one way the project makes S3 clients.

Belongs here: ``S3ObjectStore`` (the ``ObjectStore`` Protocol over boto3, plus
presigned download URLs) and ``s3_client``, which the S3 inbox uses too, so
endpoint, region, retries and timeouts are set in one place.

Keys map to ``<prefix><key>`` in the bucket. As in the local store, objects are
write-once: a key holding other content is an ``ImmutableObjectError``, the same
content again is a no-op. Fixity is checked against what the bucket holds after
the upload: the server's ``ChecksumSHA256`` of a single-part object when it returns one
(uploads ask for it), else the object read back and hashed (streamed). A
mismatch deletes the object and raises ``FixityError``.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from firstlight.config import Settings
from firstlight.domain.manifest import check_relative_path
from firstlight.storage.objectstore import FixityError, ImmutableObjectError, StoredObject

_CHUNK = 1024 * 1024


def aws_client(service: str, region: str, endpoint_url: str | None) -> Any:
    """A boto3 client (credentials from boto3's usual chain: environment, profile, role)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=60)
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, config=config)


def s3_client(settings: Settings) -> Any:
    """The S3 client of ``FIRSTLIGHT_S3_ENDPOINT_URL`` / ``FIRSTLIGHT_S3_REGION``."""
    return aws_client("s3", settings.s3_region, settings.s3_endpoint_url)


def _missing(exc: Exception) -> bool:
    """A botocore ClientError saying the object (or bucket) is not there."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3ObjectStore:
    """A bucket (under a key prefix) as a write-once object store."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", presign_seconds: int = 3600):
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.presign_seconds = presign_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        if not settings.public_s3_bucket:
            raise ValueError("no S3 public store: FIRSTLIGHT_PUBLIC_S3_BUCKET is not set")
        return cls(
            s3_client(settings),
            settings.public_s3_bucket,
            settings.public_s3_prefix,
            settings.presign_seconds,
        )

    @property
    def url_prefix(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        check_relative_path(key)
        return self.prefix + key

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            )
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head

    def _stored_sha256(self, key: str, head: dict[str, Any]) -> str:
        """The sha256 of the bytes the bucket holds at ``key``."""
        checksum = head.get("ChecksumSHA256")
        # A multipart object's checksum may be of its parts, not of the object (and some
        # servers, moto among them, say so in neither the checksum nor ChecksumType): the
        # server's checksum is trusted only for a single-part object (ETag without "-N").
        single = "-" not in str(head.get("ETag", "")) and "-" not in str(checksum)
        full = head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
        if isinstance(checksum, str) and single and full:
            return base64.b64decode(checksum).hex()
        digest = hashlib.sha256()
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            for block in body.iter_chunks(_CHUNK):
                digest.update(block)
        finally:
            body.close()
        return digest.hexdigest()

    def put_file(self, source: Path, key: str, sha256: str) -> StoredObject:
        head = self._head(key)
        if head is not None:
            if self._stored_sha256(key, head) != sha256:
                raise ImmutableObjectError(f"{key} exists in {self.url_prefix} with other content")
            return StoredObject(key, int(head["ContentLength"]), sha256, self.url(key))
        self.client.upload_file(
            str(source), self.bucket, self._key(key), ExtraArgs={"ChecksumAlgorithm": "SHA256"}
        )
        head = self._head(key)
        if head is None:
            raise FixityError(f"{key}: not in {self.url_prefix} after upload")
        actual = self._stored_sha256(key, head)
        if actual != sha256:
            self.delete(key)
            raise FixityError(f"{key}: sha256 after upload is {actual}, expected {sha256}")
        return StoredObject(key, int(head["ContentLength"]), sha256, self.url(key))

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def url(self, key: str) -> str:
        check_relative_path(key)
        return self.url_prefix + key

    def local_path(self, key: str) -> Path | None:
        return None

    def download_url(self, key: str, content_type: str | None = None) -> str | None:
        """A presigned URL for ``key`` when it is in the bucket, else None."""
        if not self.exists(key):
            return None
        return self.presigned_url(key, self.presign_seconds, content_type)

    def presigned_url(self, key: str, expires_seconds: int, content_type: str | None = None) -> str:
        """A GET URL valid ``expires_seconds``; ``content_type``: the type S3 answers with."""
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_seconds
        )
        return url

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
