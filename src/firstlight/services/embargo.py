"""Embargoed products coming out of the dark on their release date.

Rows of an embargoed product are hidden by their date alone (queries compare
``obs_release_date`` and a catalogue's ``release_date`` with now), so they
become visible without a rebuild. Their files wait in the embargo store;
this step, run on a schedule, copies each whose date has passed to the
public store (sha256 checked again) and only then removes it from the
embargo store. A product is thus public at most one schedule interval late.
On PostgreSQL it also grants the query service's role the catalogues whose
date has passed (rows of the archive tables lift by row-level security alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from firstlight.domain.manifest import now_utc
from firstlight.services.context import Context
from firstlight.storage.reader import sync_reader_grants
from firstlight.storage.schema import products, releases


@dataclass(frozen=True)
class Unembargoed:
    release_key: str
    path: str
    storage_key: str


def release_embargoed(ctx: Context) -> list[Unembargoed]:
    """Publish the files of every promoted product whose release date has passed."""
    now = now_utc()
    query = (
        select(products.c.release_key, products.c.path, products.c.storage_key, products.c.sha256)
        .join(releases, releases.c.release_key == products.c.release_key)
        .where(
            releases.c.promoted_at.is_not(None),
            products.c.release_date.is_not(None),
            products.c.release_date <= now,
        )
        .order_by(products.c.id)
    )
    with ctx.archive.engine.connect() as conn:
        due = conn.execute(query).all()
    published: list[Unembargoed] = []
    for row in due:
        source = ctx.embargo_store.local_path(row.storage_key)
        if source is None or not source.is_file():
            continue  # already public (or never embargoed: dated in the past at promotion)
        ctx.public_store.put_file(source, row.storage_key, row.sha256)
        ctx.embargo_store.delete(row.storage_key)
        published.append(Unembargoed(row.release_key, row.path, row.storage_key))
    sync_reader_grants(ctx.archive.engine, ctx.settings.query_role)
    return published
