"""What is public at one instant: the one reader every public door asks.

TAP (its tables and ObsCore), cone search, SIA, DataLink, ``/files`` and the
name search decide what a scientist may see through ``PublicAt``; nothing
outside this module writes the rule by hand. The rule, at instant ``now``:

- a release is public once promoted (``promoted_at`` set); a mission's
  *current* release is the one ``current_releases`` names;
- a catalogue table is public when its release is and its ``release_date``
  is unset or not after ``now``;
- an observation (an ObsCore row) likewise, by ``obs_release_date``;
- a product (a file) likewise, by its own ``release_date``.

Every read takes the caller's connection, so one query reads what is public
and the rows in one transaction (one snapshot: never half a promotion).
Conditions are SQLAlchemy expressions; ``query.adql`` renders the same rule
for ObsCore from ``ObservationRule`` (its subqueries are sqlglot trees).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Row, Select, Table, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from firstlight.storage.schema import (
    current_releases,
    observations,
    products,
    release_tables,
    releases,
)


@dataclass(frozen=True)
class PublicRelease:
    release_key: str
    mission: str
    name: str
    version: str
    promoted_at: datetime
    current: bool


@dataclass(frozen=True)
class PublicProduct:
    """A public product's file: where it is kept and what it holds."""

    storage_key: str
    size: int
    format: str
    product_type: str
    access_format: str | None  # the observation's declared MIME type, when found by DID


