"""The local inbox: delivery folders on a file system, and the watcher that announces them.

Belongs here: finding delivery folders in the inbox, deciding whether one is
ready (its manifest parses and every listed file has its listed size), and the
long-running ``InboxWatcher`` that emits one ``Arrival`` per manifest. Nothing
here hashes data files or judges a delivery: that is step "verify". A delivery
that never completes is still announced once it has had ``settle_seconds`` to
do so, because an arrival that is never announced never reaches the ledger
(promise 1); verification then names what is missing.

Layout: ``inbox/<delivery>/manifest.json`` or ``inbox/<group>/<delivery>/
manifest.json`` (e.g. ``inbox/s3/<name>/``). Hidden folders (``.s3-staging``)
are private to their writer and symlinked folders are never followed.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from firstlight.checks.verify import read_manifest_bytes
from firstlight.domain.manifest import (
    MANIFEST_NAME,
    ManifestError,
    manifest_sha256,
    parse_manifest,
    raw_identity,
)
from firstlight.events.arrival import Arrival, ArrivalSink

logger = logging.getLogger(__name__)

SOURCE = "inbox"

# Our own reads of a manifest open and close it; those events must not wake us again.
_IGNORED_EVENTS = frozenset({EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE})
# A file being written fires an event per write: gather a burst into one check.
_COALESCE_SECONDS = 0.02
_NAMED_IN_REASON = 5


@dataclass(frozen=True)
class Readiness:
    """Whether a delivery folder may be announced now, and why not.

    ``arrival`` is the announcement the folder would make (also while it is not
    ready, so a watcher can announce it after the settle time); it is None only
    when there is no manifest at all.
    """

    ready: bool
    manifest_sha256: str | None
    arrival: Arrival | None
    waiting_for: list[str]
    reason: str
    manifest_parsed: bool = False


def find_deliveries(inbox: Path) -> list[Path]:
    """Delivery folders at depth 1 or 2 of the inbox, sorted; none if it does not exist."""
    found: list[Path] = []
    for top in _subfolders(inbox):
        if _has_manifest(top):
            found.append(top)  # its own sub-folders are its data, not deliveries
        else:
            found.extend(sub for sub in _subfolders(top) if _has_manifest(sub))
    return sorted(found)


def is_delivery(inbox: Path, folder: Path) -> bool:
    """Whether ``find_deliveries(inbox)`` would list ``folder``, without listing the rest."""
    try:
        parts = folder.relative_to(inbox).parts
    except ValueError:
        return False
    if not 1 <= len(parts) <= 2 or any(p.startswith(".") for p in parts):
        return False
    if len(parts) == 2 and (not _real_folder(folder.parent) or _has_manifest(folder.parent)):
        return False
    return _real_folder(folder) and _has_manifest(folder)


def readiness(folder: Path, *, source: str = SOURCE) -> Readiness:
    """Read the folder's manifest and compare the listed files' sizes with the promise."""
    path = folder / MANIFEST_NAME
    if not os.path.lexists(path):
        return Readiness(
            ready=False,
            manifest_sha256=None,
            arrival=None,
            waiting_for=[],
            reason=f"no {MANIFEST_NAME}",
        )
    data, unreadable = read_manifest_bytes(path)
    sha = manifest_sha256(data)
    mission, delivery_id = raw_identity(data, folder.name)
    arrival = Arrival(
        mission=mission,
        delivery_id=delivery_id,
        location=str(folder.resolve()),
        manifest_sha256=sha,
        source=source,
    )
    if unreadable is not None:
        return Readiness(
            ready=False,
            manifest_sha256=sha,
            arrival=arrival,
            waiting_for=[],
            reason=f"{MANIFEST_NAME} {unreadable}",
        )
    try:
        manifest = parse_manifest(data, source=MANIFEST_NAME)
    except ManifestError as exc:
        return Readiness(
            ready=False,
            manifest_sha256=sha,
            arrival=arrival,
            waiting_for=[],
            reason=f"{MANIFEST_NAME} does not parse: {str(exc).splitlines()[0]}",
        )
    waiting = {
        entry.path: problem
        for entry in manifest.files
        if (problem := _size_problem(folder / entry.path, entry.size)) is not None
    }
    return Readiness(
        ready=not waiting,
        manifest_sha256=sha,
        arrival=arrival,
        waiting_for=list(waiting),
        reason=(
            _waiting_reason(waiting, len(manifest.files))
            if waiting
            else "every listed file has its listed size"
        ),
        manifest_parsed=True,
    )


def _subfolders(folder: Path) -> list[Path]:
    """Visible, real (not symlinked) sub-folders; none if the folder went away meanwhile."""
    try:
        with os.scandir(folder) as entries:
            return [
                Path(e.path)
                for e in entries
                if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        # One unreadable group must not hide every other delivery.
        logger.warning("cannot list %s: %s", folder, exc)
        return []


def _real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def _has_manifest(folder: Path) -> bool:
    # lexists: a broken or odd manifest still marks a delivery, for verification to refuse.
    return os.path.lexists(folder / MANIFEST_NAME)


def _size_problem(path: Path, size: int) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return "absent"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size != size:
        return f"{st.st_size} of {size} bytes"
    return None


def _waiting_reason(waiting: dict[str, str], listed: int) -> str:
    named = ", ".join(f"{p} ({why})" for p, why in list(waiting.items())[:_NAMED_IN_REASON])
    more = len(waiting) - _NAMED_IN_REASON
    tail = f" and {more} more" if more > 0 else ""
    return f"waiting for {len(waiting)} of {listed} listed files: {named}{tail}"


@dataclass
class _Tracked:
    """What the watcher remembers of one delivery folder."""

    sha: str
    since: float  # monotonic time this manifest (these bytes) was first seen
    landed_at: datetime | None = None  # first seen complete (or settled): time-to-data's start
    signature: tuple[int, ...] | None = None  # the manifest's stat at the last check
    announced: set[str] = field(default_factory=set)

    @property
    def pending(self) -> bool:
        return self.sha not in self.announced


class _Wakeup(FileSystemEventHandler):
    """Runs on watchdog's thread: only notes which folders changed and wakes the worker."""

    def __init__(self, watcher: InboxWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENTS:
            return
        for raw in (event.src_path, event.dest_path):
            if raw:
                self._watcher.note_change(Path(os.fsdecode(raw)))


class InboxWatcher:
    """Announces each delivery of a local inbox once per manifest, to an ``ArrivalSink``.

    watchdog wakes it as soon as something changes; a poll every
    ``poll_seconds`` re-checks pending folders and catches what the file system
    did not report. The sink is called from the watcher's own thread.
    """

    def __init__(
        self, inbox: Path, sink: ArrivalSink, *, settle_seconds: float, poll_seconds: float
    ) -> None:
        if settle_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("settle_seconds and poll_seconds must be positive")
        self._inbox = inbox
        self._root = inbox.absolute()
        self._sink = sink
        self._settle = settle_seconds
        self._poll = poll_seconds
        self._tracked: dict[Path, _Tracked] = {}  # touched by the worker thread only
        self._dirty: set[Path] = set()
        self._dirty_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._started = False
        self._observer: BaseObserver | None = None
        self._worker: threading.Thread | None = None

    def __enter__(self) -> InboxWatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Create the inbox if needed, start watching, and scan what is already there."""
        with self._lifecycle:
            if self._started or self._stopping.is_set():
                raise RuntimeError("an InboxWatcher starts once")
            self._started = True
            self._inbox.mkdir(parents=True, exist_ok=True)
            # Resolved once, so event paths, scans and announcements share one spelling.
            self._root = self._inbox.resolve()
            self._observer = self._start_observer()
            self._worker = threading.Thread(
                target=self._run, name=f"inbox-watcher:{self._root}", daemon=True
            )
            self._worker.start()

    def stop(self) -> None:
        """Stop watching and wait for the threads; safe to call twice or before start."""
        self._stopping.set()
        self._wake.set()
        with self._lifecycle:
            observer, self._observer = self._observer, None
            worker, self._worker = self._worker, None
        if observer is not None:
            observer.stop()
            observer.join()
        # A sink may stop the watcher from the worker thread itself: it then ends on its own.
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def note_change(self, path: Path) -> None:
        """A file system path changed: re-check the delivery folders it may belong to."""
        try:
            parts = path.relative_to(self._root).parts
        except ValueError:
            return
        candidates: list[Path] = []
        folder = self._root
        for name in parts[:2]:
            if name.startswith("."):
                break  # hidden folders (staging areas) are their writer's business
            folder = folder / name
            candidates.append(folder)
        if not candidates:
            return
        with self._dirty_lock:
            self._dirty.update(candidates)
        self._wake.set()

    def _start_observer(self) -> BaseObserver | None:
        observer = Observer()
        try:
            observer.schedule(_Wakeup(self), str(self._root), recursive=True)
            observer.start()
        except OSError as exc:
            # e.g. the inotify watch limit: the poll loop alone still finds everything.
            logger.warning("watching %s failed (%s); polling only", self._root, exc)
            return None
        return observer

    def _run(self) -> None:
        next_scan = time.monotonic()  # the first pass scans what is already there
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_scan:
                    self._scan_pass()
                    next_scan = time.monotonic() + self._poll
                else:
                    self._dirty_pass()
            except Exception:
                logger.exception("inbox pass over %s failed", self._root)
            self._wake.wait(max(0.0, next_scan - time.monotonic()))
            self._wake.clear()
            self._stopping.wait(_COALESCE_SECONDS)

    def _take_dirty(self) -> set[Path]:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        return dirty

    def _dirty_pass(self) -> None:
        for folder in sorted(self._take_dirty()):
            if self._stopping.is_set():
                return
            if is_delivery(self._root, folder):
                self._check_guarded(folder)
            else:
                self._tracked.pop(folder, None)

    def _scan_pass(self) -> None:
        self._take_dirty()  # the scan sees everything they could name
        found = find_deliveries(self._root)
        for gone in set(self._tracked) - set(found):
            del self._tracked[gone]
        for folder in found:
            if self._stopping.is_set():
                return  # a large inbox must not hold up stop()
            tracked = self._tracked.get(folder)
            if (
                tracked is None
                or tracked.pending
                or tracked.signature != _signature(folder / MANIFEST_NAME)
            ):
                self._check_guarded(folder)

    def _check_guarded(self, folder: Path) -> None:
        try:
            self._check(folder)
        except Exception:
            logger.exception("checking delivery folder %s failed", folder)

    def _check(self, folder: Path) -> None:
        # Before reading: a change made while we read shows as a new signature next pass.
        signature = _signature(folder / MANIFEST_NAME)
        state = readiness(folder)
        if state.manifest_sha256 is None or state.arrival is None:
            self._tracked.pop(folder, None)
            return
        now = time.monotonic()
        tracked = self._tracked.get(folder)
        if tracked is None:
            tracked = self._tracked[folder] = _Tracked(state.manifest_sha256, now)
        elif tracked.sha != state.manifest_sha256:
            # New bytes are a new promise: they get their own settle time.
            tracked.sha, tracked.since = state.manifest_sha256, now
            tracked.landed_at = None
        tracked.signature = signature
        if not tracked.pending:
            return
        if state.ready:
            self._announce(tracked, state.arrival)
        elif now - tracked.since >= self._settle:
            logger.warning(
                "announcing %s unfinished after %.0f s: %s", folder, self._settle, state.reason
            )
            self._announce(tracked, state.arrival)

    def _announce(self, tracked: _Tracked, arrival: Arrival) -> None:
        # Kept across a failed emit: a retry announces the same moment, not a later one.
        if tracked.landed_at is None:
            tracked.landed_at = datetime.now(UTC)
        arrival = replace(arrival, landed_at=tracked.landed_at)
        try:
            self._sink.emit(arrival)
        except Exception:
            # Not marked announced: the next poll tries again.
            logger.exception("announcing %s failed", arrival.location)
            return
        tracked.announced.add(arrival.manifest_sha256)
        logger.info(
            "announced %s/%s at %s (manifest %s)",
            arrival.mission,
            arrival.delivery_id,
            arrival.location,
            arrival.manifest_sha256[:12],
        )


def _signature(path: Path) -> tuple[int, ...] | None:
    """What changes when a manifest is rewritten or touched; None when it is gone."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
