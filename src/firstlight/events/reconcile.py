"""The reconciler: deliveries sitting in the inbox that the ledger never heard of.

Belongs here: comparing what the inbox holds with what the ledger knows, to
catch an arrival whose event was lost (a watcher down, an event dropped). It
reads; it never moves, deletes or records anything. A delivery with a ledger
line for its exact content is left alone: a run owns it, or owned it.
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
    """Arrivals for inbox deliveries that are due and have no ledger line.

    Due: a manifest not modified for ``settle_seconds``, complete or not, parsed
    or not. A younger one's announcement may simply be on its way; an older
    one's was lost (an incomplete or broken one is then rejected by
    verification with the reason, so no arrival waits in the inbox for ever).
    """
    missed: list[Arrival] = []
    for folder in find_deliveries(inbox):
        try:
            arrival = _missed(folder, ledger, settle_seconds)
        except Exception:  # a poison delivery must not hide the others from recovery
            logger.exception("reconcile: checking %s failed; the others go on", folder)
            continue
        if arrival is not None:
            missed.append(arrival)
    return missed


def _missed(folder: Path, ledger: Ledger, settle_seconds: float) -> Arrival | None:
    arrival = readiness(folder, source=SOURCE).arrival
    if arrival is None or not _due(folder, settle_seconds):
        return None
    if ledger.find(arrival.mission, arrival.delivery_id, arrival.manifest_sha256) is None:
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
