"""The pages' images, drawn on the server with matplotlib: the sky map of a
release's coverage (mocpy's plotting, Mollweide, ICRS) and the time-to-data
plot of the operations page.

Drawing costs a second or two (and matplotlib's import more), so every image
is cached as a PNG named by a digest of what it shows: the same release with
the same public groups, or the same timings, is drawn once. Files are written
through a temporary name and a rename; nothing here reads the archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mocpy import MOC

    from firstlight.query.pages.operations import Operations

_lock = threading.Lock()  # matplotlib's font cache and mocpy's plotting are not thread-safe
STEP_COLOURS = {
    "admit": "#9e9e9e",
    "verify": "#8d6e63",
    "validate": "#e53935",
    "ingest": "#1e88e5",
    "index": "#43a047",
    "gate": "#fb8c00",
    "promote": "#8e24aa",
}


def cached_png(cache_dir: Path, kind: str, key: Any, draw: Callable[[], Figure]) -> Path:
    """The PNG for ``key`` (JSON-able), drawn by ``draw`` the first time."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    path = cache_dir / kind / f"{digest[:32]}.png"
    if path.exists():
        return path
    with _lock:
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = draw()
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fig.savefig(partial, format="png", dpi=100)
        partial.replace(path)
    return path


def sky_map(moc: MOC, title: str) -> Figure:
    """The coverage on an all-sky Mollweide map (RA increasing leftwards, as on the sky)."""
    import astropy.units as u
    from astropy.wcs import WCS
    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse

    fig = Figure(figsize=(8, 4.4))
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---MOL", "DEC--MOL"]
    wcs.wcs.crval = [180.0, 0.0]
    wcs.wcs.cdelt = [-0.5, 0.5]
    wcs.wcs.crpix = [360.5, 180.5]
    ax: Any = fig.add_axes((0.03, 0.08, 0.94, 0.82), projection=wcs)  # astropy's WCSAxes
    ax.set_xlim(-0.5, 720.5)
    ax.set_ylim(-0.5, 360.5)
    # The sky's outline: Mollweide maps the sphere onto a 2:1 ellipse.
    width = 4 * 2**0.5 / 3.141592653589793 * 180 / 0.5 / 2
    ax.add_patch(
        Ellipse((360.5, 180.5), 2 * width, width, facecolor="#f4f6fb", edgecolor="#5c6b8a")
    )
    ax.coords.grid(color="#b0b8c8", linestyle=":", linewidth=0.6)
    ax.coords[0].set_ticks(spacing=60 * u.deg)
    ax.coords[0].set_ticklabel(color="#5c6b8a", size=7, exclude_overlapping=True)
    ax.coords[1].set_ticks(spacing=30 * u.deg)
    ax.coords[1].set_ticklabel(color="#5c6b8a", size=7)
    ax.coords[0].set_axislabel("")
    ax.coords[1].set_axislabel("")
    ax.coords.frame.set_linewidth(0)
    fraction = float(moc.sky_fraction)
    if fraction > 0:
        moc.fill(ax=ax, wcs=wcs, alpha=0.85, fill=True, color="#1565c0", linewidth=0)
        moc.border(ax=ax, wcs=wcs, color="#0d2c6b", linewidth=0.8)
        if fraction < 1e-3:  # a few cells vanish at this scale: ring them so they are seen
            _ring_small(ax, moc)
    ax.set_title(f"{title}: {fraction * 100:.4g}% of the sky", fontsize=10, color="#1f2a44", pad=14)
    return fig


def _ring_small(ax: Any, moc: MOC) -> None:
    import astropy.units as u

    centre = moc.barycenter()
    ax.scatter(
        [centre.ra.to_value(u.deg)],
        [centre.dec.to_value(u.deg)],
        s=260,
        facecolors="none",
        edgecolors="#e53935",
        linewidths=1.5,
        transform=ax.get_transform("icrs"),
    )


def time_to_data_plot(ops: Operations) -> Figure:
    """Per delivery: the steps' seconds stacked, the actual time-to-data and its forecast;
    below, p50 and p90 per week."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6.2))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.1, hspace=0.45)
    shown = [d for d in ops.deliveries if d.stage_seconds][-60:]
    xs = list(range(len(shown)))
    base = [0.0] * len(shown)
    steps = [s for s in STEP_COLOURS if any(s in d.stage_seconds for d in shown)]
    steps += sorted({s for d in shown for s in d.stage_seconds} - set(steps))
    for step in steps:
        heights = [d.stage_seconds.get(step, 0.0) for d in shown]
        top.bar(xs, heights, bottom=base, color=STEP_COLOURS.get(step, "#607d8b"), label=step)
        base = [b + h for b, h in zip(base, heights, strict=True)]
    actual = [(x, d.time_to_data_seconds) for x, d in zip(xs, shown, strict=True)]
    actual = [(x, v) for x, v in actual if v is not None]
    if actual:
        top.plot(*zip(*actual, strict=True), "k.-", linewidth=1, label="time-to-data")
    forecast = [(x, d.forecast_seconds) for x, d in zip(xs, shown, strict=True)]
    forecast = [(x, v) for x, v in forecast if v is not None]
    if forecast:
        top.plot(*zip(*forecast, strict=True), "o", mfc="none", mec="#d81b60", label="forecast")
    stopped = [x for x, d in zip(xs, shown, strict=True) if d.state != "released"]
    for x in stopped:
        top.axvspan(x - 0.45, x + 0.45, color="#ffcdd2", zorder=0)
    top.set_xlim(-0.75, max(len(shown), 12) - 0.25)  # a lone delivery stays a bar, not a wall
    top.set_title("Time-to-data per delivery (latest attempt's steps; red band: not released)")
    top.set_ylabel("seconds")
    top.set_xticks(xs, [d.arrived_at.strftime("%m-%d %H:%M") for d in shown], rotation=60)
    top.tick_params(axis="x", labelsize=6)
    top.legend(fontsize=7, ncols=4, loc="upper right")
    weeks = ops.weeks[-26:]
    wx = list(range(len(weeks)))
    bottom.plot(wx, [w.p50_seconds for w in weeks], "o-", color="#1e88e5", label="p50")
    bottom.plot(wx, [w.p90_seconds for w in weeks], "s--", color="#e53935", label="p90")
    bottom.set_xlim(-0.5, max(len(weeks), 6) - 0.5)
    bottom.set_xticks(wx, [w.week for w in weeks])
    bottom.tick_params(axis="x", labelsize=7)
    bottom.set_title("Time-to-data per week of arrival")
    bottom.set_ylabel("seconds")
    bottom.legend(fontsize=7)
    return fig
