"""Missions, releases and what is in them, as a scientist may see them at ``now``.

Read from the archive in a few bounded queries per page (grouped counts over
indexed columns, lists with a LIMIT). Embargo: a table, file or observation
whose date is ahead is never named here; it is counted (how many, and until
when), which is all the pages say about it. Public or not is decided by
``storage.visibility.PublicAt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select

from firstlight.domain.manifest import TableDefinition
from firstlight.query.public import VOTABLE_TYPES, adql_name
from firstlight.storage.schema import (
    current_releases,
    deliveries,
    gate_decisions,
    observations,
    products,
    release_tables,
    releases,
)
from firstlight.storage.visibility import PublicAt

MAX_MISSIONS = 500
MAX_RELEASES = 500  # per mission page
MAX_TABLES = 200  # per release page
MAX_FILES = 1000  # per release page (the count says how many more)


@dataclass(frozen=True)
class ReleaseSummary:
    release_key: str
    mission: str
    name: str
    version: str
    current: bool
    promoted_at: datetime
    time_to_data_seconds: float | None
    tables: int = 0
    rows: int = 0
    files: int = 0
    bytes: int = 0
    embargoed: int = 0  # tables + files not yet public


@dataclass(frozen=True)
class MissionSummary:
    mission: str
    releases: int
    current: ReleaseSummary | None
    last: ReleaseSummary  # the latest promoted release


@dataclass(frozen=True)
class ColumnInfo:
    name: str  # as ADQL spells it
    datatype: str
    unit: str | None
    ucd: str | None
    description: str | None


@dataclass(frozen=True)
class TableInfo:
    name: str
    adql_names: list[str]  # <release_key>.<table>, and <mission>.<table> when current
    description: str | None
    row_count: int | None
    columns: list[ColumnInfo]


@dataclass(frozen=True)
class FileInfo:
    path: str
    product_type: str
    format: str
    size: int
    sha256: str
    url: str  # relative to the service root


@dataclass(frozen=True)
class EmbargoGroup:
    until: datetime
    tables: int
    files: int
    observations: int


@dataclass(frozen=True)
class GateSummary:
    decision: str
    decided_by: str
    reason: str | None
    anomaly_score: float | None
    anomaly_threshold: float | None
    drift_by_kind: dict[str, int]  # how many drift findings of each kind
    drift: list[dict[str, Any]]  # the findings (they name tables and columns)
    decided_at: datetime
    withheld: bool  # reason and findings kept back while anything of the release is dark


@dataclass(frozen=True)
class ReleaseDetail:
    summary: ReleaseSummary
    delivery_id: str
    created_at: datetime
    indexed_at: datetime | None
    arrived_at: datetime
    tables: list[TableInfo]
    files: list[FileInfo]
    files_total: int
    observations: int
    embargo: list[EmbargoGroup]  # still dark, by date: counts only
    gate: GateSummary | None
    data_docs: str | None  # path under the reports folder; None while anything is dark


def _ttd(arrived: datetime | None, finished: datetime | None) -> float | None:
    if arrived is None or finished is None:
        return None
    return (finished - arrived).total_seconds()


def _release_rows(conn: Connection, at: PublicAt, *, mission: str | None, limit: int) -> list[Any]:
    query = (
        select(
            releases.c.release_key,
            releases.c.mission,
            releases.c.name,
            releases.c.version,
            releases.c.promoted_at,
            current_releases.c.release_key.label("current_key"),
            deliveries.c.arrived_at,
            deliveries.c.finished_at,
            deliveries.c.state.label("delivery_state"),
        )
        .join(deliveries, deliveries.c.id == releases.c.delivery)
        .outerjoin(current_releases, current_releases.c.release_key == releases.c.release_key)
        .where(at.promoted(releases.c.release_key))
        .order_by(releases.c.mission, releases.c.promoted_at.desc())
        .limit(limit)
    )
    if mission is not None:
        query = query.where(releases.c.mission == mission)
    return list(conn.execute(query))


def _counts(conn: Connection, keys: list[str], at: PublicAt) -> dict[str, dict[str, int]]:
    """Public tables, rows, files, bytes and embargoed items per release (grouped counts)."""
    out: dict[str, dict[str, int]] = {
        k: {"tables": 0, "rows": 0, "files": 0, "bytes": 0, "embargoed": 0} for k in keys
    }
    if not keys:
        return out
    public_t = at.released(release_tables.c.release_date)
    for r in conn.execute(
        select(
            release_tables.c.release_key,
            func.sum(case((public_t, 1), else_=0)),
            func.sum(case((public_t, release_tables.c.row_count), else_=0)),
            func.sum(case((public_t, 0), else_=1)),
        )
        .where(release_tables.c.release_key.in_(keys))
        .group_by(release_tables.c.release_key)
    ):
        c = out[str(r[0])]
        c["tables"], c["rows"], c["embargoed"] = int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)
    public_p = at.released(products.c.release_date)
    for r in conn.execute(
        select(
            products.c.release_key,
            func.sum(case((public_p, 1), else_=0)),
            func.sum(case((public_p, products.c.size), else_=0)),
            func.sum(case((public_p, 0), else_=1)),
        )
        .where(products.c.release_key.in_(keys))
        .group_by(products.c.release_key)
    ):
        c = out[str(r[0])]
        c["files"], c["bytes"] = int(r[1] or 0), int(r[2] or 0)
        c["embargoed"] += int(r[3] or 0)
    return out


def _summaries(rows: list[Any], counts: dict[str, dict[str, int]]) -> list[ReleaseSummary]:
    return [
        ReleaseSummary(
            release_key=str(r.release_key),
            mission=str(r.mission),
            name=str(r.name),
            version=str(r.version),
            current=r.current_key is not None,
            promoted_at=r.promoted_at,
            time_to_data_seconds=_ttd(r.arrived_at, r.finished_at),
            **counts.get(str(r.release_key), {}),
        )
        for r in rows
    ]


def missions(conn: Connection, at: PublicAt) -> list[MissionSummary]:
    """Every mission with a promoted release: its current and latest release, in counts."""
    per_mission = {
        str(r.mission): int(r.n)
        for r in conn.execute(
            select(releases.c.mission, func.count().label("n"))
            .where(at.promoted(releases.c.release_key))
            .group_by(releases.c.mission)
            .order_by(releases.c.mission)
            .limit(MAX_MISSIONS)
        )
    }
    if not per_mission:
        return []
    # The current and the latest promoted release of each mission: two rows at most each.
    latest = (
        select(releases.c.mission, func.max(releases.c.promoted_at).label("at"))
        .where(at.promoted(releases.c.release_key))
        .group_by(releases.c.mission)
        .subquery()
    )
    query = (
        select(
            releases.c.release_key,
            releases.c.mission,
            releases.c.name,
            releases.c.version,
            releases.c.promoted_at,
            current_releases.c.release_key.label("current_key"),
            deliveries.c.arrived_at,
            deliveries.c.finished_at,
        )
        .join(deliveries, deliveries.c.id == releases.c.delivery)
        .outerjoin(current_releases, current_releases.c.release_key == releases.c.release_key)
        .outerjoin(
            latest,
            (latest.c.mission == releases.c.mission) & (latest.c.at == releases.c.promoted_at),
        )
        .where(releases.c.mission.in_(list(per_mission)))
        .where(current_releases.c.release_key.is_not(None) | latest.c.at.is_not(None))
        .order_by(releases.c.mission, releases.c.promoted_at.desc())
        .limit(4 * len(per_mission))
    )
    rows = list(conn.execute(query))
    counts = _counts(conn, [str(r.release_key) for r in rows], at)
    by_mission: dict[str, list[ReleaseSummary]] = {}
    for s in _summaries(rows, counts):
        by_mission.setdefault(s.mission, []).append(s)
    out = []
    for mission, n in per_mission.items():
        found = by_mission.get(mission, [])
        if not found:
            continue
        current = next((s for s in found if s.current), None)
        out.append(MissionSummary(mission=mission, releases=n, current=current, last=found[0]))
    return out


def mission_releases(conn: Connection, mission: str, at: PublicAt) -> list[ReleaseSummary]:
    """The mission's promoted releases, newest first (at most ``MAX_RELEASES``)."""
    rows = _release_rows(conn, at, mission=mission, limit=MAX_RELEASES)
    return _summaries(rows, _counts(conn, [str(r.release_key) for r in rows], at))


