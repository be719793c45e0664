"""Sky coverage computed at index time: one MOC per release and embargo group.

Positions are read in chunks (bounded memory) from each catalogue's position
columns and from the release's observations (a cone of ``s_fov``/2 where the
field is known), reduced to HEALPix cells of ``Settings.coverage_order`` and
kept by ``storage.coverage.CoverageStore``, grouped by the date they become
public, so the pages never show an embargoed footprint early.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import astropy.units as u
import numpy as np
from astropy.coordinates import Latitude, Longitude
from mocpy import MOC
from sqlalchemy import select

from firstlight.storage.archive import Archive
from firstlight.storage.coverage import CoverageStore
from firstlight.storage.schema import observations

_CHUNK = 100_000


def compute_coverage(archive: Archive, release_key: str, order: int) -> dict[datetime | None, MOC]:
    """The release's coverage per embargo group (date it becomes public; None: at once)."""
    mocs: dict[datetime | None, MOC] = {}
    for tab in archive.releases.tables(release_key):
        definition = tab.definition
        if not definition.ra or not definition.dec:
            continue
        table = archive.releases.physical_table(tab)
        query = select(table.c[definition.ra.lower()], table.c[definition.dec.lower()])
        for ra, dec in _chunks(archive, query):
            _add(mocs, tab.release_date, _points(ra, dec, order))
    for when, moc in _observation_coverage(archive, release_key, order).items():
        _add(mocs, when, moc)
    return mocs


def _add(mocs: dict[datetime | None, MOC], when: datetime | None, moc: MOC) -> None:
    mocs[when] = mocs[when].union(moc) if when in mocs else moc


def record_coverage(archive: Archive, store: CoverageStore, release_key: str, order: int) -> None:
    store.save(release_key, compute_coverage(archive, release_key, order))


def _chunks(archive: Archive, query: object) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    with archive.engine.connect() as conn:
        result = conn.execution_options(yield_per=_CHUNK).execute(query)  # type: ignore[call-overload]
        for part in result.partitions(_CHUNK):
            pos = np.array([(r[0], r[1]) for r in part], dtype=float).reshape(-1, 2)
            yield pos[:, 0], pos[:, 1]


def _valid(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ok: np.ndarray = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    return ok


def _points(ra: np.ndarray, dec: np.ndarray, order: int) -> MOC:
    ok = _valid(ra, dec)
    if not ok.any():
        return MOC.new_empty(order)
    return MOC.from_lonlat(
        Longitude(ra[ok] % 360, unit=u.deg), Latitude(dec[ok], unit=u.deg), max_norder=order
    )


def _observation_coverage(
    archive: Archive, release_key: str, order: int
) -> dict[datetime | None, MOC]:
    query = (
        select(
            observations.c.obs_release_date,
            observations.c.s_ra,
            observations.c.s_dec,
            observations.c.s_fov,
        )
        .where(observations.c.release_key == release_key)
        .order_by(observations.c.id)
    )
    rows: dict[datetime | None, list[tuple[float, float, float]]] = {}
    with archive.engine.connect() as conn:
        for r in conn.execute(query):
            if r.s_ra is None or r.s_dec is None:
                continue
            fov = float(r.s_fov) if r.s_fov and np.isfinite(r.s_fov) else 0.0
            rows.setdefault(r.obs_release_date, []).append((float(r.s_ra), float(r.s_dec), fov))
    return {when: _cones(found, order) for when, found in rows.items()}


def _cones(found: Iterable[tuple[float, float, float]], order: int) -> MOC:
    arr = np.array(list(found), dtype=float).reshape(-1, 3)
    arr = arr[_valid(arr[:, 0], arr[:, 1])]
    points = arr[arr[:, 2] <= 0]
    cones = arr[arr[:, 2] > 0]
    parts: list[MOC] = []
    if len(points):
        parts.append(_points(points[:, 0], points[:, 1], order))
    if len(cones):
        parts.append(
            MOC.from_cones(
                Longitude(cones[:, 0] % 360, unit=u.deg),
                Latitude(cones[:, 1], unit=u.deg),
                radius=np.minimum(cones[:, 2] / 2, 90) * u.deg,
                max_depth=order,
                union_strategy="small_cones",
            )
        )
    if not parts:
        return MOC.new_empty(order)
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
