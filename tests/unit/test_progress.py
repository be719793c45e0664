"""Progress of validate and ingest: a few lines a file, whatever the chunk size."""

from __future__ import annotations

from firstlight.domain.progress import describe, throttled


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_for_each_tenth_and_the_end_not_each_chunk() -> None:
    lines: list[tuple[str, int, int | None]] = []
    report = throttled(lambda *line: lines.append(line), clock=Clock())

    for done in range(1_000, 100_001, 1_000):  # 100 chunks of 1%
        report("a.fits checked", done, 100_000)
    report("a.fits checked", 100_000, 100_000)  # the end said twice is said once

    assert [done for _, done, _ in lines] == list(range(10_000, 100_001, 10_000))


def test_files_are_throttled_apart_and_slow_ones_by_time() -> None:
    clock = Clock()
    lines: list[tuple[str, int, int | None]] = []
    report = throttled(lambda *line: lines.append(line), seconds=30, clock=clock)

    report("a.fits loaded", 5, 1_000)  # 0.5%: too little to say
    report("b.csv checked", 100, None)  # unknown total: time decides
    clock.now = 31
    report("a.fits loaded", 10, 1_000)
    report("b.csv checked", 200, None)
    report("b.csv checked", 300, None)  # within 30 s of the last line

    assert lines == [("a.fits loaded", 10, 1_000), ("b.csv checked", 200, None)]


def test_lines_read_as_rows_done_of_all() -> None:
    assert describe("a.fits loaded", 250_000, 1_000_000) == (
        "a.fits loaded: 250,000 / 1,000,000 rows (25%)"
    )
    assert describe("b.csv checked", 1_500, None) == "b.csv checked: 1,500 rows"
