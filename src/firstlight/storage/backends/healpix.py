"""The HEALPix way, for databases without a spatial index of their own.

Catalogue rows carry ``_hpx`` (NESTED index at a fine order) under a B-tree;
a cone becomes a few range scans on it plus an exact distance test. Releases
live side by side as prefixed tables. SQLite and Oracle share this.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import ColumnElement, Connection, Index, Table, and_, func, literal, or_

from firstlight.domain.manifest import TableDefinition
from firstlight.domain.release import CatalogueTable
from firstlight.domain.sky import cone_ranges
from firstlight.storage import fulltext
from firstlight.storage.catalogues import HEALPIX_COLUMN, catalogue_table, prefixed_name


class HealpixBackend:
    name = "healpix"

    def __init__(self, healpix_order: int) -> None:
        self.healpix_order = healpix_order

    def catalogue_location(self, release_key: str, table_name: str) -> tuple[str | None, str]:
        return None, prefixed_name(release_key, table_name)

    def catalogue_table(self, definition: TableDefinition, schema: str | None, name: str) -> Table:
        return catalogue_table(definition, name, schema=schema, healpix=True)

    def create_catalogue(
        self, conn: Connection, table: Table, definition: TableDefinition, rows: int | None
    ) -> None:
        table.create(conn)

    def prepare_release(self, conn: Connection, release_key: str) -> None:
        return None

    def drop_release(self, conn: Connection, release_key: str, tables: list[Table]) -> None:
        for table in tables:
            table.drop(conn, checkfirst=True)

    def build_catalogue_indexes(
        self, conn: Connection, table: Table, definition: TableDefinition
    ) -> None:
        if definition.primary_key is not None:
            key = table.c[definition.primary_key.lower()]
            Index(f"ux_{table.name}"[:60], key, unique=True).create(conn)
        if HEALPIX_COLUMN in table.c:
            Index(f"ix_{table.name}"[:57] + "_hp", table.c[HEALPIX_COLUMN]).create(conn)
        self.gather_statistics(conn, table)

    def gather_statistics(self, conn: Connection, table: Table) -> None:
        raise NotImplementedError

    def index_observations(self, conn: Connection, release_key: str) -> None:
        return None

    def rebuild_indexes(self, conn: Connection, tables: list[Table], release_key: str) -> None:
        for table in tables:
            self.reindex(conn, table)
            self.gather_statistics(conn, table)
        self.index_observations(conn, release_key)

    def reindex(self, conn: Connection, table: Table) -> None:
        raise NotImplementedError

    def publish_current(self, conn: Connection, mission: str, tables: list[CatalogueTable]) -> None:
        return None  # queries follow current_releases; no views to re-point

    def text_match(self, release_key: str, text: str) -> ColumnElement[bool]:
        return fulltext.like_match(text)

    def cone(
        self,
        ra_col: Any,
        dec_col: Any,
        hpx_col: Any | None,
        *,
        ra: float,
        dec: float,
        radius: float,
    ) -> tuple[ColumnElement[bool], ColumnElement[float]]:
        distance = self.distance(ra_col, dec_col, ra, dec)
        if hpx_col is None:
            return distance <= radius, distance
        ranges = cone_ranges(ra, dec, radius, self.healpix_order)
        prefilter = or_(*(and_(hpx_col >= lo, hpx_col <= hi) for lo, hi in ranges))
        return and_(prefilter, distance <= radius), distance

    def distance(self, ra_col: Any, dec_col: Any, ra: float, dec: float) -> ColumnElement[float]:
        """Haversine in SQL (degrees): exact at small angles, any SQL with trigonometry."""
        rad = math.pi / 180
        d1, r1 = literal(dec * rad), literal(ra * rad)
        d2, r2 = dec_col * rad, ra_col * rad
        h = func.power(func.sin((d2 - d1) / 2), 2) + func.cos(d1) * func.cos(d2) * func.power(
            func.sin((r2 - r1) / 2), 2
        )
        return func.asin(func.sqrt(func.least(h, 1.0))) * (2 / rad)
