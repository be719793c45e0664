"""The ``firstlight`` command: what producers and operators type.

Commands parse arguments, call the library or the flow, and print; they hold
no logic of their own. Prefect is imported only by the commands that run a
flow, so ``firstlight manifest`` stays quick.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from firstlight.cli_errors import (
    EXIT_HELD,
    EXIT_INFRASTRUCTURE,
    EXIT_REFUSED,
    EXIT_USAGE,
    ErrorReportingGroup,
    report,
)
from firstlight.cli_gate import gate_app, held
from firstlight.cli_model import model_app
from firstlight.config import Settings
from firstlight.domain.manifest import manifest_json_schema
from firstlight.domain.progress import PROGRESS_LINE

if TYPE_CHECKING:
    from firstlight.domain.ledger import LedgerEntry
    from firstlight.query.cone import ConeResult
    from firstlight.services.context import Context
    from firstlight.services.quarantine import QuarantineView
    from firstlight.stack import Stack, StackUrls

app = typer.Typer(
    help="firstlight: a mission's data delivery becomes a public, queryable archive release.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ErrorReportingGroup,  # errors become messages and exit codes there (cli_errors)
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
    from firstlight.producer.synth import synthesize_delivery

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


_OBS_HELP = "Observation {} of every image, spectrum and time series whose header lacks it."


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
    target: Annotated[str | None, typer.Option(help=_OBS_HELP.format("target"))] = None,
    facility: Annotated[str | None, typer.Option(help=_OBS_HELP.format("telescope"))] = None,
    instrument: Annotated[str | None, typer.Option(help=_OBS_HELP.format("instrument"))] = None,
    time_start: Annotated[
        datetime | None, typer.Option(help=_OBS_HELP.format("start time (UTC)"))
    ] = None,
    time_end: Annotated[
        datetime | None, typer.Option(help=_OBS_HELP.format("end time (UTC)"))
    ] = None,
    wavelength_min: Annotated[
        float | None, typer.Option(help=_OBS_HELP.format("shortest wavelength (m)"))
    ] = None,
    wavelength_max: Annotated[
        float | None, typer.Option(help=_OBS_HELP.format("longest wavelength (m)"))
    ] = None,
    calib_level: Annotated[
        int | None, typer.Option(help=_OBS_HELP.format("ObsCore calibration level (0-4)"))
    ] = None,
    observations: Annotated[
        Path | None,
        typer.Option(
            help="JSON file: {relative path: {target, facility, instrument, time_start, "
            "time_end, wavelength_min, wavelength_max, calib_level}}; per file, over the "
            "options above."
        ),
    ] = None,
) -> None:
    """Write manifest.json for a folder of files, as a producer does before delivering.

    Observation fields complete what the FITS headers do not say (the headers win).
    """
    from firstlight.producer.manifest_builder import (
        build_manifest,
        observation_fields,
        read_observations_file,
        write_manifest,
    )

    common = observation_fields(
        "the options",
        target=target,
        facility=facility,
        instrument=instrument,
        time_start=_utc(time_start),
        time_end=_utc(time_end),
        wavelength_min=wavelength_min,
        wavelength_max=wavelength_max,
        calib_level=calib_level,
    )
    built = build_manifest(
        directory,
        mission=mission,
        delivery_id=delivery_id,
        release_name=release,
        release_version=version,
        producer=producer,
        release_date=_utc(release_date),
        observation=common,
        observations=read_observations_file(observations) if observations else None,
    )
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
    """Run every release step on one delivery in this process (no Prefect server needed).

    Exit 0 released or already released, 1 rejected (quarantined, with the reason),
    3 held by the gate for an operator (at once, printing the `firstlight gate
    approve|reject` commands that decide it); any other failure (database, disk)
    exits 4 and leaves the delivery in place for a rerun.
    """
    if not path.is_dir():
        err.print(f"[red]{escape(str(path))}: not a folder[/red]")
        raise typer.Exit(EXIT_USAGE)
    raise typer.Exit(_run_release(path))


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
    undone, current = _context().archive.releases.rollback(mission)
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
    from firstlight.query.cone import cone_search, cone_search_observations

    ctx = _context()
    common: dict[str, Any] = {
        "mission": mission,
        "ra": ra,
        "dec": dec,
        "radius": radius,
        "release": release,
        "limit": limit,
    }
    if observations:
        result = cone_search_observations(ctx.archive, **common)
    else:
        result = cone_search(ctx.archive, table=table, **common)
    if as_json:
        _print_result_json(result)
        return
    shown = columns.split(",") if columns else result.columns[:6]
    _print_result(result, [c for c in shown if c in result.columns] + ["distance"])
    if result.overflow:
        out.print(f"[yellow]more than {limit} rows: raise --limit to see them[/yellow]")


quarantine_app = typer.Typer(help="Rejected deliveries: list, inspect, send through again.")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(model_app, name="model")  # the gate's anomaly model (cli_model.py)
app.add_typer(gate_app, name="gate")  # deciding held releases (cli_gate.py)
app.command("held")(held)


DeliveryArgument = Annotated[
    str,
    typer.Argument(
        help="MISSION/DELIVERY_ID (its newest ledger line) or the ledger id from `quarantine list`."
    ),
]


@quarantine_app.command("list")
def quarantine_list(
    which: Annotated[
        str | None, typer.Argument(help="Only this MISSION or MISSION/DELIVERY_ID.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Quarantined and rejected deliveries, newest first (ID = ledger id)."""
    from firstlight.services.quarantine import quarantined

    entries = [
        e
        for e in quarantined(_context())
        if which in (None, e.mission, f"{e.mission}/{e.delivery_id}")
    ]
    if as_json:
        _print_json([asdict(e) for e in entries])
        return
    table = Table("id", "delivery", "state", "when", "reason")
    for e in entries:
        when = (e.finished_at or e.arrived_at).isoformat(timespec="seconds")
        reason = (e.reason or "")[:120]
        table.add_row(
            str(e.delivery_pk), f"{e.mission}/{e.delivery_id}", e.state.value, when, escape(reason)
        )
    out.print(table)


