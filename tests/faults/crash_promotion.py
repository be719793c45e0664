"""A child process that promotes a staged release and SIGKILLs itself at a chosen point.

Run as ``python -m tests.faults.crash_promotion TICKET_JSON POINT`` with the
archive's settings in the environment (FIRSTLIGHT_*). Points:

- ``before-switch``: the files are stored, the switch transaction not begun;
- ``after-switch``: the switch is written, the ledger's terminal state not yet
  (inside the one transaction: the kill aborts both);
- ``after-commit``: switch and ledger committed, the inbox copy not removed.

A kill -9, not an exception: no ``finally`` or ``except`` runs, as on a power cut.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import firstlight.services.promotion as promotion
from firstlight.domain.ledger import Decision
from firstlight.services.context import context_for
from firstlight.services.ticket import Ticket
from firstlight.storage.ledger import Ledger
from firstlight.storage.releases import ReleaseStore

POINTS = ("before-switch", "after-switch", "after-commit")


def _die(*_args: Any, **_kwargs: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def main(ticket_file: str, point: str) -> None:
    raw = json.loads(Path(ticket_file).read_text())
    ticket = Ticket(**{**raw, "decision": Decision(raw["decision"])})
    if point == "before-switch":
        ReleaseStore.promote_in = _die  # type: ignore[method-assign]
    elif point == "after-switch":
        Ledger.finish_in = staticmethod(_die)  # type: ignore[method-assign]
    elif point == "after-commit":
        promotion.remove_from_inbox = _die  # type: ignore[attr-defined]
    else:
        raise SystemExit(f"unknown point {point!r}: one of {POINTS}")
    promotion.promote_release(context_for(), ticket)
    raise SystemExit("not killed: the crash point was never reached")


if __name__ == "__main__":
    main(*sys.argv[1:3])
