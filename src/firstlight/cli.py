"""The ``firstlight`` command: what producers and operators type.

Commands parse arguments, call the library or the flow, and print; they hold
no logic of their own. Prefect is imported only by the commands that run a
flow, so ``firstlight manifest`` stays quick.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from firstlight.config import Settings
from firstlight.domain.manifest import ManifestError, manifest_json_schema

if TYPE_CHECKING:
    from firstlight.query.cone import ConeResult
    from firstlight.services.context import Context
    from flows.release_delivery import ReleaseOutcome

app = typer.Typer(
    help="firstlight: a mission's data delivery becomes a public, queryable archive release.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder to create the delivery in.")] = Path(
        "deliveries"
    ),
    mission: str = "demo",
    delivery_id: Annotated[str | None, typer.Option(help="Default: MISSION-RELEASE-SEED.")] = None,
    release: Annotated[str, typer.Option(help="Release name.")] = "dr1",
    version: Annotated[str, typer.Option(help="Release version.")] = "1",
    seed: int = 42,
    rows: Annotated[int, typer.Option(help="Catalogue rows (millions are fine).")] = 1000,
    images: int = 2,
    spectra: int = 1,
    timeseries: int = 1,
    embargo_until: Annotated[
        datetime | None,
        typer.Option(help="Release date (UTC) of spectra and time series: embargoed until then."),
    ] = None,
) -> None:
    """Generate a realistic delivery (deterministic for a seed)."""
    from firstlight.services.synth import synthesize_delivery

    with _progress() as bar:
        job = bar.add_task("catalogue rows", total=rows)
        path = synthesize_delivery(
            out_dir,
            mission=mission,
            delivery_id=delivery_id,
            release_name=release,
            release_version=version,
            seed=seed,
            catalogue_rows=rows,
            images=images,
            spectra=spectra,
            timeseries=timeseries,
            embargo_until=_utc(embargo_until),
            progress=lambda done, total: bar.update(job, completed=done, total=total),
        )
    out.print(f"delivery written to [bold]{escape(str(path))}[/bold]")


@app.command()
def manifest(
    directory: Annotated[Path, typer.Argument(help="Folder of data files.")],
    mission: Annotated[str, typer.Option(help="Mission identifier, e.g. 'gaia'.")],
    delivery_id: Annotated[str, typer.Option(help="Unique id of this delivery.")],
    release: Annotated[str, typer.Option(help="Release name, e.g. 'dr4'.")],
    version: Annotated[str, typer.Option(help="Release version.")] = "1",
    producer: Annotated[str, typer.Option(help="Who produced the delivery.")] = "unknown",
    release_date: Annotated[
        datetime | None, typer.Option(help="Embargo of every product until then (UTC).")
    ] = None,
) -> None:
    """Write manifest.json for a folder of files, as a producer does before delivering."""
    from firstlight.services.manifest_builder import build_manifest, write_manifest

    try:
        built = build_manifest(
            directory,
            mission=mission,
            delivery_id=delivery_id,
            release_name=release,
            release_version=version,
            producer=producer,
            release_date=_utc(release_date),
        )
    except (ManifestError, ValueError) as exc:
        err.print(f"[red]cannot write a manifest:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    path = write_manifest(directory, built)
    out.print(f"{escape(str(path))}: {len(built.files)} files")


@app.command()
def schema() -> None:
    """Print the JSON Schema of manifest.json."""
    sys.stdout.write(json.dumps(manifest_json_schema(), indent=2) + "\n")


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="The delivery folder (with manifest.json).")],
) -> None:
    """Run the release flow on one delivery; exit 0 when released or already released."""
    if not path.is_dir():
        err.print(f"[red]{escape(str(path))}: not a folder[/red]")
        raise typer.Exit(2)
    outcome = _run_release(path)
    if outcome is None:
        raise typer.Exit(1)


@app.command()
def releases(
    mission: Annotated[str | None, typer.Option(help="Only this mission.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List releases: staging ones, promoted ones, and which is current."""
    ctx = _context()
    found = ctx.archive.releases.list_releases(mission)
    if as_json:
        _print_json([asdict(r) for r in found])
        return
    table = Table("mission", "release", "version", "key", "state", "current", "promoted at")
    for r in found:
        table.add_row(
            r.mission,
            r.name,
            r.version,
            r.release_key,
            r.state.value,
            "[bold green]yes[/bold green]" if r.current else "",
            r.promoted_at.isoformat(timespec="seconds") if r.promoted_at else "",
        )
    out.print(table)


@app.command()
def rollback(
    mission: Annotated[str, typer.Argument(help="The mission whose current release to undo.")],
) -> None:
    """Make the release promoted before the current one current again (one transaction)."""
    from firstlight.storage.releases import ReleaseStateError

    ctx = _context()
    try:
        undone, current = ctx.archive.releases.rollback(mission)
    except ReleaseStateError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    out.print(f"{mission}: {undone} -> [bold green]{current}[/bold green] is current")


