"""Quarantine: a rejected delivery kept byte-identical, with its report.

Layout: ``quarantine/<mission>/<delivery_id>/<attempt stamp>/delivery/`` (the
bytes, symlinks copied as links, never followed) and ``report.json`` beside
it. Anything the delivery had put in staging is discarded first, so nothing
of it is left in the archive database.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

from firstlight.domain.findings import Report
from firstlight.domain.ledger import Decision, DeliveryState, LedgerEntry, Stage
from firstlight.domain.manifest import now_utc
from firstlight.formats.digest import sha256_file
from firstlight.services.context import Context
from firstlight.services.inbox import remove_from_inbox
from firstlight.services.ticket import Ticket
from firstlight.storage.releases import ReleaseStateError


class QuarantineError(RuntimeError):
    """The copy into quarantine is not byte-identical; the original is kept."""


def quarantine_delivery(ctx: Context, ticket: Ticket, report: Report) -> Path:
    """Discard staging work, keep the bytes and the report, close the ledger entry."""
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.QUARANTINE):
        _discard_staging(ctx, ticket)
        stamp = now_utc().strftime("%Y%m%dT%H%M%S%fZ")
        dest = ctx.settings.quarantine_dir / ticket.mission / ticket.delivery_id / stamp
        dest.mkdir(parents=True)
        if ticket.path.is_dir():
            shutil.copytree(ticket.path, dest / "delivery", symlinks=True)
            _check_identical(ticket.path, dest / "delivery")
        payload = {
            "mission": ticket.mission,
            "delivery_id": ticket.delivery_id,
            "manifest_sha256": ticket.manifest_sha256,
            "attempt": ticket.attempt,
            "source": ticket.delivery_path,
            "quarantined_at": now_utc().isoformat(),
            "reason": report.summary(),
            "report": json.loads(report.to_json()),
        }
        (dest / "report.json").write_text(json.dumps(payload, indent=2) + "\n")
    state = (
        DeliveryState.REJECTED if ticket.decision is Decision.REJECT else DeliveryState.QUARANTINED
    )
    ctx.archive.ledger.finish(
        ticket.delivery_pk,
        state,
        reason=report.summary(),
        report=payload["report"],
        quarantine_path=str(dest),
    )
    remove_from_inbox(ctx, ticket)
    return dest


def _discard_staging(ctx: Context, ticket: Ticket) -> None:
    if ticket.release_key is None or ticket.decision is Decision.REJECT:
        return  # a rejected arrival never built anything; the release is someone else's
    # A promoted release (a failure after the switch) stands: discard refuses it.
    with contextlib.suppress(ReleaseStateError):
        ctx.archive.releases.discard(ticket.release_key)


def _check_identical(source: Path, copy: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        twin = copy / path.relative_to(source)
        if sha256_file(path) != sha256_file(twin):
            raise QuarantineError(f"{twin}: differs from {path} after copying")


def quarantined(ctx: Context) -> list[LedgerEntry]:
    """Deliveries whose last word was quarantine or rejection, newest first."""
    held = [e for e in ctx.archive.ledger.entries() if e.quarantine_path]
    return sorted(
        (e for e in held if e.state in (DeliveryState.QUARANTINED, DeliveryState.REJECTED)),
        key=lambda e: e.finished_at or e.arrived_at,
        reverse=True,
    )


def retry_quarantined(ctx: Context, delivery_pk: int) -> Path:
    """Send a quarantined delivery through again: a copy lands in the inbox whole.

    The operator fixes the copy in quarantine (or its producer delivers a
    corrected manifest) first; the quarantine copy itself stays until the
    retried delivery has its own terminal state. The new folder is written
    under a hidden name and renamed into place, so a watcher sees it complete.
    """
    entry = ctx.archive.ledger.entry(delivery_pk)
    if entry.quarantine_path is None or entry.state not in (
        DeliveryState.QUARANTINED,
        DeliveryState.REJECTED,
    ):
        raise QuarantineError(f"delivery {delivery_pk} is {entry.state.value}, not quarantined")
    source = Path(entry.quarantine_path) / "delivery"
    if not source.is_dir():
        raise QuarantineError(f"{source}: the quarantined bytes are missing")
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    inbox = ctx.settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / f"{entry.delivery_id}-retry-{stamp}"
    staging = inbox / f".{target.name}.tmp"
    shutil.copytree(source, staging, symlinks=True)
    _check_identical(source, staging)
    staging.rename(target)
    return target
