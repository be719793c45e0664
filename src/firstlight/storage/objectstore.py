"""Object stores: where released files live, behind one small Protocol.

Keys are POSIX paths such as ``gaia/dr4/1/images/a.fits``. Stores are
write-once: putting a key that exists with other content is an error, putting
identical content again is a no-op (so a rerun of promotion is safe). Every
put is verified by sha256 after the copy (fixity). The public store is this
folder or an S3 bucket (``storage/s3_store.py``, chosen by ``public_store_for``);
the embargo store is always a local folder: it is private by design.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from firstlight.config import Settings
from firstlight.domain.manifest import check_relative_path
from firstlight.errors import ConflictError, ExternalError
from firstlight.formats.digest import sha256_file


class FixityError(ExternalError):
    """A stored object's sha256 is not what was expected."""


class ImmutableObjectError(ConflictError):
    """A key exists already with different content."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    url: str


class ObjectStore(Protocol):
    def put_file(self, source: Path, key: str, sha256: str) -> StoredObject: ...

    def exists(self, key: str) -> bool: ...

    def url(self, key: str) -> str: ...

    def local_path(self, key: str) -> Path | None: ...

    def download_url(self, key: str, content_type: str | None = None) -> str | None:
        """A URL clients may fetch ``key`` from directly (S3: presigned); None: serve it."""
        ...

    @property
    def url_prefix(self) -> str:
        """How ``url(key)`` starts, for every key."""
        ...

    def delete(self, key: str) -> None: ...


def public_store_for(settings: Settings) -> ObjectStore:
    """The public store: the S3 bucket of ``public_s3_bucket`` when set, else ``public_dir``."""
    if settings.public_s3_bucket:
        from firstlight.storage.s3_store import S3ObjectStore

        return S3ObjectStore.from_settings(settings)
    return LocalObjectStore(settings.public_dir)


class LocalObjectStore:
    """A folder as an object store: files read-only once written."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        check_relative_path(key)
        return self.root.joinpath(*PurePosixPath(key).parts)

    def put_file(self, source: Path, key: str, sha256: str) -> StoredObject:
        target = self._path(key)
        if target.exists():
            if sha256_file(target) != sha256:
                raise ImmutableObjectError(f"{key} exists in {self.root} with other content")
            return self._stored(key, target, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(source, tmp)
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            actual = sha256_file(tmp)
            if actual != sha256:
                raise FixityError(f"{key}: sha256 after copy is {actual}, expected {sha256}")
            tmp.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return self._stored(key, target, sha256)

    def _stored(self, key: str, path: Path, sha256: str) -> StoredObject:
        return StoredObject(key=key, size=path.stat().st_size, sha256=sha256, url=self.url(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def download_url(self, key: str, content_type: str | None = None) -> str | None:
        return None

    @property
    def url_prefix(self) -> str:
        return self.root.as_uri() + "/"

    def delete(self, key: str) -> None:
        """Remove an object (only the embargo store does this, once it is public)."""
        self._path(key).unlink(missing_ok=True)
