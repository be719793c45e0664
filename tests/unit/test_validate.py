"""Step "validate": which checks run on which file, gathered in one report."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from firstlight.checks.isolation import Limits
from firstlight.checks.rules import FormatRules, load_rules
from firstlight.checks.validate import FILE_CHECKS, FileContext, validate_delivery
from firstlight.domain.findings import Finding
from firstlight.domain.manifest import Manifest
from tests.unit.test_catalogue_checks import definition, values, write_fits
from tests.unit.test_fits_checks import VALIDATIONS, image_hdul, table_hdul, write


@pytest.fixture(scope="module")
def rules() -> FormatRules:
    return load_rules(VALIDATIONS, "demo")  # the strict profile: a missing OBJECT is caught


def entry(folder: Path, rel: str, product_type: str, fmt: str, **extra: Any) -> dict[str, Any]:
    data = (folder / rel).read_bytes()
    return {
        "path": rel,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "product_type": product_type,
        "format": fmt,
        **extra,
    }


def make_delivery(
    folder: Path, *, image_cards: dict[str, object] | None = None, ids: np.ndarray | None = None
) -> Manifest:
    """Image, spectrum, FITS and Parquet catalogues, and auxiliary files."""
    folder.mkdir()
    write(image_hdul(**(image_cards or {})), folder / "img.fits")
    write(table_hdul(), folder / "spec.fits")
    write_fits(folder / "stars.fits", values())
    cat = values() if ids is None else values(source_id=ids)
    pq.write_table(pa.table(cat), folder / "stars.parquet")
    # Auxiliary files are verify's business only, even ones that look broken.
    (folder / "notes.fits").write_bytes(b"not FITS at all")
    (folder / "README.txt").write_text("hello\n")
    no_units = definition(ra={"unit": None}, dec={"unit": None})
    files = [
        entry(folder, "img.fits", "image", "fits"),
        entry(folder, "spec.fits", "spectrum", "fits"),
        entry(folder, "stars.fits", "catalogue", "fits", table=definition().model_dump()),
        entry(
            folder,
            "stars.parquet",
            "catalogue",
            "parquet",
            table={**no_units.model_dump(), "name": "stars_pq"},
        ),
        entry(folder, "notes.fits", "auxiliary", "fits"),
        entry(folder, "README.txt", "auxiliary", "other"),
    ]
    return Manifest.model_validate(
        {
            "mission": "testmission",
            "delivery_id": "d-001",
            "release": {"name": "dr1", "version": "1"},
            "producer": "unit tests",
            "created": "2026-01-02T03:04:05Z",
            "files": files,
        }
    )


def test_valid_delivery(tmp_path: Path, rules: FormatRules) -> None:
    manifest = make_delivery(tmp_path / "d")
    report = validate_delivery(tmp_path / "d", manifest, rules)
    assert report.step == "validate"
    assert report.findings == []
    assert report.ok


def test_findings_name_their_files(tmp_path: Path, rules: FormatRules) -> None:
    ids = np.arange(8, dtype=np.int64)
    ids[7] = ids[0]
    manifest = make_delivery(tmp_path / "d", image_cards={"OBJECT": None}, ids=ids)
    report = validate_delivery(tmp_path / "d", manifest, rules, chunk_rows=2)
    assert sorted((f.file, f.check, f.sample_rows) for f in report.findings) == [
        ("img.fits", "fits.keyword", ()),
        ("stars.parquet", "table.key_unique", (0, 7)),
    ]
    assert not report.ok


def test_fits_catalogue_gets_format_and_content_checks(tmp_path: Path, rules: FormatRules) -> None:
    manifest = make_delivery(tmp_path / "d")
    dec = values()["dec"]
    dec[3] = 91.0
    fits_path = tmp_path / "d" / "stars.fits"
    fits_path.unlink()
    write_fits(fits_path, values(dec=dec))
    # Rename the CHECKSUM cards away: the rules require them in every HDU.
    fits_path.write_bytes(fits_path.read_bytes().replace(b"CHECKSUM", b"CHECKSUX"))
    report = validate_delivery(tmp_path / "d", manifest, rules)
    assert sorted((f.check, f.hdu, f.column) for f in report.findings) == [
        ("fits.checksum", 0, None),
        ("fits.checksum", 1, None),
        ("table.dec_range", None, "dec"),
    ]


def test_more_checks_join_as_functions(tmp_path: Path, rules: FormatRules) -> None:
    manifest = make_delivery(tmp_path / "d")
    seen: list[tuple[str, int]] = []

    def suite(ctx: FileContext) -> list[Finding]:
        seen.append((ctx.entry.path, ctx.chunk_rows))
        return [Finding("suite.demo", "always", file=ctx.entry.path)] if ctx.entry.table else []

    report = validate_delivery(
        tmp_path / "d", manifest, rules, chunk_rows=5, checks=(*FILE_CHECKS, suite)
    )
    assert [p for p, _ in seen] == [f.path for f in manifest.files]
    assert {rows for _, rows in seen} == {5}
    assert sorted(f.file or "" for f in report.findings) == ["stars.fits", "stars.parquet"]


def broken_check(ctx: FileContext) -> list[Finding]:
    """A check with a bug on one kind of file (module level: the sandbox pickles it)."""
    if ctx.entry.path == "img.fits":
        raise RuntimeError("a bug")
    return []


def test_files_checked_at_once_in_the_sandbox_report_as_in_process(
    tmp_path: Path, rules: FormatRules
) -> None:
    dec = values()["dec"]
    dec[3] = 91.0
    manifest = make_delivery(tmp_path / "d", image_cards={"OBJECT": None})
    (tmp_path / "d" / "stars.fits").unlink()
    write_fits(tmp_path / "d" / "stars.fits", values(dec=dec))
    checks = (broken_check, *FILE_CHECKS)
    in_process = validate_delivery(tmp_path / "d", manifest, rules, checks=checks)
    limits = Limits(memory_bytes=2**31, seconds=600)
    isolated = validate_delivery(
        tmp_path / "d", manifest, rules, checks=checks, limits=limits, processes=3
    )
    assert isolated.findings == in_process.findings  # the same, in the manifest's order
    # The crash costs one finding; the file's other checks still ran (its missing OBJECT).
    on_image = [(f.check, f.file) for f in isolated.findings if f.file == "img.fits"]
    assert ("validate.crash", "img.fits") in on_image
    assert any(check.startswith("fits.") for check, _ in on_image)
    assert any(f.check == "table.dec_range" for f in isolated.findings)
