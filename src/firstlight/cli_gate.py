"""`firstlight held` and `firstlight gate approve|reject`: held releases from a shell.

``held`` lists what the gate holds for an operator (delivery, version, since
when, the gate's reason, how to decide). ``gate approve|reject
MISSION/DELIVERY_ID --reason ... --operator ...`` decides one: a release whose
Prefect run waits suspended is decided by resuming that run with the same
input as the UI's form (the run records the decision and promotes or
quarantines); one held by `firstlight ingest` (no run waits) is finished here,
in this process, from where it stopped. Either way the gate records say who
decided and why, exactly as for the form.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from firstlight.services.context import Context
    from firstlight.services.held import Verdict

gate_app = typer.Typer(help="Decide a release the gate holds: approve or reject.")
_out = Console(soft_wrap=True)

_Label = Annotated[str, typer.Argument(help="MISSION/DELIVERY_ID, as `firstlight held` lists it.")]
_Reason = Annotated[str, typer.Option(help="Why (kept with the decision; required).")]
_Operator = Annotated[str, typer.Option(help="Your name, recorded as who decided (required).")]


def held(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Releases the gate holds for an operator, oldest first, and how to decide each."""
    from firstlight.services.held import held_releases

    found = held_releases(_context())
    if as_json:
        sys.stdout.write(json.dumps([asdict(h) for h in found], indent=2, default=str) + "\n")
        return
    if not found:
        _out.print("nothing is held by the gate")
        return
    # One block per hold, not a table: the reasons are long and a table column cuts them off.
    for h in found:
        since = h.held_since.isoformat(timespec="seconds") if h.held_since else "?"
        _out.print(
            f"[bold yellow]{h.label}[/bold yellow]  {h.release_key or ''}  "
            f"held since {since}  waits in {h.waits_in}"
        )
        _out.print(f"  why: {escape(h.reason)}")
        for line in h.decide:
            _out.print(f"  {escape(line)}")
    _out.print("(or decide in the run's form in the Prefect UI, when a run waits)")


@gate_app.command()
def approve(label: _Label, reason: _Reason, operator: _Operator) -> None:
    """Let the held release go public: its run resumes and promotes (or it is promoted here)."""
    _decide(label, "approve", reason, operator)


@gate_app.command()
def reject(label: _Label, reason: _Reason, operator: _Operator) -> None:
    """Quarantine the held release with your reason, as the form's reject does."""
    _decide(label, "reject", reason, operator)


def _decide(label: str, verdict: Verdict, reason: str, operator: str) -> None:
    """Errors (not held, decided meanwhile, refused) are reported by cli_errors."""
    from firstlight.errors import InvalidInputError
    from firstlight.services.held import decide_in_process, find_held

    if not reason.strip() or not operator.strip():
        raise InvalidInputError("--reason and --operator must not be empty")
    ctx = _context()
    found = find_held(ctx, label)
    if found.flow_run_id is not None and _resume(
        found.flow_run_id, label, verdict, reason, operator
    ):
        return
    decided = decide_in_process(ctx, found, verdict, reason=reason, operator=operator)
    by = escape(operator)
    _out.print(f"{decided.label} {decided.decision} by {by}: {escape(decided.detail)}")


def _resume(flow_run_id: str, label: str, verdict: Verdict, reason: str, operator: str) -> bool:
    """Answer the waiting run; False when no run waits any more (finish it here, then)."""
    import httpx
    from prefect.settings import get_current_settings

    from firstlight.errors import ConflictError, ExternalError, InvalidInputError

    if not get_current_settings().api.url:
        raise InvalidInputError(
            f"{label} waits in Prefect flow run {flow_run_id}: set PREFECT_API_URL "
            "to its server (or decide in the Prefect UI)"
        )
    from flows.release_delivery import GateDecision, resume_held_run

    try:
        waiting = resume_held_run(
            flow_run_id, GateDecision(decision=verdict, reason=reason, operator=operator)
        )
    except httpx.HTTPError as exc:
        raise ExternalError(f"the Prefect server did not answer: {exc}") from exc
    except RuntimeError as exc:  # the server refused: not waiting for input now
        raise ConflictError(f"flow run {flow_run_id}: {exc}") from exc
    if not waiting:
        _out.print(f"flow run {flow_run_id} no longer waits (it ended): deciding here")
        return False
    _out.print(
        f"{label}: {verdict} sent to flow run {flow_run_id}; it records the decision and "
        + ("promotes" if verdict == "approve" else "quarantines")
        + " (see `firstlight releases` / `firstlight quarantine list`)"
    )
    return True


def _context() -> Context:
    from firstlight.config import Settings
    from firstlight.services.context import context_for

    return context_for(Settings())
