"""Histories for the release gate: normal deliveries of one mission, then drifted ones.

``normal`` makes a delivery like every other of its mission (same field, a few
hundred rows more or less); each ``drifted_*`` makes one that a careful
archivist would want to look at before it goes public. ``stage`` runs the
steps up to the gate without validation (the gate reads what ingest records;
validation's child processes cost seconds per delivery and decide nothing here).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits

from firstlight.domain.ledger import Decision
from firstlight.producer.synth import synthesize_delivery
from firstlight.services.context import Context
from firstlight.services.indexing import index_release
from firstlight.services.ingest import ingest
from firstlight.services.ticket import Ticket
from firstlight.services.verification import admit_delivery, verify_delivery
from tests.deliveries import remanifest

MISSION = "survey"


def normal(
    inbox: Path, n: int, *, mission: str = MISSION, rows: int | None = None, **kwargs: object
) -> Path:
    """The n-th normal delivery: same field and columns, 1,200 to 1,800 rows (or ``rows``)."""
    rows = rows or 1200 + (n * 137) % 600
    return synthesize_delivery(
        inbox,
        mission=mission,
        delivery_id=f"{mission}-{n:04d}",
        release_version=str(n),
        seed=n,
        catalogue_rows=rows,
        images=1,
        spectra=0,
        timeseries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def _edit_catalogue(path: Path, edit: Callable[[fits.HDUList], None]) -> None:
    catalogue = path / "catalogue" / "sources.fits"
    with fits.open(catalogue) as hdul:
        hdus = fits.HDUList([hdu.copy() for hdu in hdul])
    edit(hdus)
    hdus.writeto(catalogue, overwrite=True, checksum=True)
    remanifest(path)


def drifted_magnitudes(inbox: Path, n: int, shift: float = 0.8) -> Path:
    """Every magnitude fainter by ``shift`` (a zero-point error)."""
    path = normal(inbox, n)

    def edit(hdus: fits.HDUList) -> None:
        hdus[1].data["phot_g_mean_mag"] += np.float32(shift)

    _edit_catalogue(path, edit)
    return path


def drifted_renamed_column(inbox: Path, n: int) -> Path:
    """bp_rp delivered as bp_rp_colour."""
    path = normal(inbox, n)

    def edit(hdus: fits.HDUList) -> None:
        hdus[1].columns.change_name("bp_rp", "bp_rp_colour")
        hdus[1] = fits.BinTableHDU(data=hdus[1].data, header=hdus[1].header, name="SOURCES")

    _edit_catalogue(path, edit)
    return path


def drifted_tenfold(inbox: Path, n: int, rows: int = 15_000) -> Path:
    """Ten times the usual rows (or ``rows``)."""
    return normal(inbox, n, rows=rows)


def drifted_sky_region(inbox: Path, n: int) -> Path:
    return normal(inbox, n, center_ra=230.0, center_dec=-40.0)


def drifted_instrument(inbox: Path, n: int) -> Path:
    """The image says it came from an instrument the mission never delivered before."""
    path = normal(inbox, n)
    [image] = sorted((path / "images").glob("*.fits"))
    with fits.open(image) as hdul:
        hdus = fits.HDUList([hdu.copy() for hdu in hdul])
    hdus[0].header["INSTRUME"] = "NEWCAM"
    hdus.writeto(image, overwrite=True, checksum=True)
    remanifest(path)
    return path


DRIFTS: dict[str, Callable[[Path, int], Path]] = {
    "magnitudes": drifted_magnitudes,
    "renamed_column": drifted_renamed_column,
    "tenfold_rows": drifted_tenfold,
    "sky_region": drifted_sky_region,
    "instrument": drifted_instrument,
}


def stage(ctx: Context, path: Path) -> Ticket:
    """Admit, verify, ingest and index: a staged release ready for the gate."""
    ticket = admit_delivery(ctx, path)
    assert ticket.decision is Decision.PROCEED, ticket.reason
    verify_delivery(ctx, ticket)
    ingest(ctx, ticket)
    index_release(ctx, ticket)
    return ticket
