"""Releases in the archive database: staging, promotion, discarding, listing.

A release is built in staging (rows tagged with its key, catalogue tables of
its own) where no query looks. Promotion is one transaction that moves the
mission's ``current_releases`` pointer; queries read the pointer and the data
in one transaction, so they see the old release or the new one, never a mix.

The pointer only moves forward in ``release_order`` (name, then version):
promoting an older release makes it public by its key but leaves the newer
one current, whatever order runs finish in. Only ``rollback`` moves it back.
``promote_in`` takes the caller's connection, so the promotion step commits
the switch together with the ledger's terminal state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, Table, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from firstlight.domain.manifest import TableDefinition, now_utc
from firstlight.domain.release import (
    CatalogueTable,
    Observation,
    Release,
    ReleaseState,
    release_order,
)
from firstlight.errors import ConflictError
from firstlight.storage.backends import Backend
from firstlight.storage.db import for_writing
from firstlight.storage.schema import (
    current_releases,
    observations,
    products,
    release_tables,
    releases,
)


class ReleaseStateError(ConflictError):
    """An operation that the release's state forbids (e.g. changing a promoted one)."""


@dataclass(frozen=True)
class Switch:
    """What a promotion did to its mission's current release."""

    release_key: str
    previous: str | None  # the mission's current release before (None: it had none)
    current: str  # the current release after: this one, or a newer one that stays
    already: bool = False  # promoted by an earlier attempt: nothing changed

    @property
    def made_current(self) -> bool:
        return self.current == self.release_key and self.previous != self.release_key


@dataclass(frozen=True)
class ProductRecord:
    path: str
    product_type: str
    format: str
    size: int
    sha256: str
    release_date: datetime | None
    storage_key: str


