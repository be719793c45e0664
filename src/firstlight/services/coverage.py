"""Sky coverage computed at index time: one MOC per release and embargo group.

A catalogue's cells come from the database without a Python object per row:
where rows carry their HEALPix index (SQLite, Oracle: NESTED, at
``Settings.healpix_order``) the parent cells are one ``SELECT DISTINCT``;
on PostgreSQL the positions stream out by binary COPY into numpy, a million
rows at a time. The release's observations add a cone of ``s_fov``/2 each
(the point where the field is unknown). Cells are of ``Settings.coverage_order``
and kept by ``storage.coverage.CoverageStore``, grouped by the date they
become public, so the pages never show an embargoed footprint early.
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
            for ras, decs in _copied(archive, table, ra.name, dec.name):
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


# A binary COPY row of two non-NULL float8 fields: count, then (length, value) twice.
_COPY_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("ra", ">f8"), ("l2", ">i4"), ("dec", ">f8")])
_COPY_HEADER = 19  # signature (11), flags (4), header extension length (4, zero)
_COPY_BATCH = 1_000_000 * _COPY_ROW.itemsize


def _copied(
    archive: Archive, table: Table, ra: str, dec: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Positions by binary COPY, a million rows at a time (PostgreSQL)."""
    from psycopg import sql

    query = sql.SQL(
        "COPY (SELECT {ra}::float8, {dec}::float8 FROM {table} "
        "WHERE {ra} IS NOT NULL AND {dec} IS NOT NULL) TO STDOUT (FORMAT BINARY)"
    ).format(
        ra=sql.Identifier(ra),
        dec=sql.Identifier(dec),
        table=sql.Identifier(*([table.schema] if table.schema else []), table.name),
    )
    with archive.engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        pending = bytearray()
        header = True
        with raw.cursor() as cur, cur.copy(query) as copy:
            for data in copy:
                pending += data
                if header and len(pending) >= _COPY_HEADER:
                    del pending[:_COPY_HEADER]
                    header = False
                if not header and len(pending) >= _COPY_BATCH:
                    yield _parse(pending, len(pending) // _COPY_ROW.itemsize)
        rows = (len(pending) - 2) // _COPY_ROW.itemsize  # the trailer: a field count of -1
        if rows > 0:
            yield _parse(pending, rows)


def _parse(pending: bytearray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Take ``rows`` rows off the front of ``pending``."""
    size = rows * _COPY_ROW.itemsize
    found = np.frombuffer(bytes(pending[:size]), dtype=_COPY_ROW)
    del pending[:size]
    return found["ra"].astype(float), found["dec"].astype(float)


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
