"""UWS 1.1 jobs as values: phases, the moves between them, and their XML.

Pure: a ``Job`` is a frozen record; ``run``, ``start``, ``finish``, ``fail``
and ``abort`` return the next one or raise ``PhaseError`` for a move the
state machine forbids. ``job_xml`` and ``jobs_xml`` write the documents of
the UWS schema. Where jobs are kept and how they run is ``jobs.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from firstlight.errors import ConflictError
from firstlight.query.service.votable import attr, text

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


class Phase(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"

    @property
    def active(self) -> bool:
        """Still going somewhere (a client waiting on it should keep waiting)."""
        return self in (Phase.PENDING, Phase.QUEUED, Phase.EXECUTING)

    @property
    def final(self) -> bool:
        return self in (Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED)


class PhaseError(ConflictError, ValueError):
    """A move the UWS state machine does not allow from the job's phase."""


Transition = Callable[["Job"], "Job"]


@dataclass(frozen=True)
class Result:
    id: str
    href: str  # relative to the job's URL, e.g. "results/result"
    mime: str
    rows: int | None = None  # kept for the record; the UWS schema has no place for it


@dataclass(frozen=True)
class Job:
    job_id: str
    phase: Phase
    parameters: Mapping[str, str]  # lower-case names
    creation_time: datetime
    destruction: datetime
    execution_duration: int  # seconds; 0 means unlimited (never granted here)
    run_id: str | None = None
    owner: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    quote: datetime | None = None
    error: str | None = None
    results: tuple[Result, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        data["phase"] = self.phase.value
        data["parameters"] = dict(self.parameters)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        times = ("creation_time", "destruction", "start_time", "end_time", "quote")
        values = dict(data)
        for key in times:
            if values.get(key) is not None:
                values[key] = datetime.fromisoformat(values[key])
        values["phase"] = Phase(values["phase"])
        values["results"] = tuple(Result(**r) for r in values.get("results", ()))
        return cls(**values)


def queue(job: Job) -> Job:
    """PHASE=RUN: a pending job joins the queue (again RUN on a queued or running job: no-op)."""
    if job.phase in (Phase.QUEUED, Phase.EXECUTING):
        return job
    if job.phase is not Phase.PENDING:
        raise PhaseError(f"job {job.job_id} is {job.phase}: only a PENDING job can be run")
    return dataclasses.replace(job, phase=Phase.QUEUED)


def start(job: Job, now: datetime) -> Job:
    if job.phase is not Phase.QUEUED:
        raise PhaseError(f"job {job.job_id} is {job.phase}: only a QUEUED job can start")
    return dataclasses.replace(job, phase=Phase.EXECUTING, start_time=now)


def finish(job: Job, now: datetime, results: Sequence[Result]) -> Job:
    if job.phase is not Phase.EXECUTING:
        raise PhaseError(f"job {job.job_id} is {job.phase}: only an EXECUTING job can complete")
    return dataclasses.replace(job, phase=Phase.COMPLETED, end_time=now, results=tuple(results))


def fail(job: Job, now: datetime, message: str) -> Job:
    if job.phase.final:
        raise PhaseError(f"job {job.job_id} is {job.phase} already")
    return dataclasses.replace(job, phase=Phase.ERROR, end_time=now, error=message)


def abort(job: Job, now: datetime) -> Job:
    """PHASE=ABORT: a job not yet finished stops; aborting a finished job changes nothing."""
    if job.phase.final:
        return job
    return dataclasses.replace(job, phase=Phase.ABORTED, end_time=now)


def with_parameters(job: Job, parameters: Mapping[str, str]) -> Job:
    if job.phase is not Phase.PENDING:
        raise PhaseError(f"job {job.job_id} is {job.phase}: parameters change only while PENDING")
    return dataclasses.replace(job, parameters={**job.parameters, **parameters})


def with_execution_duration(job: Job, seconds: int, limit: int) -> Job:
    """The duration asked for, within the service's limit (0, unlimited, gets the limit)."""
    if job.phase is not Phase.PENDING:
        raise PhaseError(f"job {job.job_id} is {job.phase}: executionduration is fixed now")
    granted = limit if seconds <= 0 else min(seconds, limit)
    return dataclasses.replace(job, execution_duration=granted)


def with_destruction(job: Job, when: datetime, latest: datetime) -> Job:
    """The destruction time asked for, no later than the service keeps jobs."""
    return dataclasses.replace(job, destruction=min(when, latest))


# --- XML ------------------------------------------------------------------------------------


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _opt(tag: str, value: object) -> str:
    if value is None:
        return f'<uws:{tag} xsi:nil="true"/>'
    shown = iso(value) if isinstance(value, datetime) else str(value)
    return f"<uws:{tag}>{text(shown)}</uws:{tag}>"


def _root(tag: str) -> str:
    return (
        f'<uws:{tag} xmlns:uws="{UWS_NS}" xmlns:xlink="{XLINK_NS}" '
        f'xmlns:xsi="{XSI_NS}" version="1.1"'
    )


def parameters_xml(job: Job, *, root: bool = True) -> str:
    body = "".join(
        f"<uws:parameter id={attr(k)}>{text(v)}</uws:parameter>"
        for k, v in sorted(job.parameters.items())
    )
    if root:
        return (
            f'<?xml version="1.0" encoding="UTF-8"?>\n{_root("parameters")}>{body}</uws:parameters>'
        )
    return f"<uws:parameters>{body}</uws:parameters>"


def results_xml(job: Job, job_url: str, *, root: bool = True) -> str:
    body = "".join(
        f'<uws:result id={attr(r.id)} xlink:type="simple" xlink:href={attr(f"{job_url}/{r.href}")}'
        f" mime-type={attr(r.mime)}/>"
        for r in job.results
    )
    if root:
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{_root("results")}>{body}</uws:results>'
    return f"<uws:results>{body}</uws:results>"


def job_xml(job: Job, job_url: str) -> str:
    """The job document (uws:job), elements in the schema's order."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        _root("job") + ">",
        f"<uws:jobId>{text(job.job_id)}</uws:jobId>",
    ]
    if job.run_id is not None:
        parts.append(f"<uws:runId>{text(job.run_id)}</uws:runId>")
    parts += [
        _opt("ownerId", job.owner),
        f"<uws:phase>{job.phase.value}</uws:phase>",
        _opt("quote", job.quote),
        f"<uws:creationTime>{iso(job.creation_time)}</uws:creationTime>",
        _opt("startTime", job.start_time),
        _opt("endTime", job.end_time),
        f"<uws:executionDuration>{job.execution_duration}</uws:executionDuration>",
        _opt("destruction", job.destruction),
        parameters_xml(job, root=False),
        results_xml(job, job_url, root=False),
    ]
    if job.error is not None:
        parts.append(
            '<uws:errorSummary type="fatal" hasDetail="true">'
            f"<uws:message>{text(job.error)}</uws:message></uws:errorSummary>"
        )
    parts.append("</uws:job>")
    return "".join(parts)


def jobs_xml(jobs: Sequence[Job], list_url: str) -> str:
    """The job list (uws:jobs) with a jobref per job."""
    refs = "".join(
        f'<uws:jobref id={attr(j.job_id)} xlink:type="simple" '
        f"xlink:href={attr(f'{list_url}/{j.job_id}')}>"
        f"<uws:phase>{j.phase.value}</uws:phase>"
        + (f"<uws:runId>{text(j.run_id)}</uws:runId>" if j.run_id is not None else "")
        + f"<uws:creationTime>{iso(j.creation_time)}</uws:creationTime></uws:jobref>"
        for j in jobs
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{_root("jobs")}>{refs}</uws:jobs>'


def select_jobs(
    jobs: Sequence[Job], *, phases: Sequence[str], after: datetime | None, last: int | None
) -> list[Job]:
    """The UWS 1.1 job-list filters: PHASE (any of), AFTER, LAST (newest first).

    Without a PHASE filter ARCHIVED jobs are left out, as UWS 1.1 says.
    """
    wanted = {Phase(p.upper()) for p in phases}
    chosen = [
        j
        for j in jobs
        if (j.phase in wanted if wanted else j.phase is not Phase.ARCHIVED)
        and (after is None or j.creation_time > after)
    ]
    chosen.sort(key=lambda j: j.creation_time, reverse=last is not None)
    return chosen[:last] if last is not None else chosen
