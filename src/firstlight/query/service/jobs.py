"""Asynchronous TAP jobs: kept on disk, run by a pool of worker threads.

Each job is a folder under ``Settings.query_jobs_dir``: ``job.json`` (the UWS
record, replaced atomically on every change) and its result or error
document. Jobs therefore outlive a restart; one that was queued or running
when the service stopped comes back as ERROR saying so (its client may run
it again). Jobs past their destruction time are removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from firstlight.query.service import uws
from firstlight.query.service.execution import execute
from firstlight.query.service.params import ParameterError, query_request
from firstlight.query.service.state import ServiceState
from firstlight.query.service.uws import Job, Phase, Result
from firstlight.query.service.votable import error_document

log = logging.getLogger(__name__)

RESULT_ID = "result"
RESTARTED = "the query service restarted while this job was queued or running; run it again"


_PART_PREFIX = "upload-"


def _part_file(name: str) -> str:
    """A file name for a part name (any text a client chose): its UTF-8 in hex."""
    return _PART_PREFIX + name.encode().hex()


class JobStore:
    """Jobs as folders; every read-modify-write under one lock, waiters told of changes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.changed = threading.Condition()

    def _folder(self, job_id: str) -> Path:
        if not job_id.isalnum():
            raise KeyError(job_id)
        return self.root / job_id

    def create(
        self, parameters: dict[str, str], *, now: datetime, duration: int, keep: timedelta
    ) -> Job:
        job = Job(
            job_id=uuid.uuid4().hex[:16],
            phase=Phase.PENDING,
            parameters=parameters,
            creation_time=now,
            destruction=now + keep,
            execution_duration=duration,
            run_id=parameters.pop("runid", None),
        )
        self._folder(job.job_id).mkdir()
        self.save(job)
        return job

    def get(self, job_id: str) -> Job | None:
        try:
            path = self._folder(job_id) / "job.json"
            return Job.from_dict(json.loads(path.read_text()))
        except (KeyError, FileNotFoundError):
            return None

    def save(self, job: Job) -> None:
        path = self._folder(job.job_id) / "job.json"
        tmp = path.with_name(f".job.{uuid.uuid4().hex}.tmp")
        tmp.write_text(json.dumps(job.to_dict()))
        tmp.replace(path)
        with self.changed:
            self.changed.notify_all()

    def all(self) -> list[Job]:
        jobs = (self.get(p.name) for p in self.root.iterdir() if p.is_dir())
        return [j for j in jobs if j is not None]

    def delete(self, job_id: str) -> None:
        shutil.rmtree(self._folder(job_id), ignore_errors=True)
        with self.changed:
            self.changed.notify_all()

    def save_parts(self, job_id: str, parts: Mapping[str, bytes]) -> None:
        """Keep a job's uploaded files (TAP_UPLOAD) beside it, by part name."""
        for name, data in parts.items():
            (self._folder(job_id) / _part_file(name)).write_bytes(data)

    def parts(self, job_id: str) -> dict[str, bytes]:
        folder = self._folder(job_id)
        found: dict[str, bytes] = {}
        for path in folder.glob(f"{_PART_PREFIX}*"):
            name = bytes.fromhex(path.name.removeprefix(_PART_PREFIX)).decode()
            found[name] = path.read_bytes()
        return found

    def result_path(self, job_id: str, name: str) -> Path:
        return self._folder(job_id) / name

    def wait(self, job_id: str, phase: Phase, seconds: float) -> None:
        """Block until the job leaves ``phase`` (or is gone), at most ``seconds``."""

        def moved() -> bool:
            job = self.get(job_id)
            return job is None or job.phase is not phase

        with self.changed:
            self.changed.wait_for(moved, timeout=seconds)


class JobRunner:
    """Runs queued jobs on worker threads; the state machine decides every move."""

    def __init__(self, state: ServiceState, store: JobStore) -> None:
        self.state = state
        self.store = store
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(
            max_workers=state.settings.query_workers, thread_name_prefix="tap-job"
        )

    def recover(self) -> None:
        """After a restart: forget expired jobs, fail those that were cut short."""
        now = self.state.now()
        for job in self.store.all():
            if job.destruction <= now:
                self.store.delete(job.job_id)
            elif job.phase in (Phase.QUEUED, Phase.EXECUTING):
                self.store.save(uws.fail(job, now, RESTARTED))

    def reap(self) -> None:
        now = self.state.now()
        for job in self.store.all():
            if job.destruction <= now:
                self.store.delete(job.job_id)

    def update(self, job_id: str, change: uws.Transition) -> Job:
        """Apply one move to a job under the lock (raises KeyError, PhaseError)."""
        with self.lock:
            job = self.store.get(job_id)
            if job is None:
                raise KeyError(job_id)
            new = change(job)
            if new is not job:
                self.store.save(new)
            return new

    def run(self, job_id: str, base_url: str) -> Job:
        job = self.update(job_id, uws.queue)
        if job.phase is Phase.QUEUED:
            self.pool.submit(self._work, job_id, base_url)
        return job

    def _work(self, job_id: str, base_url: str) -> None:
        try:
            job = self.update(job_id, lambda j: uws.start(j, self.state.now()))
        except (KeyError, uws.PhaseError):
            return  # deleted or aborted while queued
        try:
            request = query_request(
                job.parameters,
                default_maxrec=self.state.settings.query_maxrec,
                maxrec_limit=self.state.settings.query_maxrec_limit,
            )
        except ParameterError as exc:
            self._fail(job_id, str(exc))
            return
        answer = execute(
            self.state,
            request,
            base_url,
            timeout_seconds=job.execution_duration,
            parts=self.store.parts(job_id) if request.uploads else None,
        )
        if answer.error is not None:
            self._fail(job_id, answer.error)
            return
        name = f"{RESULT_ID}.{request.format.extension}"
        try:
            with self.store.result_path(job_id, name).open("w", encoding="utf-8") as fh:
                fh.writelines(answer.body)
        except FileNotFoundError:
            return  # the job was deleted while it ran
        result = Result(RESULT_ID, f"results/{RESULT_ID}", request.format.mime, answer.rows)
        # Aborted or deleted while it ran: the result is not theirs to see.
        with contextlib.suppress(KeyError, uws.PhaseError):
            self.update(job_id, lambda j: uws.finish(j, self.state.now(), [result]))

    def _fail(self, job_id: str, message: str) -> None:
        # The error document first: a client seeing ERROR may fetch it at once.
        with contextlib.suppress(KeyError, uws.PhaseError, FileNotFoundError):
            self.store.result_path(job_id, "error.xml").write_text(error_document(message))
            self.update(job_id, lambda j: uws.fail(j, self.state.now(), message))

    def result_file(self, job: Job) -> tuple[Path, str] | None:
        for result in job.results:
            folder = self.store.result_path(job.job_id, "")
            for path in folder.glob(f"{result.id}.*"):
                return path, result.mime
        return None

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