class ReleaseStore:
    def __init__(self, engine: Engine, backend: Backend) -> None:
        self._engine = engine
        self._writer = for_writing(engine)
        self._backend = backend

    # -- building a release -------------------------------------------------

    def create_staging(
        self, release_key: str, *, mission: str, name: str, version: str, delivery_pk: int
    ) -> None:
        """Start a release; leftovers of an earlier failed attempt are discarded first."""
        existing = self.get(release_key)
        if existing is not None:
            if existing.state is not ReleaseState.STAGING:
                raise ReleaseStateError(f"release {release_key} is promoted and immutable")
            self.discard(release_key)
        with self._writer.begin() as conn:
            conn.execute(
                insert(releases).values(
                    release_key=release_key,
                    mission=mission,
                    name=name,
                    version=version,
                    delivery=delivery_pk,
                    state=ReleaseState.STAGING,
                    created_at=now_utc(),
                )
            )
            self._backend.prepare_release(conn, release_key)

    def add_products(self, release_key: str, records: list[ProductRecord]) -> dict[str, int]:
        """Insert the release's products; returns their ids by path."""
        ids: dict[str, int] = {}
        with self._writer.begin() as conn:
            self._require_staging(conn, release_key)
            for rec in records:
                result = conn.execute(
                    insert(products).values(
                        release_key=release_key,
                        path=rec.path,
                        product_type=rec.product_type,
                        format=rec.format,
                        size=rec.size,
                        sha256=rec.sha256,
                        release_date=rec.release_date,
                        storage_key=rec.storage_key,
                    )
                )
                ids[rec.path] = _inserted_id(result)
        return ids

    def add_observations(
        self, release_key: str, rows: list[tuple[int, Observation, int | None]]
    ) -> None:
        """Insert ObsCore rows: (product id, observation, HEALPix index)."""
        if not rows:
            return
        values = [
            {**obs.__dict__, "release_key": release_key, "product": pid, "healpix": hpx}
            for pid, obs, hpx in rows
        ]
        with self._writer.begin() as conn:
            self._require_staging(conn, release_key)
            conn.execute(insert(observations), values)

    def register_table(
        self,
        release_key: str,
        *,
        product_id: int,
        definition: TableDefinition,
        physical_schema: str | None,
        physical_name: str,
        release_date: datetime | None,
    ) -> None:
        with self._writer.begin() as conn:
            self._require_staging(conn, release_key)
            conn.execute(
                insert(release_tables).values(
                    release_key=release_key,
                    table_name=definition.name,
                    physical_schema=physical_schema,
                    physical_name=physical_name,
                    product=product_id,
                    definition=definition.model_dump(mode="json"),
                    release_date=release_date,
                )
            )

    def set_row_count(self, release_key: str, table_name: str, rows: int) -> None:
        with self._writer.begin() as conn:
            conn.execute(
                update(release_tables)
                .where(
                    release_tables.c.release_key == release_key,
                    release_tables.c.table_name == table_name,
                )
                .values(row_count=rows)
            )

    def mark_indexed(self, release_key: str) -> None:
        now = now_utc()
        with self._writer.begin() as conn:
            self._require_staging(conn, release_key)
            conn.execute(
                update(release_tables)
                .where(release_tables.c.release_key == release_key)
                .values(indexed_at=now)
            )
            conn.execute(
                update(releases).where(releases.c.release_key == release_key).values(indexed_at=now)
            )

    def mark_stored(self, product_id: int) -> None:
        with self._writer.begin() as conn:
            conn.execute(
                update(products).where(products.c.id == product_id).values(stored_at=now_utc())
            )

    # -- the switch ---------------------------------------------------------

    def promote(self, release_key: str) -> Switch:
        """Promote in a transaction of its own (see ``promote_in``)."""
        with self._writer.begin() as conn:
            return self.promote_in(conn, release_key)

    def promote_in(self, conn: Connection, release_key: str) -> Switch:
        """Make the release public, and current unless a newer one already is.

        Runs in the caller's transaction. The mission's pointer row is locked
        while deciding, so concurrent promotions of one mission take turns and
        the newest wins whatever order they commit in.
        """
        now = now_utc()
        row = conn.execute(
            select(releases).where(releases.c.release_key == release_key).with_for_update()
        ).one()
        if row.indexed_at is None:
            raise ReleaseStateError(f"release {release_key} is not indexed yet")
        unstored = conn.execute(
            select(products.c.path).where(
                products.c.release_key == release_key, products.c.stored_at.is_(None)
            )
        ).first()
        if unstored is not None:
            raise ReleaseStateError(f"release {release_key}: {unstored.path} is not stored")
        previous = self._current_locked(conn, row.mission)
        if row.state == ReleaseState.PROMOTED:
            # A rerun after the switch: already done.
            current = release_key if previous is None else previous
            return Switch(release_key, previous, current, already=True)
        conn.execute(
            update(releases)
            .where(releases.c.release_key == release_key)
            .values(state=ReleaseState.PROMOTED, promoted_at=now)
        )
        if previous is None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(current_releases).values(
                            mission=row.mission, release_key=release_key, switched_at=now
                        )
                    )
            except IntegrityError:  # a concurrent first promotion of the mission won
                previous = self._current_locked(conn, row.mission)
            else:
                self._backend.publish_current(conn, row.mission, self._tables(conn, release_key))
                return Switch(release_key, None, release_key)
        assert previous is not None
        if self._newer(conn, row, previous):
            conn.execute(
                update(current_releases)
                .where(current_releases.c.mission == row.mission)
                .values(release_key=release_key, previous_release_key=previous, switched_at=now)
            )
            self._backend.publish_current(conn, row.mission, self._tables(conn, release_key))
            return Switch(release_key, previous, release_key)
        # Older than the current one: public by its key only. Publishing the
        # current one again (same views) is how the backend grants the new schema.
        self._backend.publish_current(conn, row.mission, self._tables(conn, previous))
        return Switch(release_key, previous, previous)

    @staticmethod
    def _current_locked(conn: Connection, mission: str) -> str | None:
        key = conn.execute(
            select(current_releases.c.release_key)
            .where(current_releases.c.mission == mission)
            .with_for_update()
        ).scalar_one_or_none()
        return None if key is None else str(key)

    @staticmethod
    def _newer(conn: Connection, row: Row[Any], than_key: str) -> bool:
        other = conn.execute(
            select(releases.c.name, releases.c.version).where(releases.c.release_key == than_key)
        ).one()
        return release_order(row.name, row.version) > release_order(other.name, other.version)

    def rollback(self, mission: str) -> tuple[str, str]:
        """Make the promoted release just before the current one (in release order) current."""
        with self._writer.begin() as conn:
            key = self._current_locked(conn, mission)
            if key is None:
                raise ReleaseStateError(f"mission {mission!r} has no current release")
            promoted = conn.execute(
                select(releases.c.release_key, releases.c.name, releases.c.version).where(
                    releases.c.mission == mission, releases.c.promoted_at.is_not(None)
                )
            ).all()
            ordered = sorted(promoted, key=lambda r: release_order(r.name, r.version))
            position = [r.release_key for r in ordered].index(key)
            if position == 0:
                which = "only" if len(ordered) == 1 else "oldest"
                raise ReleaseStateError(
                    f"mission {mission!r}: {key} is the {which} promoted release"
                )
            target = str(ordered[position - 1].release_key)
            conn.execute(
                update(current_releases)
                .where(current_releases.c.mission == mission)
                .values(release_key=target, previous_release_key=key, switched_at=now_utc())
            )
            self._backend.publish_current(conn, mission, self._tables(conn, target))
            return key, target

    # -- removing a failed build --------------------------------------------

    def discard(self, release_key: str) -> None:
        """Remove everything of a staging release; a promoted one is refused."""
        with self._writer.begin() as conn:
            row = conn.execute(
                select(releases.c.state).where(releases.c.release_key == release_key)
            ).first()
            if row is None:
                return
            if row.state != ReleaseState.STAGING:
                raise ReleaseStateError(f"release {release_key} is promoted and immutable")
            tables = [self.physical_table(t) for t in self._tables(conn, release_key)]
            self._backend.drop_release(conn, release_key, tables)
            for table in (observations, release_tables, products):
                conn.execute(delete(table).where(table.c.release_key == release_key))
            conn.execute(delete(releases).where(releases.c.release_key == release_key))

    # -- reading ------------------------------------------------------------

    def get(self, release_key: str) -> Release | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                _release_query().where(releases.c.release_key == release_key)
            ).first()
        return None if row is None else _release(row)

    def list_releases(self, mission: str | None = None) -> list[Release]:
        query = _release_query().order_by(releases.c.mission, releases.c.created_at)
        if mission:
            query = query.where(releases.c.mission == mission)
        with self._engine.connect() as conn:
            return [_release(r) for r in conn.execute(query)]

    def tables(self, release_key: str) -> list[CatalogueTable]:
        with self._engine.connect() as conn:
            return self._tables(conn, release_key)

    @staticmethod
    def _tables(conn: Any, release_key: str) -> list[CatalogueTable]:
        rows = conn.execute(
            select(release_tables)
            .where(release_tables.c.release_key == release_key)
            .order_by(release_tables.c.id)
        ).all()
        return [_catalogue(r) for r in rows]

    def physical_table(self, tab: CatalogueTable) -> Table:
        """The SQLAlchemy table holding a catalogue's rows."""
        return self._backend.catalogue_table(tab.definition, tab.physical_schema, tab.physical_name)

    def products(self, release_key: str) -> list[tuple[int, ProductRecord]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(products)
                .where(products.c.release_key == release_key)
                .order_by(products.c.id)
            ).all()
        return [
            (
                r.id,
                ProductRecord(
                    path=r.path,
                    product_type=r.product_type,
                    format=r.format,
                    size=r.size,
                    sha256=r.sha256,
                    release_date=r.release_date,
                    storage_key=r.storage_key,
                ),
            )
            for r in rows
        ]

    @staticmethod
    def table_by_id(conn: Any, table_id: int) -> CatalogueTable:
        """Read inside the caller's transaction (queries keep one snapshot)."""
        row = conn.execute(select(release_tables).where(release_tables.c.id == table_id)).one()
        return _catalogue(row)

    @staticmethod
    def _require_staging(conn: Any, release_key: str) -> None:
        state = conn.execute(
            select(releases.c.state).where(releases.c.release_key == release_key)
        ).scalar_one_or_none()
        if state != ReleaseState.STAGING:
            raise ReleaseStateError(f"release {release_key} is not in staging (state {state})")


def _inserted_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _release_query() -> Any:
    # A CASE, not a bare boolean: Oracle before 23ai has no booleans in a select list.
    is_current = case((current_releases.c.release_key.is_not(None), 1), else_=0)
    return select(releases, is_current.label("is_current")).outerjoin(
        current_releases, current_releases.c.release_key == releases.c.release_key
    )


def _release(row: Row[Any]) -> Release:
    return Release(
        release_key=row.release_key,
        mission=row.mission,
        name=row.name,
        version=row.version,
        state=ReleaseState(row.state),
        created_at=row.created_at,
        promoted_at=row.promoted_at,
        current=bool(row.is_current),
    )


def _catalogue(row: Row[Any]) -> CatalogueTable:
    return CatalogueTable(
        release_key=row.release_key,
        table_name=row.table_name,
        physical_schema=row.physical_schema,
        physical_name=row.physical_name,
        definition=TableDefinition.model_validate(row.definition),
        row_count=row.row_count,
        release_date=row.release_date,
    )