@quarantine_app.command("show")
def quarantine_show(delivery: DeliveryArgument, as_json: JsonOption = False) -> None:
    """Where a quarantined delivery is, the gate's word, and every finding of every step."""
    from firstlight.query.pages.operations import data_docs_url
    from firstlight.services.quarantine import inspect_delivery

    ctx = _context()
    view = inspect_delivery(ctx, delivery)
    entry = view.entry
    # As the query service serves them: browsers refuse file:// links.
    docs = data_docs_url(ctx.settings, entry.delivery_pk) if entry.data_docs else None
    if as_json:
        _print_json(
            {
                "entry": asdict(entry),
                "data_docs_url": docs,
                "quarantined": view.quarantined,
                "gate": asdict(view.gate) if view.gate else None,
                "findings": [f.to_dict() for f in view.findings],
            }
        )
        return
    for line in _quarantine_lines(view):
        out.print(line)
    if docs:
        out.print(f"Data Docs: {escape(docs)} (served by `firstlight serve` / `up`)")
    for f in view.findings:
        out.print(f"- {escape(f.describe())}{' (warning)' if f.severity == 'warning' else ''}")
    if not view.findings:
        out.print("no findings recorded")


def _quarantine_lines(view: QuarantineView) -> list[str]:
    """Where the delivery stands, in words: no "None" for what does not apply."""
    e, gate = view.entry, view.gate
    label = f"{e.mission}/{e.delivery_id} (ledger id {e.delivery_pk}, attempt {e.attempts})"
    when = (e.finished_at or e.arrived_at).isoformat(timespec="seconds")
    lines = []
    if not view.quarantined:
        if e.state.value == "released":
            lines.append(f"{label} is not quarantined: released as {e.release_key} at {when}")
        elif gate is not None and gate.decision == "held":
            lines.append(f"{label} is not quarantined: held by the gate for an operator")
        else:
            lines.append(f"{label} is not quarantined: in progress since {when}")
    else:
        lines.append(f"{label}: {e.state.value} at {when}")
        if e.reason:
            lines.append(f"reason: {escape(e.reason)}")
        if e.quarantine_path:
            lines.append(f"bytes and report.json in {escape(e.quarantine_path)}")
        else:
            lines.append("not copied to quarantine: the reason says why and where it was left")
    if gate is not None:
        who = f" by {gate.decided_by}" if gate.decided_by else ""
        lines.append(f"gate: {gate.decision}{who}: {escape(gate.reason or 'no reason given')}")
        if gate.anomaly_score is not None and gate.anomaly_threshold is not None:
            model = f", model v{gate.model_version}" if gate.model_version is not None else ""
            lines.append(
                f"gate: anomaly score {gate.anomaly_score:.4g} "
                f"(threshold {gate.anomaly_threshold:.4g}{model})"
            )
    return lines


