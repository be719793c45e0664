"""The Python examples of docs/querying.md run, as written, against the test service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.tap.conftest import Service

DOC = Path(__file__).resolve().parents[2] / "docs" / "querying.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
DOC_URL = "http://127.0.0.1:8300"


def _blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


def test_the_document_has_examples() -> None:
    blocks = _blocks()

    assert len(blocks) >= 4
    assert all(DOC_URL in b for b in blocks)


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_example_runs(service: Service, index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code = _blocks()[index].replace(DOC_URL, service.url)

    exec(compile(code, f"{DOC.name} example {index + 1}", "exec"), {})

    assert capsys.readouterr().out.strip()  # every example prints what it found