@app.command()
def cone(
    ra: Annotated[float, typer.Argument(help="Right ascension, ICRS degrees.")],
    dec: Annotated[float, typer.Argument(help="Declination, ICRS degrees.")],
    radius: Annotated[float, typer.Argument(help="Radius in degrees.")],
    mission: Annotated[str, typer.Option(help="Mission to search.")],
    table: Annotated[str | None, typer.Option(help="Catalogue table (default: the first).")] = None,
    release: Annotated[
        str | None, typer.Option(help="A release key or name (default: current).")
    ] = None,
    observations: Annotated[
        bool, typer.Option(help="Search ObsCore observations instead.")
    ] = False,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated columns to show (default: the first six).")
    ] = None,
    limit: int = 20,
    as_json: JsonOption = False,
) -> None:
    """Cone search on a mission's current release, nearest first."""
    from firstlight.query.cone import NotFoundError, cone_search, cone_search_observations

    ctx = _context()
    common: dict[str, Any] = {
        "mission": mission,
        "ra": ra,
        "dec": dec,
        "radius": radius,
        "release": release,
        "limit": limit,
    }
    try:
        if observations:
            result = cone_search_observations(ctx.archive, **common)
        else:
            result = cone_search(ctx.archive, table=table, **common)
    except (NotFoundError, ValueError) as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        _print_json(
            {
                "release": result.release_key,
                "table": result.table,
                "overflow": result.overflow,
                "rows": result.as_dicts(),
            }
        )
        return
    shown = columns.split(",") if columns else result.columns[:6]
    _print_result(result, [c for c in shown if c in result.columns] + ["distance"])
    if result.overflow:
        out.print(f"[yellow]more than {limit} rows: raise --limit to see them[/yellow]")


@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Generate, release, query, then exit.")
    ] = False,
    rows: Annotated[int, typer.Option(help="Catalogue rows of the generated delivery.")] = 200_000,
) -> None:
    """Show the whole path: a generated delivery becomes the current release."""
    if not once:
        err.print(
            "only `firstlight demo --once` exists yet; the long-running stack comes with `up`"
        )
        raise typer.Exit(2)
    from firstlight.services.synth import synthesize_delivery

    ctx = _context()
    version = str(len(ctx.archive.releases.list_releases("demo")) + 1)
    out.rule(f"[bold]firstlight demo[/bold]: data in {ctx.settings.data_dir.resolve()}")
    with _progress() as bar:
        job = bar.add_task("generating the delivery", total=rows)
        path = synthesize_delivery(
            ctx.settings.inbox_dir,
            mission="demo",
            delivery_id=f"demo-v{version}",
            release_version=version,
            seed=int(version),
            catalogue_rows=rows,
            created=datetime.now(UTC),
            progress=lambda done, total: bar.update(job, completed=done, total=total),
        )
    out.print(f"delivery landed in the inbox: {escape(str(path))}")
    if _run_release(path) is None:
        raise typer.Exit(1)
    releases(mission="demo", as_json=False)
    out.rule("what a scientist sees now: cone searches on the current release")
    for radius, observations, shown in (
        (0.05, False, "source_id,ra,dec,phot_g_mean_mag,bp_rp"),
        (1.0, True, "obs_id,dataproduct_type,target_name,instrument_name,s_ra,s_dec"),
    ):
        out.print(
            f"$ firstlight cone 150.0 2.0 {radius} --mission demo"
            + (" --observations" if observations else "")
        )
        cone(150.0, 2.0, radius, mission="demo", observations=observations, columns=shown, limit=8)


def _prepare_prefect(settings: Settings) -> None:
    """Keep Prefect's local state in the data directory and its telemetry off,
    unless the operator chose otherwise; must run before Prefect is imported."""
    home = (settings.data_dir / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _run_release(path: Path) -> ReleaseOutcome | None:
    """Run the flow; print each stage with its timing. None when rejected."""
    ctx = _context()
    _prepare_prefect(ctx.settings)
    from firstlight.domain.findings import DeliveryRejected
    from flows.release_delivery import release_delivery

    started = datetime.now(UTC)
    try:
        outcome = release_delivery(str(path.resolve()))
    except DeliveryRejected as exc:
        _print_stages(ctx, path)
        err.print(f"[bold red]rejected[/bold red]: {escape(str(exc))}")
        return None
    _print_stages(ctx, path)
    elapsed = (datetime.now(UTC) - started).total_seconds()
    colour = "green" if outcome.status == "released" else "yellow"
    out.print(
        f"[bold {colour}]{outcome.status}[/bold {colour}] in {elapsed:.1f} s: "
        f"{escape(outcome.detail)}",
    )
    return outcome


def _print_stages(ctx: Context, path: Path) -> None:
    entry = ctx.archive.ledger.latest_at(str(path.resolve()))
    if entry is None:
        return
    table = Table("stage", "outcome", "seconds", title=f"{entry.mission}/{entry.delivery_id}")
    for st in ctx.archive.ledger.stages(entry.delivery_pk):
        if st.attempt == entry.attempts:
            table.add_row(st.stage.value, st.outcome, f"{st.seconds:.2f}")
    out.print(table)


def _print_result(result: ConeResult, columns: list[str]) -> None:
    table = Table(*columns, title=f"{result.table} in {result.release_key}")
    for row in result.as_dicts():
        table.add_row(*(escape(_cell(row[c])) for c in columns))
    out.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _context() -> Context:
    from firstlight.services.context import context_for

    return context_for(Settings())
