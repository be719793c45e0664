"""Sky coverage computed at index time: one MOC per release and embargo group.

A catalogue's cells come from the database without a Python object per row:
where rows carry their HEALPix index (SQLite, Oracle: NESTED, at
``Settings.healpix_order``) the parent cells are one ``SELECT DISTINCT``;
on PostgreSQL the positions come as two arrays per range of heap pages. The
release's observations add a cone of ``s_fov``/2 each (the point where the
field is unknown). Cells are of ``Settings.coverage_order`` and kept by
``storage.coverage.CoverageStore``, grouped by the date they become public,
so the pages never show an embargoed footprint early.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import astropy.units as u
import numpy as np
from astropy.coordinates import Latitude, Longitude
from mocpy import MOC
from sqlalchemy import Table, select

from firstlight.storage.archive import Archive
from firstlight.storage.catalogues import HEALPIX_COLUMN
from firstlight.storage.coverage import CoverageStore
from firstlight.storage.schema import observations

_CHUNK = 100_000


def compute_coverage(
    archive: Archive, release_key: str, order: int, *, healpix_order: int
) -> dict[datetime | None, MOC]:
    """The release's coverage per embargo group (date it becomes public; None: at once)."""
    mocs: dict[datetime | None, MOC] = {}
    for tab in archive.releases.tables(release_key):
        definition = tab.definition
        if not definition.ra or not definition.dec:
            continue
        table = archive.releases.physical_table(tab)
        ra, dec = table.c[definition.ra.lower()], table.c[definition.dec.lower()]
        if HEALPIX_COLUMN in table.c and healpix_order >= order:
            _add(mocs, tab.release_date, _stored_cells(archive, table, order, healpix_order))
        elif archive.engine.dialect.name == "postgresql":
            for ras, decs in _by_pages(archive, table, ra.name, dec.name):
                _add(mocs, tab.release_date, _points(ras, decs, order))
        else:
            for ras, decs in _chunks(archive, select(ra, dec)):
                _add(mocs, tab.release_date, _points(ras, decs, order))
    for when, moc in _observation_coverage(archive, release_key, order).items():
        _add(mocs, when, moc)
    return mocs


def _add(mocs: dict[datetime | None, MOC], when: datetime | None, moc: MOC) -> None:
    mocs[when] = mocs[when].union(moc) if when in mocs else moc


def record_coverage(
    archive: Archive, store: CoverageStore, release_key: str, order: int, *, healpix_order: int
) -> None:
    store.save(
        release_key, compute_coverage(archive, release_key, order, healpix_order=healpix_order)
    )


def _stored_cells(archive: Archive, table: Table, order: int, healpix_order: int) -> MOC:
    """The parents (at ``order``) of the rows' stored NESTED indexes: one DISTINCT."""
    parent = table.c[HEALPIX_COLUMN] // (4 ** (healpix_order - order))
    query = select(parent).where(table.c[HEALPIX_COLUMN].is_not(None)).distinct()
    with archive.engine.connect() as conn:
        cells = np.array([int(c) for c in conn.execute(query).scalars()], dtype=np.uint64)
    if len(cells) == 0:
        return MOC.new_empty(order)
    return MOC.from_healpix_cells(cells, np.full(len(cells), order, dtype=np.uint8), order)


_PAGES = 10_000  # heap pages a PostgreSQL read covers: some 0.5 to 1 million catalogue rows


def _by_pages(
    archive: Archive, table: Table, ra: str, dec: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Positions as two arrays per range of heap pages (PostgreSQL, a TID range scan each).

    One ``array_agg`` per column and range keeps Python to a few objects per
    range (a row per Python object, or COPY's one row per libpq call, is ten
    times slower); a partitioned catalogue's ranges cover its largest partition.
    """
    from psycopg import sql

    name = sql.Identifier(*([table.schema] if table.schema else []), table.name)
    read = sql.SQL(
        "SELECT array_agg({ra}::float8), array_agg({dec}::float8) FROM {t} "
        "WHERE ctid >= %s::tid AND ctid < %s::tid AND {ra} IS NOT NULL AND {dec} IS NOT NULL"
    ).format(ra=sql.Identifier(ra), dec=sql.Identifier(dec), t=name)
    with archive.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        size = sql.SQL(
            "SELECT greatest(pg_relation_size({t}::regclass), coalesce((SELECT max("
            "pg_relation_size(relid)) FROM pg_partition_tree({t}::regclass)), 0)) "
            "/ current_setting('block_size')::bigint"
        ).format(t=sql.Literal(name.as_string(raw)))
        with raw.cursor(binary=True) as cur:
            found = cur.execute(size).fetchone()
            pages = int(found[0]) if found and found[0] is not None else 0
            for first in range(0, pages + 1, _PAGES):
                got = cur.execute(read, (f"({first},0)", f"({first + _PAGES},0)")).fetchone()
                if got is not None and got[0] is not None:
                    yield np.asarray(got[0], dtype=float), np.asarray(got[1], dtype=float)


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
