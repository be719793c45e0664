"""Step "verify": the delivery holds exactly the bytes its manifest promises.

Belongs here: reading the manifest, and the checks that need only the file
system and the manifest (presence, safe links, sizes, sha256, unlisted files).
Nothing here opens a data file's format; that is step "validate".

Check names: ``verify.missing_file``, ``verify.unsafe_link``, ``verify.size``,
``verify.sparse``, ``verify.sha256``, ``verify.unreadable``, ``verify.extra_file``.

Sizes are checked before anything is read or copied: the apparent size must be
the manifest's, and the space the file really takes must not be far below it
(a sparse file would expand to its apparent size in every copy: a tiny
delivery could fill the archive's disk). A file taking more space than its
size is not refused: file systems preallocate while writing, and it costs the
archive nothing, since a copy takes the apparent size.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from firstlight.domain.findings import Finding, Report
from firstlight.domain.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    ManifestFile,
    manifest_sha256,
    parse_manifest,
)
from firstlight.formats.digest import sha256_file

STEP = "verify"
_READ_BLOCK = 1 << 20
# How far below its size a file's allocation may be before it counts as sparse:
# small files may live inline in metadata, and compressing file systems store less.
SPARSE_SLACK_BYTES = 1 << 20
SPARSE_SLACK_FRACTION = 0.5


def sparse_problem(st: os.stat_result) -> str | None:
    """Why a regular file's allocation is too small for its size (a sparse file), or None."""
    allocated = st.st_blocks * 512
    allowed = max(SPARSE_SLACK_BYTES, int(st.st_size * SPARSE_SLACK_FRACTION))
    if st.st_size - allocated > allowed:
        return (
            f"sparse: {allocated} bytes allocated for an apparent size of {st.st_size}; "
            "a copy would expand it"
        )
    return None


def read_manifest(delivery_dir: Path) -> tuple[Manifest, str]:
    """Parse ``manifest.json`` of a delivery; return it with the sha256 of its bytes.

    Raises ``ManifestError`` naming the folder (missing, unsafe, unreadable) or the
    field (invalid content).
    """
    path = delivery_dir / MANIFEST_NAME
    if not delivery_dir.is_dir():
        raise ManifestError(f"{delivery_dir}: not a delivery folder (no such directory)")
    if not path.exists() and not path.is_symlink():
        raise ManifestError(
            f"{delivery_dir}: no {MANIFEST_NAME} (a delivery writes it last: "
            "is the delivery complete?)"
        )
    link = _unsafe_link(delivery_dir.resolve(), delivery_dir, MANIFEST_NAME)
    if link is not None:
        raise ManifestError(f"{path}: {link}")
    data, unreadable = read_manifest_bytes(path)
    if unreadable is not None:
        raise ManifestError(f"{path}: {unreadable}")
    return parse_manifest(data, source=str(path)), manifest_sha256(data)


