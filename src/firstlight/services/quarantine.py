"""Quarantine: a rejected delivery kept byte-identical, with its report.

Layout: ``quarantine/<mission>/<delivery_id>/<attempt stamp>/delivery/`` (the
bytes, symlinks copied as links, never followed) and ``report.json`` beside
it. Anything the delivery had put in staging is discarded first, so nothing
of it is left in the archive database.

A delivery that cannot be copied byte-identically within bounded space (a
FIFO, socket or device in it, a sparse file, an unreadable file or folder)
is not copied at all: the ledger records it rejected with the reason and the
delivery is left untouched where it is, for its producer or an operator. A
copy is only started when the quarantine's disk has room for it, and a copy
that fails half-way is removed, so no partial quarantine folder is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from firstlight.checks.verify import sparse_problem
from firstlight.domain.findings import Finding, Report
from firstlight.domain.ledger import Decision, DeliveryState, LedgerEntry, Stage
from firstlight.domain.manifest import now_utc
from firstlight.errors import ConflictError, ExternalError
from firstlight.formats.digest import sha256_file
from firstlight.services.context import Context
from firstlight.services.inbox import remove_from_inbox
from firstlight.services.ticket import Ticket
from firstlight.storage.gate_records import GateDecisionRecord, GateRecords
from firstlight.storage.releases import ReleaseStateError


class QuarantineError(ExternalError):
    """The copy into quarantine is not byte-identical; the original is kept."""


# Room the quarantine's disk keeps free after a copy (for the report, the ledger, logs).
FREE_SPACE_RESERVE_BYTES = 64 << 20


def quarantine_delivery(ctx: Context, ticket: Ticket, report: Report) -> Path | None:
    """Discard staging work, keep the bytes and the report, close the ledger entry.

    Returns the quarantine folder, or None when the delivery cannot be copied
    (see the module docstring): it is then rejected and left where it is.
    """
    with ctx.archive.ledger.stage(ticket.delivery_pk, ticket.attempt, Stage.QUARANTINE):
        _discard_staging(ctx, ticket)
        uncopyable = _uncopyable(ticket.path) if ticket.path.is_dir() else []
        if uncopyable:
            _reject_in_place(ctx, ticket, report, uncopyable)
            return None
        stamp = now_utc().strftime("%Y%m%dT%H%M%S%fZ")
        dest = ctx.settings.quarantine_dir / ticket.mission / ticket.delivery_id / stamp
        dest.mkdir(parents=True)
        try:
            if ticket.path.is_dir():
                _require_room(ticket.path, dest)
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
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)  # no partial copy: the original stays
            raise
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


def _reject_in_place(
    ctx: Context, ticket: Ticket, report: Report, uncopyable: list[Finding]
) -> None:
    """Record the delivery rejected, with why it was not copied; touch nothing of it."""
    kept = Report(step=report.step)
    kept.extend([*report.findings, *uncopyable])
    reason = (
        f"{report.summary()}; not copied to quarantine ({uncopyable[0].file}: "
        f"{uncopyable[0].reason}), left untouched at {ticket.delivery_path}"
    )
    ctx.archive.ledger.record_findings(
        ticket.delivery_pk, ticket.attempt, Report(step="quarantine", findings=uncopyable)
    )
    ctx.archive.ledger.finish(
        ticket.delivery_pk,
        DeliveryState.REJECTED,
        reason=reason,
        report=json.loads(kept.to_json()),
    )


def _uncopyable(root: Path) -> list[Finding]:
    """What in the delivery cannot be copied byte-identically in bounded space (lstat only)."""
    problems: list[Finding] = []

    def unreadable(exc: OSError) -> None:
        rel = Path(exc.filename or root).relative_to(root).as_posix()
        problems.append(_cannot_copy(rel, f"folder cannot be listed: {exc.strerror or exc}"))

    for current, _dirs, files in os.walk(root, onerror=unreadable, followlinks=False):
        for name in files:
            path = Path(current) / name
            rel = path.relative_to(root).as_posix()
            try:
                st = path.lstat()
            except OSError as exc:
                problems.append(_cannot_copy(rel, f"cannot be read: {exc.strerror or exc}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                continue  # copied as a link, never followed
            if not stat.S_ISREG(st.st_mode):
                problems.append(_cannot_copy(rel, f"is a {_special_kind(st.st_mode)}"))
            elif (sparse := sparse_problem(st)) is not None:
                problems.append(_cannot_copy(rel, sparse))
            elif not os.access(path, os.R_OK):
                problems.append(_cannot_copy(rel, "cannot be read: permission denied"))
    return problems


def _cannot_copy(rel: str, why: str) -> Finding:
    return Finding(check="quarantine.uncopyable", reason=why, file=rel or ".")


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def _require_room(source: Path, dest: Path) -> None:
    """Refuse to start a copy the quarantine's disk cannot hold (an infrastructure error)."""
    needed = sum((Path(d) / f).lstat().st_size for d, _, files in os.walk(source) for f in files)
    free = shutil.disk_usage(dest).free
    if needed + FREE_SPACE_RESERVE_BYTES > free:
        raise OSError(
            f"quarantine disk full: {needed} bytes to copy, {free} free "
            f"(keeping {FREE_SPACE_RESERVE_BYTES} in reserve); the delivery stays in the inbox"
        )


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
    """Deliveries whose last word was quarantine or rejection, newest first (those left
    in place uncopied too: their reason says where)."""
    return sorted(
        (
            e
            for e in ctx.archive.ledger.entries()
            if e.state in (DeliveryState.QUARANTINED, DeliveryState.REJECTED)
        ),
        key=lambda e: e.finished_at or e.arrived_at,
        reverse=True,
    )


