"""The ingest step: a validated delivery becomes a staging release.

Products are recorded with the key they will have in the public store;
observation products become ObsCore rows; each catalogue streams, chunk by
chunk, into a bare table of its own. Nothing here is visible to queries until
promotion; a failure leaves a staging release that quarantine or the next
attempt discards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from firstlight.checks.filters import FilterTable, load_filters
from firstlight.checks.obscore import observation_from_fits
from firstlight.checks.verify import read_manifest
from firstlight.domain.ledger import Stage
from firstlight.domain.manifest import FileFormat, Manifest, ManifestFile
from firstlight.domain.progress import Progress
from firstlight.domain.release import Observation
from firstlight.domain.sky import healpix_index
from firstlight.formats.tables import open_table
from firstlight.services.context import Context
from firstlight.services.features import FeatureCollector, record_features
from firstlight.services.ticket import Ticket
from firstlight.storage.catalogues import Chunk
from firstlight.storage.db import for_writing
from firstlight.storage.releases import ProductRecord


@dataclass(frozen=True)
class IngestSummary:
    release_key: str
    products: int
    observations: int
    table_rows: dict[str, int] = field(default_factory=dict)


def storage_key(manifest: Manifest, path: str) -> str:
    """Immutable, versioned key of a product in the public store."""
    rel = manifest.release
    return f"{manifest.mission}/{rel.name}/{rel.version}/{path}"


def ingest(ctx: Context, ticket: Ticket, progress: Progress | None = None) -> IngestSummary:
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.INGEST):
        manifest, _ = read_manifest(ticket.path)
        key = manifest.release_key
        store = ctx.archive.releases
        store.create_staging(
            key,
            mission=manifest.mission,
            name=manifest.release.name,
            version=manifest.release.version,
            delivery_pk=ticket.delivery_pk,
        )
        ids = store.add_products(key, [_product(manifest, f) for f in manifest.files])
        filters = load_filters(ctx.settings.validations_dir, manifest.mission)
        observations = []
        sources: dict[str, dict[str, str]] = {}
        for f in manifest.files:
            if f.product_type.is_observation and f.format is FileFormat.FITS:
                row, sources[f.path] = _observation_row(
                    ctx, ticket, manifest, f, ids[f.path], filters=filters
                )
                observations.append(row)
        store.add_observations(key, observations)
        ctx.archive.ledger.record_observation_sources(ticket.delivery_pk, ticket.attempt, sources)
        collector = FeatureCollector()
        collector.add_observations([obs for _, obs, _ in observations])
        rows = {
            f.path: _load_catalogue(
                ctx, ticket, manifest, f, ids[f.path], progress=progress, collector=collector
            )
            for f in manifest.files
            if f.table is not None
        }
        record_features(ctx, ticket, collector.features(manifest))
        return IngestSummary(key, len(ids), len(observations), rows)


def _product(manifest: Manifest, f: ManifestFile) -> ProductRecord:
    return ProductRecord(
        path=f.path,
        product_type=f.product_type.value,
        format=f.format.value,
        size=f.size,
        sha256=f.sha256,
        release_date=f.release_date,
        storage_key=storage_key(manifest, f.path),
    )


def _observation_row(
    ctx: Context,
    ticket: Ticket,
    manifest: Manifest,
    f: ManifestFile,
    product_id: int,
    *,
    filters: FilterTable,
) -> tuple[tuple[int, Observation, int | None], dict[str, str]]:
    """The ObsCore row (product id, row, HEALPix index) and where its columns came from."""
    derived = observation_from_fits(
        ticket.path / f.path,
        f.path,
        f.product_type,
        mission=manifest.mission,
        release_key=manifest.release_key,
        access_url=ctx.public_store.url(storage_key(manifest, f.path)),
        release_date=f.release_date,
        declared=f.observation,
        filters=filters,
    )
    obs = derived.observation
    hpx = None
    if obs.s_ra is not None and obs.s_dec is not None:
        hpx = int(healpix_index([obs.s_ra], [obs.s_dec], ctx.settings.healpix_order)[0])
    return (product_id, obs, hpx), dict(derived.sources)


def _load_catalogue(
    ctx: Context,
    ticket: Ticket,
    manifest: Manifest,
    f: ManifestFile,
    product_id: int,
    *,
    progress: Progress | None,
    collector: FeatureCollector,
) -> int:
    assert f.table is not None
    definition = f.table
    backend = ctx.archive.backend
    schema, name = backend.catalogue_location(manifest.release_key, definition.name)
    store = ctx.archive.releases
    store.register_table(
        manifest.release_key,
        product_id=product_id,
        definition=definition,
        physical_schema=schema,
        physical_name=name,
        release_date=f.release_date,
    )
    table = backend.catalogue_table(definition, schema, name)
    reader = open_table(ticket.path / f.path, f.format, definition)
    total = reader.num_rows()
    profiler = collector.profiler(definition)

    def chunks() -> Iterator[Chunk]:
        done = 0
        for chunk in reader.iter_chunks(ctx.settings.ingest_chunk_rows):
            profiler.add(chunk)
            yield chunk
            done += len(next(iter(chunk.values()))) if chunk else 0
            if progress is not None:
                progress(f"{f.path} loaded", done, total)

    # One transaction per catalogue: a table is loaded whole or not at all.
    with for_writing(ctx.archive.engine).begin() as conn:
        backend.create_catalogue(conn, table, definition, total)
        loaded = backend.loader().load(conn, table, definition, chunks())
    store.set_row_count(manifest.release_key, definition.name, loaded)
    return loaded
