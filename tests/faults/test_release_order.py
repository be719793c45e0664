"""The current release only moves forward, whatever order runs finish in (issue 12 item 6).

Thirty deliveries of one mission arriving together once left v7 current after v28:
whichever promotion committed last won. Now an older release, promoted later, is
public by its key but not current; only an explicit rollback moves the pointer back.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from firstlight.domain.release import release_order
from firstlight.services.context import Context
from firstlight.services.promotion import PromotionSummary, promote_release
from firstlight.services.ticket import Ticket
from tests.deliveries import generated
from tests.faults import invariants
from tests.steps import stage_release


def _current(ctx: Context) -> list[str]:
    return [r.release_key for r in ctx.archive.releases.list_releases("demo") if r.current]


def _stage(ctx: Context, tmp_path: Path, versions: list[str]) -> dict[str, Ticket]:
    return {
        v: stage_release(ctx, generated(tmp_path / f"p{v}", version=v, rows=120)) for v in versions
    }


def test_release_order_is_natural() -> None:
    ordered = [
        ("dr1", "2"),
        ("dr1", "7"),
        ("dr1", "28"),
        ("dr2", "1"),
        ("dr10", "1"),
    ]
    assert sorted(ordered, key=lambda r: release_order(*r)) == ordered
    assert release_order("y2026", "2026-11-25") > release_order("y2026", "2026-9-30")
    assert release_order("dr1", "1.10") > release_order("dr1", "1.9")


def test_older_release_promoted_last_is_public_by_name_not_current(
    lite: Context, tmp_path: Path
) -> None:
    tickets = _stage(lite, tmp_path, ["2", "1"])
    first = promote_release(lite, tickets["2"])
    late = promote_release(lite, tickets["1"])
    assert first.made_current and not late.made_current
    assert late.current_release_key == "demo_dr1_v2"
    assert _current(lite) == ["demo_dr1_v2"]
    promoted = {r.release_key for r in lite.archive.releases.list_releases("demo") if r.promoted_at}
    assert promoted == {"demo_dr1_v1", "demo_dr1_v2"}
    invariants.every_delivery_terminal(lite, expected=2)
    invariants.current_never_older(lite)
    # Rollback stays explicit and goes to the release just before, in release order.
    assert lite.archive.releases.rollback("demo") == ("demo_dr1_v2", "demo_dr1_v1")
    assert _current(lite) == ["demo_dr1_v1"]


@pytest.mark.faults
def test_promotions_finishing_in_any_order_never_move_current_back(
    archive: Context, tmp_path: Path
) -> None:
    versions = ["7", "28", "3", "10"]
    tickets = _stage(archive, tmp_path, versions)
    for v in ["28", "3", "10", "7"]:  # finishing order, not release order
        promote_release(archive, tickets[v])
        invariants.current_never_older(archive)
        assert _current(archive) == ["demo_dr1_v28"]
    invariants.every_delivery_terminal(archive, expected=len(versions))
    assert invariants.public_files_match(archive) > 0


@pytest.mark.faults
def test_concurrent_promotions_leave_the_newest_current(pg: Context, tmp_path: Path) -> None:
    """Promotions committing at once take turns on the mission's pointer row."""
    versions = ["4", "9", "2", "6"]
    tickets = _stage(pg, tmp_path, versions)
    start = threading.Barrier(len(versions))
    results: dict[str, PromotionSummary | BaseException] = {}

    def promote(v: str) -> None:
        start.wait()
        try:
            results[v] = promote_release(pg, tickets[v])
        except BaseException as exc:  # reported below, with the version
            results[v] = exc

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    errors = {v: r for v, r in results.items() if isinstance(r, BaseException)}
    assert not errors, errors
    assert _current(pg) == ["demo_dr1_v9"]
    invariants.current_never_older(pg)
    invariants.every_delivery_terminal(pg, expected=len(versions))
