"""Finding observations by name: full text over target and instrument names.

Served by each backend's text index (FTS5 on SQLite, the GIN index on
PostgreSQL, a scan on Oracle); public rows of the current (or a named)
release only, read in one transaction like the cone search.
"""

from __future__ import annotations

from datetime import datetime

from firstlight.domain.manifest import now_utc
from firstlight.query.cone import DEFAULT_LIMIT, ConeResult, public_release
from firstlight.storage.archive import Archive
from firstlight.storage.schema import observations
from firstlight.storage.visibility import PublicAt

COLUMNS = (
    "obs_id",
    "dataproduct_type",
    "target_name",
    "instrument_name",
    "s_ra",
    "s_dec",
    "t_min",
    "access_url",
)


def search_observations(
    archive: Archive,
    *,
    mission: str,
    text: str,
    release: str | None = None,
    limit: int = DEFAULT_LIMIT,
    now: datetime | None = None,
) -> ConeResult:
    """Public observations whose target or instrument names hold every word of ``text``."""
    o = observations
    cols = [o.c[name] for name in COLUMNS]
    public = PublicAt(now or now_utc())
    with archive.engine.connect() as conn, conn.begin():
        release_key = public_release(conn, mission, release, public)
        query = (
            public.observations(*cols, release_keys=[release_key])
            .where(archive.backend.text_match(release_key, text))
            .order_by(o.c.obs_id)
            .limit(limit + 1)
        )
        rows = [tuple(r) for r in conn.execute(query)]
    return ConeResult(release_key, "ivoa.obscore", list(COLUMNS), rows[:limit], len(rows) > limit)