@dataclass(frozen=True)
class PublicAt:
    """What is public at ``now`` (aware): conditions, and reads in the caller's connection."""

    now: datetime

    # -- conditions -----------------------------------------------------------

    def released(self, date: ColumnElement[Any] | Column[Any]) -> ColumnElement[bool]:
        """A release date that is unset or has passed."""
        return or_(date.is_(None), date <= self.now)

    @staticmethod
    def promoted(release_key: ColumnElement[Any] | Column[Any]) -> ColumnElement[bool]:
        """``release_key`` names a promoted release."""
        keys = select(releases.c.release_key).where(releases.c.promoted_at.is_not(None))
        return release_key.in_(keys.scalar_subquery())

    def observation_public(self, o: Table = observations) -> ColumnElement[bool]:
        return self.promoted(o.c.release_key) & self.released(o.c.obs_release_date)

    def product_public(self, p: Table = products) -> ColumnElement[bool]:
        return self.promoted(p.c.release_key) & self.released(p.c.release_date)

    def table_public(self, t: Table = release_tables) -> ColumnElement[bool]:
        return self.promoted(t.c.release_key) & self.released(t.c.release_date)

    # -- releases -------------------------------------------------------------

    def releases(self, conn: Connection, mission: str | None = None) -> list[PublicRelease]:
        """Promoted releases, by mission then promotion time (the current ones flagged)."""
        query = (
            select(
                releases.c.release_key,
                releases.c.mission,
                releases.c.name,
                releases.c.version,
                releases.c.promoted_at,
                current_releases.c.release_key.label("current_key"),
            )
            .outerjoin(current_releases, current_releases.c.release_key == releases.c.release_key)
            .where(releases.c.promoted_at.is_not(None))
            .order_by(releases.c.mission, releases.c.promoted_at)
        )
        if mission is not None:
            query = query.where(releases.c.mission == mission)
        return [
            PublicRelease(
                release_key=str(r.release_key),
                mission=str(r.mission),
                name=str(r.name),
                version=str(r.version),
                promoted_at=r.promoted_at,
                current=r.current_key is not None,
            )
            for r in conn.execute(query)
        ]

    @staticmethod
    def current_release(conn: Connection, mission: str) -> str | None:
        """The key of the mission's current release (None if it has none)."""
        key = conn.execute(
            select(current_releases.c.release_key).where(current_releases.c.mission == mission)
        ).scalar_one_or_none()
        return None if key is None else str(key)

    def release(self, conn: Connection, mission: str, release: str | None) -> str | None:
        """The mission's current release, or a promoted one named by key or name."""
        if not _plain(mission, release or ""):
            return None
        if release is None:
            return self.current_release(conn, mission)
        key = (
            conn.execute(
                select(releases.c.release_key)
                .where(
                    releases.c.mission == mission,
                    or_(releases.c.release_key == release, releases.c.name == release),
                    releases.c.promoted_at.is_not(None),
                )
                .order_by(releases.c.promoted_at.desc())
            )
            .scalars()
            .first()
        )
        return None if key is None else str(key)

    def fingerprint(self, conn: Connection) -> tuple[Any, ...]:
        """What changes whenever the public tables do, read in one statement.

        Promoted releases are immutable, so their tables change only by a promotion (count,
        latest promotion), a switch of a current release (count, latest switch), a catalogue
        table added or removed (count, highest id) or a release date passing (count of
        tables released by ``now``). Equal fingerprints in two snapshots: equal tables.
        """
        r, c, t = releases, current_releases, release_tables
        promoted = r.c.promoted_at.is_not(None)
        row = conn.execute(
            select(
                select(func.count()).select_from(r).where(promoted).scalar_subquery(),
                select(func.max(r.c.promoted_at)).where(promoted).scalar_subquery(),
                select(func.count()).select_from(c).scalar_subquery(),
                select(func.max(c.c.switched_at)).scalar_subquery(),
                select(func.count()).select_from(t).scalar_subquery(),
                select(func.max(t.c.id)).scalar_subquery(),
                select(func.count())
                .select_from(t)
                .where(t.c.release_date <= self.now)
                .scalar_subquery(),
            )
        ).one()
        return tuple(row)

    # -- catalogue tables -------------------------------------------------------

    def tables(self, conn: Connection, release_keys: Sequence[str] | None = None) -> list[Row[Any]]:
        """``release_tables`` rows public now (of these releases), in creation order."""
        query = select(release_tables).where(self.table_public()).order_by(release_tables.c.id)
        if release_keys is not None:
            query = query.where(release_tables.c.release_key.in_(list(release_keys)))
        return list(conn.execute(query).all())

    def table_id(self, conn: Connection, release_key: str, table: str | None) -> int | None:
        """The id of a public table of the release (its first one when ``table`` is None)."""
        if not _plain(release_key, table or ""):
            return None
        query = (
            select(release_tables.c.id)
            .where(release_tables.c.release_key == release_key, self.table_public())
            .order_by(release_tables.c.id)
        )
        if table is not None:
            query = query.where(release_tables.c.table_name == table)
        found = conn.execute(query).scalars().first()
        return None if found is None else int(found)

    # -- observations -----------------------------------------------------------

    def observations(
        self, *columns: ColumnElement[Any], release_keys: Sequence[str] | None = None
    ) -> Select[Any]:
        """SELECT ``columns`` of public observations (of these releases, else all public)."""
        query = select(*columns).where(self.observation_public())
        if release_keys is not None:
            query = query.where(observations.c.release_key.in_(list(release_keys)))
        return query

    def observation_rule(self, conn: Connection, *, current_only: bool) -> ObservationRule:
        """The ObsCore rule as data, for renderers that build their own SQL (ADQL)."""
        keys = [r.release_key for r in self.releases(conn) if r.current or not current_only]
        return ObservationRule(release_keys=tuple(sorted(keys)), now=self.now)

    # -- products (files) -------------------------------------------------------

    def product_by_did(self, conn: Connection, did: str) -> PublicProduct | None:
        """The file of the public observation with publisher DID ``did``, if it is public."""
        if not _plain(did):
            return None
        o, p = observations, products
        row = conn.execute(
            select(p.c.storage_key, p.c.size, p.c.format, p.c.product_type, o.c.access_format)
            .select_from(o.join(p, p.c.id == o.c.product))
            .where(o.c.obs_publisher_did == did)
            .where(self.observation_public(o), self.product_public(p))
        ).first()
        return None if row is None else _product(row, row.access_format)

    def product_by_key(self, conn: Connection, storage_key: str) -> PublicProduct | None:
        """The public product stored under ``storage_key``, if there is one."""
        if not _plain(storage_key):
            return None
        p = products
        row = conn.execute(
            select(p.c.storage_key, p.c.size, p.c.format, p.c.product_type)
            .where(p.c.storage_key == storage_key, self.product_public(p))
            .order_by(p.c.id)
        ).first()
        return None if row is None else _product(row, None)


@dataclass(frozen=True)
class ObservationRule:
    """Observations public at ``now``: of these releases, ``obs_release_date`` unset or passed."""

    release_keys: tuple[str, ...]
    now: datetime


def _plain(*names: str) -> bool:
    """Names a user sent that can name something stored: no NUL or other control characters.

    PostgreSQL refuses NUL in text outright (an error, not "not found").
    """
    return all(ch >= " " and ch != "\x7f" for name in names for ch in name)


def _product(row: Any, access_format: str | None) -> PublicProduct:
    return PublicProduct(
        storage_key=str(row.storage_key),
        size=int(row.size),
        format=str(row.format),
        product_type=str(row.product_type),
        access_format=access_format,
    )
