"""Progress of the long steps (rows done of a total), reported a few times, not per chunk.

Belongs here: the callback type validate and ingest take (``Progress``: what is
being done, to which file; rows done; rows in all, None if unknown) and
``throttled``, which passes a report on only when another share of the rows
is done (a tenth by default) or a while has passed, and always the last one,
so a run's log gets a few lines per file however small the chunks. Who shows
progress (the flow's run logger, the command line) wraps its own callback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[str, int, int | None], None]
RowProgress = Callable[[int, int | None], None]  # one pass over one file: (done, total)


@dataclass
class _Seen:
    done: int
    at: float


def throttled(
    emit: Progress,
    *,
    share: float = 0.1,
    seconds: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> Progress:
    """``emit`` at each further ``share`` of a total, every ``seconds``, and at the end."""
    seen: dict[str, _Seen] = {}

    def report(what: str, done: int, total: int | None) -> None:
        now = clock()
        last = seen.get(what)
        if last is None:
            last = seen[what] = _Seen(0, now)
        finished = total is not None and done >= total
        if finished and last.done >= done:
            return  # the end, already said
        further = total is not None and total > 0 and done - last.done >= share * total
        if finished or further or now - last.at >= seconds:
            seen[what] = _Seen(done, now)
            emit(what, done, total)

    return report


# What ``describe`` writes, to find its lines among a run's logs.
PROGRESS_LINE = re.compile(r": [\d,]+( / [\d,]+)? rows( \(\d+%\))?$")


def describe(what: str, done: int, total: int | None) -> str:
    """One line: ``catalogue/sources.fits validated: 200,000 / 1,000,000 rows (20%)``."""
    if not total:
        return f"{what}: {done:,} rows"
    return f"{what}: {done:,} / {total:,} rows ({100 * done // total}%)"