def read_manifest_bytes(path: Path) -> tuple[bytes, str | None]:
    """The manifest's bytes, or ``b""`` and why they cannot be read.

    The one way admission and the watchers read a manifest, so an unreadable
    one hashes the same (``b""``) for both. Opened non-blocking and checked to
    be a regular file first: reading a FIFO would hang the worker.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        return b"", f"cannot be read: {exc.strerror or exc}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"", "is not a regular file"
        chunks: list[bytes] = []
        while chunk := os.read(fd, _READ_BLOCK):
            chunks.append(chunk)
        return b"".join(chunks), None
    except OSError as exc:
        return b"", f"cannot be read: {exc.strerror or exc}"
    finally:
        os.close(fd)


def verify_files(delivery_dir: Path, manifest: Manifest) -> Report:
    """Check every listed file against the manifest, and that nothing else is there."""
    report = Report(step=STEP)
    root = delivery_dir.resolve()
    for entry in manifest.files:
        report.extend(verify_file(root, delivery_dir, entry))
    listed = {entry.path for entry in manifest.files}
    report.extend(find_extra_files(delivery_dir, listed))
    return report


def verify_file(root: Path, delivery_dir: Path, entry: ManifestFile) -> list[Finding]:
    """Findings for one listed file; stop at the first failure that makes the rest moot."""
    link = _unsafe_link(root, delivery_dir, entry.path)
    if link is not None:
        return [Finding(check="verify.unsafe_link", reason=link, file=entry.path)]
    path = delivery_dir / entry.path
    if not path.exists():
        return [Finding(check="verify.missing_file", reason="listed but absent", file=entry.path)]
    if not path.is_file():
        # Never open a FIFO or device: reading it could block the flow forever.
        return [
            Finding(
                check="verify.missing_file",
                reason="listed but not a regular file",
                file=entry.path,
                observed=_kind(path),
            )
        ]
    return _check_content(path, entry)


def _check_content(path: Path, entry: ManifestFile) -> list[Finding]:
    try:
        st = path.stat()
        size = st.st_size
        if size != entry.size:
            # A wrong size already proves different bytes: spare the hashing.
            return [
                Finding(
                    check="verify.size",
                    reason=f"size is {size} bytes, manifest says {entry.size}",
                    file=entry.path,
                    observed=str(size),
                )
            ]
        sparse = sparse_problem(st)
        if sparse is not None:
            return [
                Finding(
                    check="verify.sparse",
                    reason=sparse,
                    file=entry.path,
                    observed=str(st.st_blocks * 512),
                )
            ]
        digest = sha256_file(path)
    except OSError as exc:
        return [
            Finding(
                check="verify.unreadable",
                reason=f"cannot be read: {exc.strerror or exc}",
                file=entry.path,
            )
        ]
    if digest != entry.sha256:
        return [
            Finding(
                check="verify.sha256",
                reason=f"sha256 differs from the manifest's {entry.sha256}",
                file=entry.path,
                observed=digest,
            )
        ]
    return []


def find_extra_files(delivery_dir: Path, listed: set[str]) -> list[Finding]:
    """Files (hidden ones too) and symlinks in the folder that the manifest does not list."""
    expected = listed | {MANIFEST_NAME}
    # Folders the listed paths pass through: a symlinked folder on such a path is in use.
    used_dirs = {"/".join(p.split("/")[:i]) for p in listed for i in range(1, p.count("/") + 1)}
    findings = []
    for current, dirnames, filenames in os.walk(delivery_dir, followlinks=False):
        base = Path(current).relative_to(delivery_dir).as_posix()
        prefix = "" if base == "." else base + "/"
        for name in sorted(filenames):
            rel = prefix + name
            if rel not in expected:
                findings.append(_extra(rel, _kind(Path(current) / name)))
        for name in sorted(dirnames):
            rel = prefix + name
            # os.walk does not descend into symlinked folders: report unused ones here.
            if (Path(current) / name).is_symlink() and rel not in used_dirs:
                findings.append(_extra(rel, "symlink to a folder"))
    return findings


def _extra(rel: str, kind: str) -> Finding:
    return Finding(
        check="verify.extra_file",
        reason="present in the delivery but not listed in the manifest",
        file=rel,
        observed=kind,
    )


def _unsafe_link(root: Path, delivery_dir: Path, rel: str) -> str | None:
    """Why a path's symlinks (the file's or a parent folder's) leave the delivery, or None."""
    current = delivery_dir
    for part in rel.split("/"):
        current = current / part
        if not current.is_symlink():
            continue
        try:
            target = current.resolve(strict=False)
        except (OSError, RuntimeError):  # RuntimeError: symlink loop (Python < 3.13)
            return f"symlink {current.relative_to(delivery_dir).as_posix()} cannot be resolved"
        if not target.is_relative_to(root):
            link = current.relative_to(delivery_dir).as_posix()
            return f"symlink {link} resolves outside the delivery, to {target}"
    return None


def _kind(path: Path) -> str:
    if path.is_symlink():
        return "symlink" if path.exists() else "broken symlink"
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "regular file"
    return "special file"
