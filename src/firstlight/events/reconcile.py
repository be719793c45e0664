"""The reconciler: deliveries sitting in the inbox that no live run is working on.

Belongs here: comparing what the inbox holds with what the ledger knows, to
catch an arrival whose event was lost (a watcher down, an event dropped) and
a delivery whose run died (its claim lapsed: a worker killed, a machine
gone). It reads; it never moves, deletes or records anything. A delivery
whose ledger line is terminal, or claimed by a live run, is left alone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from firstlight.domain.manifest import MANIFEST_NAME
from firstlight.events.arrival import Arrival
from firstlight.events.local_inbox import find_deliveries, readiness
from firstlight.storage.ledger import Ledger

SOURCE = "reconcile"
logger = logging.getLogger(__name__)


def find_missed(inbox: Path, ledger: Ledger, *, settle_seconds: float) -> list[Arrival]:
    """Arrivals for inbox deliveries that are due and have no ledger line, or whose
    run's claim lapsed.

    Due: a manifest not modified for ``settle_seconds``, complete or not, parsed
    or not. A younger one's announcement may simply be on its way; an older
    one's was lost (an incomplete or broken one is then rejected by
    verification with the reason, so no arrival waits in the inbox for ever).
    """
    missed: list[Arrival] = []
    abandoned = {entry.delivery_pk for entry in ledger.lapsed()}
    for folder in find_deliveries(inbox):
        try:
            arrival = _missed(folder, ledger, settle_seconds, abandoned)
        except Exception:  # a poison delivery must not hide the others from recovery
            logger.exception("reconcile: checking %s failed; the others go on", folder)
            continue
        if arrival is not None:
            missed.append(arrival)
    return missed


def _missed(
    folder: Path, ledger: Ledger, settle_seconds: float, abandoned: set[int]
) -> Arrival | None:
    arrival = readiness(folder, source=SOURCE).arrival
    if arrival is None or not _due(folder, settle_seconds):
        return None
    entry = ledger.find(arrival.mission, arrival.delivery_id, arrival.manifest_sha256)
    if entry is None or entry.delivery_pk in abandoned:
        return arrival
    return None


def _due(folder: Path, settle_seconds: float) -> bool:
    # Only manifests older than the settle time: a younger one's announcement may
    # simply be on its way (watcher -> event -> trigger -> run -> ledger).
    try:
        modified = (folder / MANIFEST_NAME).stat().st_mtime
    except OSError:
        return False  # gone meanwhile
    # Wall clock against a file time: the only clock a stateless check has.
    return time.time() - modified >= settle_seconds
