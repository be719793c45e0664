"""Cone search over a mission's current release (or a named one).

The release pointer and the rows are read in one transaction, so a search
sees one release whole. HEALPix ranges prefilter on the B-tree index, the
exact angular distance decides. What is public is ``storage.visibility``'s
to say: embargoed catalogues and observations are invisible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from firstlight.domain.manifest import now_utc
from firstlight.errors import InvalidInputError, NotFoundError
from firstlight.storage.archive import Archive
from firstlight.storage.catalogues import HEALPIX_COLUMN
from firstlight.storage.releases import ReleaseStore
from firstlight.storage.schema import observations
from firstlight.storage.visibility import PublicAt

DEFAULT_LIMIT = 1000


@dataclass(frozen=True)
class ConeResult:
    release_key: str
    table: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    overflow: bool

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def cone_search(
    archive: Archive,
    *,
    mission: str,
    ra: float,
    dec: float,
    radius: float,
    table: str | None = None,
    release: str | None = None,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
) -> ConeResult:
    """Rows of a catalogue within ``radius`` degrees, nearest first, with ``distance``.

    ``now`` decides what is out of embargo (default: the clock).
    """
    _check_position(ra, dec, radius)
    public = PublicAt(now or now_utc())
    with archive.engine.connect() as conn, conn.begin():
        release_key = public_release(conn, mission, release, public)
        tab = _public_table(conn, release_key, table, public)
        definition = tab.definition
        if definition.ra is None or definition.dec is None:
            raise NotFoundError(f"table {tab.table_name} has no positions to search")
        t = archive.releases.physical_table(tab)
        ra_c, dec_c = t.c[definition.ra.lower()], t.c[definition.dec.lower()]
        hpx = t.c.get(HEALPIX_COLUMN)
        inside, distance = archive.backend.cone(ra_c, dec_c, hpx, ra=ra, dec=dec, radius=radius)
        data_cols = [c for c in t.c if c.name != HEALPIX_COLUMN]
        query = (
            select(*data_cols, distance.label("distance"))
            .where(inside)
            .order_by(distance)
            .limit(limit + 1)
        )
        rows = [tuple(r) for r in conn.execute(query)]
    names = [c.name for c in data_cols] + ["distance"]
    return ConeResult(release_key, tab.table_name, names, rows[:limit], len(rows) > limit)


def cone_search_observations(
    archive: Archive,
    *,
    mission: str,
    ra: float,
    dec: float,
    radius: float,
    release: str | None = None,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
) -> ConeResult:
    """Public ObsCore rows whose position lies within the cone (as of ``now``)."""
    _check_position(ra, dec, radius)
    public = PublicAt(now or now_utc())
    with archive.engine.connect() as conn, conn.begin():
        release_key = public_release(conn, mission, release, public)
        o = observations
        inside, distance = archive.backend.cone(
            o.c.s_ra, o.c.s_dec, o.c.healpix, ra=ra, dec=dec, radius=radius
        )
        cols = [
            o.c.obs_id,
            o.c.dataproduct_type,
            o.c.target_name,
            o.c.s_ra,
            o.c.s_dec,
            o.c.s_fov,
            o.c.t_min,
            o.c.t_max,
            o.c.em_min,
            o.c.em_max,
            o.c.instrument_name,
            o.c.access_url,
        ]
        query = (
            public.observations(*cols, distance.label("distance"), release_keys=[release_key])
            .where(inside)
            .order_by(distance)
            .limit(limit + 1)
        )
        rows = [tuple(r) for r in conn.execute(query)]
    names = [c.name for c in cols] + ["distance"]
    return ConeResult(release_key, "ivoa.obscore", names, rows[:limit], len(rows) > limit)


def _check_position(ra: float, dec: float, radius: float) -> None:
    if not 0 <= ra < 360 or not -90 <= dec <= 90:
        raise InvalidInputError(
            f"position ({ra}, {dec}) is not ICRS degrees (0<=ra<360, -90<=dec<=90)"
        )
    if not 0 < radius <= 10:
        raise InvalidInputError(f"radius {radius} must be in (0, 10] degrees")


def public_release(
    conn: Connection, mission: str, release: str | None, public: PublicAt | None = None
) -> str:
    """The key of the mission's current release, or of a promoted one named by key or name."""
    key = (public or PublicAt(now_utc())).release(conn, mission, release)
    if key is None:
        named = "" if release is None else f" {release!r}"
        raise NotFoundError(f"mission {mission!r} has no public release{named}")
    return key


def _public_table(conn: Connection, release_key: str, table: str | None, public: PublicAt) -> Any:
    found = public.table_id(conn, release_key, table)
    if found is None:
        # The same message whether the table is absent or embargoed: no leak.
        what = f"table {table!r}" if table else "public catalogue"
        raise NotFoundError(f"release {release_key} has no {what}")
    return ReleaseStore.table_by_id(conn, found)
