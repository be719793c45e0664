"""What a delivery and its run looked like, as the gate sees it: its features.

Belongs here: ``TableFeatures`` and ``DeliveryFeatures`` (sizes, per-column
summaries, the sky cells its positions fall in, instruments and product types,
validation finding counts, stage durations and throughput) with their JSON
form as the ledger stores it, and ``vector`` (the fixed numeric vector the
anomaly model reads). Pure: no storage, no Prefect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from firstlight.domain.profile import ColumnSummary

# HEALPix order of the footprint cells (NESTED, order 5: pixels about 1.8 deg wide).
FOOTPRINT_ORDER = 5


@dataclass(frozen=True)
class TableFeatures:
    rows: int
    columns: dict[str, ColumnSummary]
    key: str | None = None  # the primary key column: ids are not a distribution

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "key": self.key,
            "columns": {name: s.to_json() for name, s in self.columns.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableFeatures:
        return cls(
            rows=int(data["rows"]),
            key=data.get("key"),
            columns={n: ColumnSummary.from_json(s) for n, s in data["columns"].items()},
        )


@dataclass(frozen=True)
class DeliveryFeatures:
    mission: str
    files: int
    bytes: int
    product_types: dict[str, int]
    instruments: list[str]
    tables: dict[str, TableFeatures]
    # Sampled positions per footprint cell (NESTED, FOOTPRINT_ORDER), as string keys for JSON.
    sky_cells: dict[str, int]
    findings: dict[str, int] = field(default_factory=dict)  # severity -> count
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # What the anomaly model scored (``vector``), set by the gate.
    gate_vector: list[float] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "mission": self.mission,
            "files": self.files,
            "bytes": self.bytes,
            "rows": self.rows,
            "product_types": self.product_types,
            "instruments": self.instruments,
            "tables": {name: t.to_json() for name, t in self.tables.items()},
            "sky_cells": self.sky_cells,
            "findings": self.findings,
            "stage_seconds": self.stage_seconds,
            "gate_vector": self.gate_vector,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeliveryFeatures:
        return cls(
            mission=str(data["mission"]),
            files=int(data["files"]),
            bytes=int(data["bytes"]),
            product_types={k: int(v) for k, v in data["product_types"].items()},
            instruments=[str(i) for i in data["instruments"]],
            tables={n: TableFeatures.from_json(t) for n, t in data["tables"].items()},
            sky_cells={str(k): int(v) for k, v in data["sky_cells"].items()},
            findings={k: int(v) for k, v in data.get("findings", {}).items()},
            stage_seconds={k: float(v) for k, v in data.get("stage_seconds", {}).items()},
            gate_vector=[float(v) for v in data.get("gate_vector", [])],
        )


# The anomaly model's inputs, in order (see ``vector``).
VECTOR_NAMES = (
    "log10_rows_ratio",
    "log10_bytes_ratio",
    "files_change",
    "columns_change",
    "max_null_fraction",
    "findings_warning",
    "max_column_psi",
    "footprint_outside",
)


def _columns(features: DeliveryFeatures) -> int:
    return sum(len(t.columns) for t in features.tables.values())


def vector(
    features: DeliveryFeatures,
    reference: DeliveryFeatures | None,
    max_psi: float,
    outside: float,
) -> list[float]:
    """The numbers the anomaly model scores, named by ``VECTOR_NAMES``.

    Sizes are relative to the mission's current release (``reference``; none:
    no change), and ``max_psi`` and ``outside`` come from drift against it, so
    one model serves missions of any size: it sees how far a delivery is from
    its own mission. Stage timings are recorded but left out: they follow the
    machine's load, not the delivery.
    """
    ref = reference or features
    columns = [s for t in features.tables.values() for s in t.columns.values()]
    return [
        math.log10((features.rows + 1) / (ref.rows + 1)),
        math.log10((features.bytes + 1) / (ref.bytes + 1)),
        float(features.files - ref.files),
        float(_columns(features) - _columns(ref)),
        max((c.null_fraction for c in columns), default=0.0),
        float(features.findings.get("warning", 0)),
        max_psi,
        outside,
    ]