@quarantine_app.command("retry")
def quarantine_retry(delivery: DeliveryArgument) -> None:
    """Copy a (fixed) quarantined delivery back into the inbox to be released again."""
    from firstlight.services.quarantine import retry_quarantined

    ctx = _context()
    path = retry_quarantined(ctx, ctx.archive.ledger.lookup(delivery).delivery_pk)
    out.print(f"back in the inbox: {escape(str(path))}")
    out.print("a running stack picks it up; or run: firstlight ingest " + escape(str(path)))


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="Words of a target or instrument name.")],
    mission: Annotated[str, typer.Option(help="Mission to search.")],
    release: Annotated[
        str | None, typer.Option(help="A release key or name (default: current).")
    ] = None,
    limit: int = 20,
    as_json: JsonOption = False,
) -> None:
    """Observations whose target or instrument names hold every word (full text)."""
    from firstlight.query.search import search_observations

    ctx = _context()
    result = search_observations(
        ctx.archive, mission=mission, text=text, release=release, limit=limit
    )
    if as_json:
        _print_result_json(result)
        return
    _print_result(result, result.columns[:6])


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: setting).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: setting).")] = None,
) -> None:
    """The query service for scientists: TAP, cone search, DataLink and file downloads."""
    from firstlight.query.service.access_log import log_to_file
    from firstlight.query.service.app import base_url, server

    settings = Settings()
    log_to_file(settings.data_dir / "logs" / "access.log")
    service = server(settings, host=host, port=port)
    url = base_url(service.config.host, service.config.port)
    out.print(f"query service  {url}  (TAP {url}/tap; Ctrl-C stops it)")
    service.run()


@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="Run the steps in this process (no Prefect), exit.")
    ] = False,
    rows: Annotated[int, typer.Option(help="Catalogue rows of the generated delivery.")] = 200_000,
    keep_running: Annotated[
        bool, typer.Option(help="Keep the stack up after the release, for the Prefect UI.")
    ] = True,
    port: Annotated[
        int | None, typer.Option(help="Prefect server port (default: setting).")
    ] = None,
) -> None:
    """Show the whole path: a generated delivery lands in the inbox and becomes current."""
    ctx = _context()
    out.rule(f"[bold]firstlight demo[/bold]: data in {ctx.settings.data_dir.resolve()}")
    if once:
        code = _run_release(_generate_delivery(ctx, rows))
        if code:
            raise typer.Exit(code)
        _show_current(ctx)
        return
    with _running_stack(ctx.settings, port) as (_, urls):
        _print_urls(urls)
        path = _generate_delivery(ctx, rows)
        out.print("waiting for the watcher, the event, the trigger and the flow run...")
        entry = _follow_until_settled(ctx, path, urls.prefect_api, timeout=900)
        _print_stages(ctx, path)
        if entry is None or entry.state.value != "released":
            err.print(f"[bold red]not released[/bold red]: {escape(str(entry and entry.reason))}")
            raise typer.Exit(EXIT_REFUSED)
        if entry.finished_at is not None:
            seconds = (entry.finished_at - entry.arrived_at).total_seconds()
            out.print(f"[bold green]released[/bold green]: time-to-data {seconds:.1f} s")
        _show_current(ctx)
        if keep_running:
            out.print(f"the stack keeps running: Prefect UI at {urls.prefect_ui}; Ctrl-C stops it")
            _wait_for_signal()


