"""`firstlight model`: the release gate's anomaly model, version by version.

``list`` (every version: kind, state, training window, samples, held-back
error), ``show VERSION`` (its metrics and thresholds), ``rollback [VERSION]``
(an earlier version current again) and ``retrain`` (train a candidate now; it
is installed only if no worse, see ``services.gate_model``).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

model_app = typer.Typer(help="The release gate's anomaly model: list, show, rollback, retrain.")
_out = Console(soft_wrap=True)
_err = Console(stderr=True, soft_wrap=True)
_Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _records() -> Any:
    from firstlight.config import Settings
    from firstlight.services.context import context_for
    from firstlight.storage.gate_records import GateRecords

    return GateRecords(context_for(Settings()).archive.engine)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@model_app.command("list")
def list_models(as_json: _Json = False) -> None:
    """Every model version, oldest first."""
    models = _records().models()
    if as_json:
        _json([{k: v for k, v in vars(m).items() if k != "params"} for m in models])
        return
    table = Table("version", "kind", "state", "trained", "window", "samples", "held-back error")
    for m in models:
        error = (m.metrics.get("holdout") or {}).get("balanced_error")
        table.add_row(
            str(m.version),
            m.kind,
            m.state,
            _when(m.trained_at),
            f"{_when(m.window_from)} .. {_when(m.window_to)}",
            str(m.samples),
            "" if error is None else f"{error:.3f}",
        )
    _out.print(table)
    if not models:
        _out.print("no model yet: the gate decides on drift rules alone")


@model_app.command("show")
def show_model(version: int, as_json: _Json = False) -> None:
    """One version: training window, metrics on the held-back window, threshold, features."""
    from firstlight.errors import NotFoundError

    model = _records().model(version)
    if model is None:
        raise NotFoundError(f"no model version {version}")
    data = {k: v for k, v in vars(model).items() if k != "params"}
    data["features"] = model.params.get("names", [])
    data["threshold"] = model.params.get("threshold")
    if as_json:
        _json(data)
        return
    for key, value in data.items():
        _out.print(f"{key}: {value}")


@model_app.command("rollback")
def rollback_model(
    version: Annotated[int | None, typer.Argument(help="Default: the newest retired one.")] = None,
) -> None:
    """Make an earlier model version current again."""
    from firstlight.analytics.gate_model import rollback
    from firstlight.config import Settings
    from firstlight.services.context import context_for

    record = rollback(context_for(Settings()), version)
    _out.print(f"model v{record.version} ({record.kind}) is current")


@model_app.command("retrain")
def retrain_model() -> None:
    """Train a candidate from the ledger now; installed only if no worse than the current."""
    from firstlight.analytics.gate_model import retrain
    from firstlight.config import Settings
    from firstlight.services.context import context_for

    _out.print(retrain(context_for(Settings())).detail)