@dataclass(frozen=True)
class QuarantineView:
    """What ``quarantine show`` tells about one delivery, whatever its state."""

    entry: LedgerEntry
    # Every finding: what each step recorded, then the rejecting step's report (the
    # gate's, an ingest failure's) where the steps' records do not hold it already.
    findings: list[Finding]
    gate: GateDecisionRecord | None  # the gate's word on the latest attempt, if it spoke

    @property
    def quarantined(self) -> bool:
        return self.entry.state in (DeliveryState.QUARANTINED, DeliveryState.REJECTED)


def inspect_delivery(ctx: Context, reference: str) -> QuarantineView:
    """A delivery (ledger id or MISSION/DELIVERY_ID) with every finding and the gate's word."""
    ledger = ctx.archive.ledger
    entry = ledger.lookup(reference)
    found = ledger.findings(entry.delivery_pk)
    report = ledger.terminal_report(entry.delivery_pk) or {}
    seen = set(found)
    for data in report.get("findings", []):
        finding = Finding.from_dict(data)
        if finding not in seen:
            found.append(finding)
            seen.add(finding)
    gate = GateRecords(ctx.archive.engine).decision(entry.delivery_pk, entry.attempts)
    return QuarantineView(entry, found, gate)


def retry_quarantined(ctx: Context, delivery_pk: int) -> Path:
    """Send a quarantined delivery through again: a copy lands in the inbox whole.

    The operator fixes the copy in quarantine (or its producer delivers a
    corrected manifest) first; the quarantine copy itself stays until the
    retried delivery has its own terminal state. The new folder is written
    under a hidden name and renamed into place, so a watcher sees it complete.
    """
    entry = ctx.archive.ledger.entry(delivery_pk)
    if entry.state in (DeliveryState.QUARANTINED, DeliveryState.REJECTED) and (
        entry.quarantine_path is None
    ):
        raise ConflictError(
            f"{entry.mission}/{entry.delivery_id} (ledger id {delivery_pk}) was rejected "
            "without a quarantine copy (the reason says where it was left): deliver it again"
        )
    if entry.quarantine_path is None or entry.state not in (
        DeliveryState.QUARANTINED,
        DeliveryState.REJECTED,
    ):
        raise ConflictError(
            f"{entry.mission}/{entry.delivery_id} (ledger id {delivery_pk}) is "
            f"{entry.state.value}, not quarantined: nothing to retry"
        )
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