@app.command()
def up(
    port: Annotated[
        int | None, typer.Option(help="Prefect server port (default: setting).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Warm workers to start (default: FIRSTLIGHT_WORKERS).")
    ] = None,
    server: Annotated[
        bool, typer.Option(help="Start a Prefect server; --no-server uses PREFECT_API_URL's.")
    ] = True,
) -> None:
    """Start the whole stack on this machine and keep it running until Ctrl-C or SIGTERM.

    Exits 1 when a part other than a worker dies (workers are restarted), so a
    service manager can restart the whole.
    """
    settings = Settings()
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    from firstlight.events.activity import log_to

    log_to(logging.StreamHandler(sys.stdout))  # arrivals, runs, releases, holds, as they happen
    with _running_stack(settings, port, server=server) as (stack, urls):
        _print_urls(urls)
        out.print(f"running with {settings.workers} worker(s); Ctrl-C or SIGTERM stops everything")
        died = _supervise(stack)
    if died:
        err.print(f"[bold red]stopped[/bold red]: {escape(died)}")
        raise typer.Exit(1)
    out.print("stopped")


@app.command()
def worker(
    name: Annotated[str | None, typer.Option(help="The worker's name in the Prefect UI.")] = None,
) -> None:
    """One warm worker pulling release runs from the work pool at PREFECT_API_URL.

    Runs on any machine that reaches the Prefect server, the archive database
    and the stores; Ctrl-C or SIGTERM stops it, marking its runs in progress
    Crashed and giving their deliveries' claims up.
    """
    _required_api_url()
    settings = Settings()
    _prepare_prefect(settings)
    os.environ.setdefault("PREFECT_WORKER_QUERY_SECONDS", "1")
    from firstlight.execution.worker import run_worker

    out.print(f"worker on pool {settings.work_pool} of {os.environ['PREFECT_API_URL']}")
    run_worker(
        work_pool=settings.work_pool,
        limit=settings.worker_limit,
        heartbeat_seconds=settings.heartbeat_seconds,
        stop_grace_seconds=settings.stop_grace_seconds,
        name=name,
    )
    out.print("worker stopped")


@app.command()
def deploy() -> None:
    """Create the work pool and register every deployment on it (PREFECT_API_URL)."""
    _required_api_url()
    settings = Settings()
    _prepare_prefect(settings)
    from firstlight.execution.worker import ensure_work_pool
    from flows.deployments import deploy_to_pool

    ensure_work_pool(settings.work_pool)
    ids = deploy_to_pool(settings)
    out.print(f"{len(ids)} deployments on work pool {settings.work_pool}")


@app.command()
def watch() -> None:
    """Only the arrival watchers (inbox, and S3 if configured), announcing to PREFECT_API_URL.

    For machines whose deployments run on a work pool (deployments/prefect.yaml).
    """
    api_url = _required_api_url()
    from firstlight.events.activity import LoggedSink, log_to, log_to_file
    from firstlight.events.prefect_sink import PrefectEventSink
    from firstlight.events.watchers import Watchers

    settings = Settings()
    log_to(logging.StreamHandler(sys.stdout))
    log_to_file(settings.data_dir / "logs" / "watch.log")
    watchers = Watchers(settings, LoggedSink(PrefectEventSink(api_url)))
    watchers.start()
    out.print(f"watching {settings.inbox_dir.resolve()}; announcing to {api_url}")
    try:
        _wait_for_signal()
    finally:
        watchers.stop()


@app.command()
def automations() -> None:
    """Create (or replace) the automations on the server at PREFECT_API_URL: failed runs
    reported, held runs announced, runs whose heartbeats stopped marked Crashed."""
    api_url = _required_api_url()
    from flows.automations import (
        ensure_crashed_runs_automation,
        ensure_failure_automation,
        ensure_held_automation,
    )

    settings = Settings()
    failed = ensure_failure_automation(api_url, settings.failure_webhook_url)
    out.print(f"automation firstlight-failed-runs: {failed}")
    held_runs = ensure_held_automation(api_url, settings.failure_webhook_url)
    out.print(f"automation firstlight-held-runs: {held_runs}")
    crashed = ensure_crashed_runs_automation(api_url, settings.heartbeat_seconds)
    out.print(f"automation firstlight-silent-runs-crashed: {crashed}")


