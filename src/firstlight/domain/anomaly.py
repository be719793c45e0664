"""The anomaly model: how unusual a delivery's vector is against past normal ones.

Belongs here: ``fit`` (a model from the vectors of deliveries that went
public), ``AnomalyModel.score`` and ``evaluate`` (false-positive and detection
rates on labelled vectors). Two kinds, chosen by how much history there is:

- ``robust_z``: per feature, distance from the median in robust standard
  deviations (1.4826 MAD, floored so a constant feature still measures a
  change); the score is the largest. For short histories.
- ``isolation_forest`` (scikit-learn) over the same robust-standardised
  features; the score is ``-score_samples`` (about 0.5 normal, toward 1 odd).

A model is stored as JSON: its kind, the standardisation, the training
vectors, its seed and threshold. An isolation forest is refitted from these
(same data, same seed: the same trees) when loaded, so nothing executable is
read back from the database.

The threshold is the 97.5th percentile of the training scores times
(1 + ``margin``): not the highest, which is one odd delivery's score, and an
isolation forest's scores saturate, so a far outlier scores little above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROBUST_Z = "robust_z"
ISOLATION_FOREST = "isolation_forest"
_MAD_TO_SIGMA = 1.4826
_TREES = 200
_THRESHOLD_QUANTILE = 0.975


@dataclass
class AnomalyModel:
    kind: str
    names: list[str]
    center: list[float]
    scale: list[float]
    train: list[list[float]]
    threshold: float
    seed: int = 0
    _forest: Any = field(default=None, repr=False)  # sklearn's IsolationForest, fitted lazily

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "names": self.names,
            "center": self.center,
            "scale": self.scale,
            "train": self.train,
            "threshold": self.threshold,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnomalyModel:
        model = cls(
            kind=str(data["kind"]),
            names=[str(n) for n in data["names"]],
            center=[float(v) for v in data["center"]],
            scale=[float(v) for v in data["scale"]],
            train=[[float(v) for v in row] for row in data["train"]],
            threshold=float(data["threshold"]),
            seed=int(data.get("seed", 0)),
        )
        model._refit()
        return model

    def _standardise(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        result: NDArray[np.float64] = (x - np.asarray(self.center)) / np.asarray(self.scale)
        return result

    def _refit(self) -> None:
        if self.kind == ISOLATION_FOREST:
            # Imported here: scikit-learn takes ~3 s to import, and every flow run
            # (duplicates included) imports this module; only a forest needs it.
            from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

            forest = IsolationForest(n_estimators=_TREES, random_state=self.seed)
            forest.fit(self._standardise(np.asarray(self.train, dtype=np.float64)))
            self._forest = forest

    def scores(self, vectors: list[list[float]]) -> list[float]:
        x = self._standardise(np.asarray(vectors, dtype=np.float64).reshape(-1, len(self.names)))
        if self.kind == ROBUST_Z:
            return [float(v) for v in np.abs(x).max(axis=1)]
        if self._forest is None:
            self._refit()
        assert self._forest is not None
        return [float(-v) for v in self._forest.score_samples(x)]

    def score(self, vector: list[float]) -> float:
        return self.scores([vector])[0]

    def top_features(self, vector: list[float], n: int = 3) -> list[tuple[str, float]]:
        """The features furthest from the training median, in robust standard deviations."""
        z = self._standardise(np.asarray(vector, dtype=np.float64))
        order = np.argsort(-np.abs(z))[:n]
        return [(self.names[i], float(z[i])) for i in order]


def fit(
    vectors: list[list[float]],
    names: list[str],
    *,
    forest_min_samples: int,
    margin: float,
    seed: int = 0,
) -> AnomalyModel:
    """A model of these (normal) vectors: robust z below ``forest_min_samples``, else a forest."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] != len(names):
        raise ValueError(f"need at least 2 vectors of {len(names)} features, got {x.shape}")
    center = np.median(x, axis=0)
    mad = _MAD_TO_SIGMA * np.median(np.abs(x - center), axis=0)
    # A floor: a feature constant in training still has a scale to measure change by.
    scale = np.maximum(mad, np.maximum(0.05 * np.abs(center), 0.05))
    kind = ISOLATION_FOREST if x.shape[0] >= forest_min_samples else ROBUST_Z
    model = AnomalyModel(
        kind=kind,
        names=list(names),
        center=[float(v) for v in center],
        scale=[float(v) for v in scale],
        train=[[float(v) for v in row] for row in x],
        threshold=0.0,
        seed=seed,
    )
    model._refit()
    training = np.asarray(model.scores(model.train))
    model.threshold = float(np.quantile(training, _THRESHOLD_QUANTILE)) * (1.0 + margin)
    if kind == ROBUST_Z:
        # A short history underestimates spread: never hold within 4 robust sigmas.
        model.threshold = max(model.threshold, 4.0)
    return model


@dataclass(frozen=True)
class Evaluation:
    normals: int
    anomalies: int
    false_positives: int
    detected: int

    @property
    def false_positive_rate(self) -> float:
        return self.false_positives / self.normals if self.normals else 0.0

    @property
    def miss_rate(self) -> float:
        return 1.0 - self.detected / self.anomalies if self.anomalies else 0.0

    @property
    def balanced_error(self) -> float:
        """Mean of the false-positive and miss rates: lower is better."""
        return (self.false_positive_rate + self.miss_rate) / 2

    def to_json(self) -> dict[str, Any]:
        return {
            "normals": self.normals,
            "anomalies": self.anomalies,
            "false_positives": self.false_positives,
            "detected": self.detected,
            "false_positive_rate": self.false_positive_rate,
            "miss_rate": self.miss_rate,
            "balanced_error": self.balanced_error,
        }


def evaluate(model: AnomalyModel, vectors: list[list[float]], labels: list[bool]) -> Evaluation:
    """Held (score above threshold) against the labels (True: an operator rejected it)."""
    if not vectors:
        return Evaluation(0, 0, 0, 0)
    held = [s > model.threshold for s in model.scores(vectors)]
    return Evaluation(
        normals=sum(1 for lab in labels if not lab),
        anomalies=sum(1 for lab in labels if lab),
        false_positives=sum(1 for h, lab in zip(held, labels, strict=True) if h and not lab),
        detected=sum(1 for h, lab in zip(held, labels, strict=True) if h and lab),
    )
