"""Build a delivery's manifest from its folder, and write it so no one sees half of it.

This is the producer's side of the delivery format: walk the folder, hash and
classify every file, describe every catalogue's table. Anything that cannot be
described raises ``ManifestError`` naming the file; nothing here guesses past an
error, because the manifest is a promise the archive will hold the producer to.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from firstlight.domain.manifest import (
    MANIFEST_NAME,
    FileFormat,
    Manifest,
    ManifestError,
    ManifestFile,
    ObservationFields,
    ProductType,
    ReleaseRef,
    TableDefinition,
    check_relative_path,
    format_validation_error,
    now_utc,
)
from firstlight.formats.detect import FormatError, detect_format, detect_product_type
from firstlight.formats.digest import sha256_file
from firstlight.formats.tables import table_definition_from_file

_IDENTIFIER_LENGTH = 32


def build_manifest(
    delivery_dir: Path,
    *,
    mission: str,
    delivery_id: str,
    release_name: str,
    release_version: str,
    producer: str,
    release_date: datetime | None = None,
    release_dates: Mapping[str, datetime] | None = None,
    observation: ObservationFields | None = None,
    observations: Mapping[str, ObservationFields] | None = None,
    created: datetime | None = None,
) -> Manifest:
    """Describe every file of ``delivery_dir`` (except ``manifest.json``).

    ``release_dates`` maps relative paths to their own embargo end and
    overrides ``release_date`` for those files. ``observation`` is given to
    every image, spectrum and time series; ``observations`` maps relative paths
    to their own fields, which win field by field.
    """
    root = delivery_dir.resolve()
    paths = list(list_delivery_files(root))
    dates = dict(release_dates or {})
    per_file = dict(observations or {})
    for option, named in (("release_dates", dates), ("observations", per_file)):
        unknown = sorted(set(named) - set(paths))
        if unknown:
            raise ManifestError(f"{option} names files not in the delivery: {unknown}")
    table_names: set[str] = set()
    files = []
    for rel in paths:
        entry = describe_file(root, rel, dates.get(rel, release_date), table_names)
        if rel in per_file and not entry.product_type.is_observation:
            raise ManifestError(f"{rel}: a {entry.product_type} product has no observation fields")
        fields = per_file[rel].merged_over(observation) if rel in per_file else observation
        files.append(_with_observation(entry, fields))
    if not files:
        raise ManifestError(f"{delivery_dir}: the delivery holds no data files")
    try:
        return Manifest(
            mission=mission,
            delivery_id=delivery_id,
            release=ReleaseRef(name=release_name, version=release_version),
            producer=producer,
            created=created or now_utc(),
            files=files,
        )
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, str(delivery_dir))) from exc


_OBSERVATIONS = TypeAdapter(dict[str, ObservationFields])


def observation_fields(source: str, **values: Any) -> ObservationFields:
    """Observation fields given as options (``source`` names them in the error)."""
    try:
        return ObservationFields(**values)
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, source)) from exc


def read_observations_file(path: Path) -> dict[str, ObservationFields]:
    """A producer's per-file observation fields: ``{relative path: {field: value}}``."""
    try:
        return _OBSERVATIONS.validate_json(path.read_bytes())
    except OSError as exc:
        raise ManifestError(f"{path}: cannot be read: {exc}") from exc
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, str(path))) from exc


def write_manifest(delivery_dir: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically: a temp file in the folder, fsync, rename."""
    target = delivery_dir / MANIFEST_NAME
    fd, temp_name = tempfile.mkstemp(dir=delivery_dir, prefix=f".{MANIFEST_NAME}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(manifest.to_json().encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        temp.chmod(0o644)
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(delivery_dir)
    return target


def list_delivery_files(root: Path) -> Iterator[str]:
    """Relative POSIX paths of the delivery's files, sorted, without the manifest.

    Symlinks may point at files inside the delivery; one that leaves it, is
    broken, or points at a directory is refused.
    """
    for rel in sorted(_walk(root, root)):
        if rel != MANIFEST_NAME:
            yield rel


def describe_file(
    root: Path, rel: str, release_date: datetime | None, table_names: set[str]
) -> ManifestFile:
    """One manifest entry; ``table_names`` collects the names taken so far."""
    path = root / rel
    try:
        check_relative_path(rel)
        fmt = detect_format(path)
        product_type = detect_product_type(path, fmt)
        table = None
        if product_type is ProductType.CATALOGUE:
            table = _table_definition(path, fmt, table_names)
        return ManifestFile(
            path=rel,
            size=path.stat().st_size,
            sha256=sha256_file(path),
            product_type=product_type,
            format=fmt,
            release_date=release_date,
            table=table,
        )
    except ValidationError as exc:
        raise ManifestError(format_validation_error(exc, rel)) from exc
    except (FormatError, OSError, ValueError) as exc:
        raise ManifestError(f"{rel}: {exc}") from exc


def _with_observation(entry: ManifestFile, fields: ObservationFields | None) -> ManifestFile:
    if fields is None or not fields.model_dump(exclude_none=True):
        return entry
    if not entry.product_type.is_observation:
        return entry  # delivery-wide fields concern the observation products only
    return entry.model_copy(update={"observation": fields})


def table_name_for(path: Path, taken: set[str]) -> str:
    """A valid, unused table identifier from the file name (``Sources-2.fits`` -> sources_2)."""
    stem = path.name.split(".", 1)[0].lower()
    name = re.sub(r"[^a-z0-9_]+", "_", stem).strip("_")
    if not name or not name[0].isalpha():
        name = f"t_{name}".rstrip("_")
    name = name[:_IDENTIFIER_LENGTH]
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        suffix = f"_{n}"
        candidate = name[: _IDENTIFIER_LENGTH - len(suffix)] + suffix
    return candidate


def _table_definition(path: Path, fmt: FileFormat, taken: set[str]) -> TableDefinition:
    name = table_name_for(path, taken)
    taken.add(name)
    return table_definition_from_file(path, fmt, name)


def _walk(root: Path, folder: Path) -> Iterator[str]:
    for entry in folder.iterdir():
        rel = entry.relative_to(root).as_posix()
        if entry.is_symlink():
            _check_symlink(root, entry, rel)
            yield rel
        elif entry.is_dir():
            yield from _walk(root, entry)
        elif entry.is_file():
            yield rel
        else:
            raise ManifestError(f"{rel}: not a regular file")


def _check_symlink(root: Path, entry: Path, rel: str) -> None:
    target = entry.resolve()
    if not target.is_relative_to(root):
        raise ManifestError(f"{rel}: symlink leaves the delivery folder (-> {target})")
    if not target.exists():
        raise ManifestError(f"{rel}: broken symlink (-> {target})")
    if not target.is_file():
        raise ManifestError(f"{rel}: symlink to a directory; deliver real folders")


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