def _required_api_url() -> str:
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        err.print("[red]PREFECT_API_URL is not set: which Prefect server?[/red]")
        raise typer.Exit(EXIT_USAGE)
    return api_url.rstrip("/")


@app.command()
def stats(
    mission: Annotated[str | None, typer.Option(help="Only this mission.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Time-to-data per delivery and per stage, from the ledger."""
    from firstlight.analytics.stats import delivery_stats
    from firstlight.storage.gate_records import GateRecords

    ctx = _context()
    made = GateRecords(ctx.archive.engine).forecasts()
    forecasts = {k: f.predicted_seconds for k, f in made.items()}
    summary = delivery_stats(ctx.archive.ledger, mission, forecasts)
    if as_json:
        _print_json(summary.to_dict())
        return
    table = Table("delivery", "state", "attempts", "time-to-data (s)", "stages (s)")
    for d in summary.per_delivery:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in d.stage_seconds.items())
        ttd = f"{d.time_to_data_seconds:.2f}" if d.time_to_data_seconds is not None else ""
        table.add_row(f"{d.mission}/{d.delivery_id}", d.state, str(d.attempts), ttd, stages)
    out.print(table)
    p50, p90 = summary.time_to_data_p50, summary.time_to_data_p90
    if p50 is not None and p90 is not None:
        out.print(f"time-to-data p50 {p50:.2f} s, p90 {p90:.2f} s over {summary.deliveries}")
    mae, bias = summary.forecast_mean_abs_error_seconds, summary.forecast_mean_error_seconds
    if mae is not None and bias is not None:
        out.print(
            f"forecast at arrival: mean absolute error {mae:.2f} s, bias {bias:+.2f} s "
            f"over {summary.forecasts_compared} released deliveries"
        )


def _generate_delivery(ctx: Context, rows: int) -> Path:
    from firstlight.producer.synth import synthesize_delivery

    version = str(len(ctx.archive.releases.list_releases("demo")) + 1)
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
    return path


def _show_current(ctx: Context) -> None:
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


@contextmanager
def _running_stack(
    settings: Settings, port: int | None, *, server: bool = True
) -> Iterator[tuple[Stack, StackUrls]]:
    port = port or settings.prefect_port
    # This process talks to the stack's server too (blocks, automations).
    if server or not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    _prepare_prefect(settings)
    from firstlight.stack import Stack

    stack = Stack(settings, port=port, server=server)
    out.print(f"starting the stack (logs in {settings.data_dir / 'logs'})...")
    try:
        yield stack, stack.start()
    finally:
        stack.stop()


def _supervise(stack: Stack) -> str | None:
    """Until SIGINT/SIGTERM (None) or a part other than a worker dies (what died)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        died = stack.supervise()
        if died:
            return died
    return None


def _print_urls(urls: StackUrls) -> None:
    out.print(f"Prefect UI   {urls.prefect_ui}")
    out.print(f"Prefect API  {urls.prefect_api}")
    out.print(f"inbox        {urls.inbox}  (drop a delivery folder here; manifest.json last)")
    out.print(f"TAP service  {urls.query_service}/tap  (pyvo, astroquery, TOPCAT)")


def _follow_until_settled(
    ctx: Context, path: Path, api_url: str, timeout: float
) -> LedgerEntry | None:
    """The delivery's ledger line once terminal (None after ``timeout``), printing each
    step as it ends and the row progress its run logs (validation's passes, the load),
    read from the Prefect API."""
    deadline = time.monotonic() + timeout
    steps_shown: set[tuple[int, str]] = set()
    logs_shown: set[str] = set()

    def show_progress(run_id: str) -> None:
        for log_id, message in _progress_logs(api_url, run_id):
            if log_id not in logs_shown:
                logs_shown.add(log_id)
                out.print(f"    {escape(message)}")

    while time.monotonic() < deadline:
        entry = ctx.archive.ledger.latest_at(str(path.resolve()))
        run_id = entry and ctx.archive.ledger.claim(entry.delivery_pk)[0]
        if entry is not None:
            if run_id:
                show_progress(run_id)
            for st in ctx.archive.ledger.stages(entry.delivery_pk):
                if (st.attempt, st.stage.value) not in steps_shown:
                    steps_shown.add((st.attempt, st.stage.value))
                    out.print(f"  {st.stage.value}: {st.outcome} in {st.seconds:.1f} s")
            if entry.state.terminal:
                if run_id:  # the run's last lines reach the API in its next batch (~2 s)
                    time.sleep(LOG_BATCH_SECONDS)
                    show_progress(run_id)
                return entry
        time.sleep(0.5)
    return None


LOG_BATCH_SECONDS = 3.0  # Prefect sends a run's logs to its API every 2 s by default


def _progress_logs(api_url: str, run_id: str) -> list[tuple[str, str]]:
    """(id, message) of a flow run's row-progress lines so far; none if the API is busy."""
    body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
    try:
        response = httpx.post(f"{api_url}/logs/filter", json=body, timeout=10)
        response.raise_for_status()
    except (httpx.HTTPError, ValueError):
        return []
    return [
        (str(log["id"]), str(log["message"]))
        for log in response.json()
        if PROGRESS_LINE.search(str(log["message"]))
    ]


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _prepare_prefect(settings: Settings) -> None:
    """Keep Prefect's local state in the data directory and its telemetry off,
    unless the operator chose otherwise; must run before Prefect is imported."""
    home = (settings.data_dir / "prefect").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _run_release(path: Path) -> int:
    """Every step in this process, each printed as it starts, validate's and ingest's
    rows a few times a file; the exit code."""
    ctx = _context()
    from firstlight.domain.progress import describe, throttled
    from firstlight.services.pipeline import run_release

    started = time.monotonic()
    try:
        outcome = run_release(
            ctx,
            path.resolve(),
            on_step=lambda stage: out.print(f"  {stage.value}..."),
            progress=throttled(lambda *done: out.print(f"    {escape(describe(*done))}")),
        )
    except Exception as exc:  # not a verdict on the delivery (that is the outcome): rerun it
        report(exc)
        return EXIT_INFRASTRUCTURE
    _print_stages(ctx, path)
    elapsed = time.monotonic() - started
    detail = escape(outcome.detail)
    if outcome.status == "rejected":
        err.print(f"[bold red]rejected[/bold red]: {detail}")
        return EXIT_REFUSED
    held_again = outcome.status == "skipped" and _still_held(ctx, outcome.ticket.delivery_pk)
    if outcome.status == "held" or held_again:
        _print_held(outcome.ticket.label, detail)
        return EXIT_HELD
    colour = "green" if outcome.status == "released" else "yellow"
    out.print(f"[bold {colour}]{outcome.status}[/bold {colour}] in {elapsed:.1f} s: {detail}")
    return 0


def _still_held(ctx: Context, delivery_pk: int) -> bool:
    """An arrival skipped because the gate holds it (ingest run again on a held delivery)."""
    from firstlight.services.held import held_releases

    return any(h.delivery_pk == delivery_pk for h in held_releases(ctx))


def _print_held(label: str, detail: str) -> None:
    from firstlight.services.gate import decide_commands

    err.print(f"[bold yellow]held[/bold yellow] by the gate for an operator: {detail}")
    err.print("decide it (the release then finishes, no Prefect server needed):")
    for line in decide_commands(label):
        err.print(f"  {escape(line)}")


def _print_stages(ctx: Context, path: Path) -> None:
    entry = ctx.archive.ledger.latest_at(str(path.resolve()))
    if entry is None:
        return
    table = Table("stage", "outcome", "seconds", title=f"{entry.mission}/{entry.delivery_id}")
    for st in ctx.archive.ledger.stages(entry.delivery_pk):
        if st.attempt == entry.attempts:
            table.add_row(st.stage.value, st.outcome, f"{st.seconds:.2f}")
    out.print(table)


def _print_result_json(result: ConeResult) -> None:
    _print_json(
        {
            "release": result.release_key,
            "table": result.table,
            "overflow": result.overflow,
            "rows": result.as_dicts(),
        }
    )


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