def release_detail(conn: Connection, release_key: str, at: PublicAt) -> ReleaseDetail | None:
    """One promoted release as the public may see it at ``at.now``; None if not promoted."""
    head = conn.execute(
        select(
            releases.c.release_key,
            releases.c.mission,
            releases.c.name,
            releases.c.version,
            releases.c.promoted_at,
            releases.c.created_at,
            releases.c.indexed_at,
            releases.c.delivery,
            current_releases.c.release_key.label("current_key"),
            deliveries.c.delivery_id,
            deliveries.c.arrived_at,
            deliveries.c.finished_at,
            deliveries.c.attempts,
            deliveries.c.data_docs,
        )
        .join(deliveries, deliveries.c.id == releases.c.delivery)
        .outerjoin(current_releases, current_releases.c.release_key == releases.c.release_key)
        .where(releases.c.release_key == release_key)
        .where(at.promoted(releases.c.release_key))
    ).first()
    if head is None:
        return None
    summary = _summaries([head], _counts(conn, [release_key], at))[0]
    tables = _tables(conn, head, at)
    files = [
        FileInfo(
            path=str(r.path),
            product_type=str(r.product_type),
            format=str(r.format),
            size=int(r.size),
            sha256=str(r.sha256),
            url=f"files/{r.storage_key}",
        )
        for r in conn.execute(
            select(products)
            .where(products.c.release_key == release_key)
            .where(at.released(products.c.release_date))
            .order_by(products.c.path)
            .limit(MAX_FILES)
        )
    ]
    n_obs = int(
        conn.execute(
            select(func.count())
            .select_from(observations)
            .where(observations.c.release_key == release_key)
            .where(at.released(observations.c.obs_release_date))
        ).scalar_one()
    )
    embargo = _embargo(conn, release_key, at)
    return ReleaseDetail(
        summary=summary,
        delivery_id=str(head.delivery_id),
        created_at=head.created_at,
        indexed_at=head.indexed_at,
        arrived_at=head.arrived_at,
        tables=tables,
        files=files,
        files_total=summary.files,
        observations=n_obs,
        embargo=embargo,
        gate=_gate(conn, int(head.delivery), withhold=bool(embargo)),
        # Data Docs describe every file and column of the delivery: linked once none is dark.
        data_docs=str(head.data_docs) if head.data_docs and not embargo else None,
    )


