"""Features of a delivery, gathered on the way: the gate's view of a delivery and its run.

Belongs here: ``FeatureCollector`` (ingest feeds it each catalogue's chunks
and the observation rows; it profiles columns with bounded memory, see
``domain.profile``) and ``complete_run_features`` (the gate adds what is known
only later: finding counts and each stage's duration). Both record to the
ledger's ``delivery_features`` through ``storage.gate_records``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np

from firstlight.domain.features import FOOTPRINT_ORDER, DeliveryFeatures, TableFeatures
from firstlight.domain.ledger import Stage
from firstlight.domain.manifest import Manifest, TableDefinition
from firstlight.domain.profile import ColumnProfiler
from firstlight.domain.release import Observation
from firstlight.domain.sky import healpix_index
from firstlight.services.context import Context
from firstlight.services.ticket import Ticket
from firstlight.storage.gate_records import GateRecords

SAMPLE_ROWS = 4096  # per catalogue: quantiles to ~1 %, memory ~32 KiB per column


class FeatureCollector:
    """Per delivery: one profiler per catalogue, plus the observations' positions."""

    def __init__(self, sample_rows: int = SAMPLE_ROWS) -> None:
        self._sample_rows = sample_rows
        self._profiles: dict[str, tuple[TableDefinition, ColumnProfiler]] = {}
        self._positions: list[tuple[float, float]] = []
        self._instruments: set[str] = set()

    def profiler(self, definition: TableDefinition) -> ColumnProfiler:
        profiler = ColumnProfiler(self._sample_rows, seed=len(self._profiles))
        self._profiles[definition.name] = (definition, profiler)
        return profiler

    def add_observations(self, observations: list[Observation]) -> None:
        for obs in observations:
            if obs.instrument_name:
                self._instruments.add(obs.instrument_name)
            if obs.s_ra is not None and obs.s_dec is not None:
                self._positions.append((obs.s_ra, obs.s_dec))

    def features(self, manifest: Manifest) -> DeliveryFeatures:
        ras: list[Any] = [np.asarray([p[0] for p in self._positions], dtype=np.float64)]
        decs: list[Any] = [np.asarray([p[1] for p in self._positions], dtype=np.float64)]
        tables: dict[str, TableFeatures] = {}
        for name, (definition, profiler) in self._profiles.items():
            tables[name] = TableFeatures(
                rows=profiler.rows, columns=profiler.summaries(), key=definition.primary_key
            )
            if definition.ra and definition.dec:
                ras.append(_sample(profiler, definition.ra))
                decs.append(_sample(profiler, definition.dec))
        ra, dec = np.concatenate(ras), np.concatenate(decs)
        ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
        cells = Counter(int(c) for c in healpix_index(ra[ok], dec[ok], FOOTPRINT_ORDER))
        return DeliveryFeatures(
            mission=manifest.mission,
            files=len(manifest.files),
            bytes=sum(f.size for f in manifest.files),
            product_types=dict(Counter(f.product_type.value for f in manifest.files)),
            instruments=sorted(self._instruments),
            tables=tables,
            sky_cells={str(c): n for c, n in sorted(cells.items())},
        )


def _sample(profiler: ColumnProfiler, column: str) -> Any:
    for name in profiler.summaries():
        if name.lower() == column.lower():
            return profiler.sample_of(name)
    return np.empty(0)


def record_features(ctx: Context, ticket: Ticket, features: DeliveryFeatures) -> None:
    GateRecords(ctx.archive.engine).save_features(ticket.delivery_pk, ticket.attempt, features)


def complete_run_features(ctx: Context, ticket: Ticket) -> DeliveryFeatures | None:
    """Add finding counts and stage durations of this attempt to its recorded features."""
    records = GateRecords(ctx.archive.engine)
    features = records.features(ticket.delivery_pk, ticket.attempt)
    if features is None:
        return None
    ledger = ctx.archive.ledger
    severities = Counter(f.severity.value for f in ledger.findings(ticket.delivery_pk))
    stages: dict[str, float] = {}
    for st in ledger.stages(ticket.delivery_pk):
        if st.attempt == ticket.attempt and st.outcome == "ok" and st.stage is not Stage.ADMIT:
            stages[st.stage.value] = stages.get(st.stage.value, 0.0) + st.seconds
    if "ingest" in stages and stages["ingest"] > 0:
        stages["ingest_rows_per_s"] = features.rows / stages["ingest"]
    completed = replace(features, findings=dict(severities), stage_seconds=stages)
    records.save_features(ticket.delivery_pk, ticket.attempt, completed)
    return completed