def _tables(conn: Connection, head: Any, at: PublicAt) -> list[TableInfo]:
    key, mission = str(head.release_key), str(head.mission)
    out = []
    for r in conn.execute(
        select(release_tables.c.table_name, release_tables.c.row_count, release_tables.c.definition)
        .where(release_tables.c.release_key == key)
        .where(at.released(release_tables.c.release_date))
        .order_by(release_tables.c.id)
        .limit(MAX_TABLES)
    ):
        definition = TableDefinition.model_validate(r.definition)
        names = [f"{key}.{r.table_name}"]
        if head.current_key is not None:
            names.insert(0, f"{mission}.{r.table_name}")
        out.append(
            TableInfo(
                name=str(r.table_name),
                adql_names=names,
                description=definition.description,
                row_count=None if r.row_count is None else int(r.row_count),
                columns=[
                    ColumnInfo(
                        name=adql_name(c.name.lower()),
                        datatype=VOTABLE_TYPES[c.datatype],
                        unit=c.unit,
                        ucd=c.ucd,
                        description=c.description,
                    )
                    for c in definition.columns
                ],
            )
        )
    return out


def _embargo(conn: Connection, release_key: str, at: PublicAt) -> list[EmbargoGroup]:
    """How many tables, files and observations are dark, per date: counts, never names."""
    groups: dict[datetime, dict[str, int]] = {}
    for kind, date, table in (
        ("tables", release_tables.c.release_date, release_tables),
        ("files", products.c.release_date, products),
        ("observations", observations.c.obs_release_date, observations),
    ):
        for when, n in conn.execute(
            select(date, func.count())
            .select_from(table)
            .where(table.c.release_key == release_key)
            .where(~at.released(date))
            .group_by(date)
            .limit(MAX_TABLES)
        ):
            counts = groups.setdefault(when, {"tables": 0, "files": 0, "observations": 0})
            counts[kind] += int(n)
    return [EmbargoGroup(until=when, **groups[when]) for when in sorted(groups)]


def _gate(conn: Connection, delivery_pk: int, *, withhold: bool) -> GateSummary | None:
    """The latest attempt's decision; what it says about tables and columns is withheld
    while anything of the release is dark (a finding names a table and a column)."""
    r = conn.execute(
        select(gate_decisions)
        .where(gate_decisions.c.delivery == delivery_pk)
        .order_by(gate_decisions.c.attempt.desc())
        .limit(1)
    ).first()
    if r is None:
        return None
    drift = [d for d in (r.drift or []) if isinstance(d, dict)]
    by_kind: dict[str, int] = {}
    for d in drift:
        by_kind[str(d.get("kind", "?"))] = by_kind.get(str(d.get("kind", "?")), 0) + 1
    return GateSummary(
        decision=str(r.decision),
        decided_by=str(r.decided_by),
        reason=None if withhold else r.reason,
        anomaly_score=r.anomaly_score,
        anomaly_threshold=r.anomaly_threshold,
        drift_by_kind=by_kind,
        drift=[] if withhold else drift,
        decided_at=r.decided_at,
        withheld=withhold,
    )
