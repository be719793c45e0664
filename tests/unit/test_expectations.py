"""Expectation suites as files: loading, mission overrides, chunked runs, Data Docs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firstlight.checks.data_docs import build_data_docs
from firstlight.checks.expectations import check_catalogue_suite, check_observation_suite
from firstlight.checks.suites import (
    SuiteError,
    SuiteKind,
    bind_to_table,
    load_suite,
    load_suites,
)
from firstlight.domain.findings import Finding, Severity
from firstlight.domain.manifest import FileFormat, TableDefinition
from tests.unit.test_catalogue_checks import definition, values, write_fits
from tests.unit.test_fits_checks import VALIDATIONS

MAG_UCD = {"ucd": "phot.mag;em.opt.V"}


@pytest.fixture
def validations(tmp_path: Path) -> Path:
    """A copy of the project's validations/ that tests may add mission files to."""
    folder = tmp_path / "validations"
    shutil.copytree(VALIDATIONS, folder)
    return folder


def add_mission_file(validations: Path, mission: str, kind: str, expectations: Any) -> Path:
    path = validations / "missions" / mission / f"{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": f"{mission} {kind}", "expectations": expectations}))
    return path


def table(**changes: Any) -> TableDefinition:
    return definition(mag=MAG_UCD, **changes)


def run_catalogue(
    path: Path, validations: Path, mission: str = "demo", chunk_rows: int = 3, **kw: Any
) -> list[Finding]:
    suite = load_suite(validations, mission, SuiteKind.CATALOGUE)
    return check_catalogue_suite(
        path, "cat/stars.fits", FileFormat.FITS, table(), suite, chunk_rows=chunk_rows, **kw
    )


# --- suites as files --------------------------------------------------------------------


def test_default_suites_load_and_name_their_files() -> None:
    suites = load_suites(VALIDATIONS, "demo")
    assert suites.catalogue.sources == (str(VALIDATIONS / "suites" / "catalogue.json"),)
    types = {e.type for e in suites.observation.expectations}
    assert "expect_column_pair_values_a_to_be_greater_than_b" in types
    assert suites.catalogue.expectations


def test_roles_and_ucds_become_columns() -> None:
    suite = load_suite(VALIDATIONS, "demo", SuiteKind.CATALOGUE)
    bound = bind_to_table(suite, table(), ["SOURCE_ID", "RA", "DEC", "MAG"])
    # Only the magnitude has a UCD a default expectation names; spelled as in the file.
    assert [(b.type, b.columns) for b in bound] == [
        ("expect_column_values_to_be_between", ("MAG",))
    ]


def test_mission_override_replaces_adds_and_disables(validations: Path) -> None:
    add_mission_file(
        validations,
        "strict",
        "catalogue",
        [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "{ucd:phot.mag}", "min_value": 10.0, "max_value": 13.0},
            },
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "{key}"}},
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "{ucd:stat.error}"},
                "meta": {"disabled": True},
            },
        ],
    )
    default = load_suite(validations, "demo", SuiteKind.CATALOGUE)
    strict = load_suite(validations, "strict", SuiteKind.CATALOGUE)
    assert len(strict.sources) == 2
    mags = [e for e in strict.expectations if e.kwargs.get("column") == "{ucd:phot.mag}"]
    assert [m.kwargs["max_value"] for m in mags] == [13.0]
    assert any(e.type == "expect_column_values_to_not_be_null" for e in strict.expectations)
    assert not any(e.kwargs.get("column") == "{ucd:stat.error}" for e in strict.expectations)
    assert len(strict.expectations) == len(default.expectations)  # one added, one removed


def test_mission_file_changes_the_outcome_without_code(tmp_path: Path, validations: Path) -> None:
    mag = values()["mag"]
    mag[[1, 5]] = [14.0, 9.0]  # plausible magnitudes, outside this mission's band
    path = write_fits(tmp_path / "s.fits", values(mag=mag))
    assert run_catalogue(path, validations, "demo") == []
    add_mission_file(
        validations,
        "strict",
        "catalogue",
        [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "{ucd:phot.mag}", "min_value": 10.0, "max_value": 13.0},
            }
        ],
    )
    [finding] = run_catalogue(path, validations, "strict")
    assert finding.check == "expectation:expect_column_values_to_be_between"
    assert (finding.column, finding.failing_count, finding.sample_rows) == ("mag", 2, (1, 5))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "x", "expectations": [], "colour": 1}', "colour: unknown field"),
        (
            '{"name": "x", "expectations": [{"type": "expect_x", "kwargs": {"column": "{id}"}}]}',
            "unknown placeholder '{id}'",
        ),
        ('{"name": "x", "expectations": [{"type": "drop_table"}]}', "type"),
    ],
)
def test_bad_suite_file_names_file_and_problem(
    validations: Path, content: str, problem: str
) -> None:
    path = validations / "missions" / "bad" / "catalogue.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(SuiteError) as err:
        load_suites(validations, "bad")
    assert str(path) in str(err.value)
    assert problem in str(err.value)


# --- catalogues, chunk by chunk ---------------------------------------------------------


def test_every_row_is_seen_and_results_are_summed_over_chunks(
    tmp_path: Path, validations: Path
) -> None:
    mag = values()["mag"]
    mag[[0, 2, 7]] = [99.0, -40.0, np.inf]  # rows 0 and 2 in chunk 1, row 7 in chunk 3
    path = write_fits(tmp_path / "s.fits", values(mag=mag))
    results = tmp_path / "results"
    [finding] = run_catalogue(path, validations, results_dir=results)
    assert finding.check == "expectation:expect_column_values_to_be_between"
    assert finding.file == "cat/stars.fits"
    assert finding.column == "mag"
    assert finding.failing_count == 3
    assert finding.sample_rows == (0, 2, 7)
    assert finding.observed is not None
    assert "source_id 100, 102, 107" in finding.observed
    assert finding.severity is Severity.ERROR
    [written] = results.iterdir()
    summed = json.loads(written.read_text())
    assert summed["meta"]["firstlight"]["chunks"] == 3
    [failed] = [r for r in summed["results"] if not r["success"]]
    assert failed["result"]["element_count"] == 8
    assert failed["result"]["unexpected_count"] == 3


def test_mostly_applies_to_the_whole_table_not_to_each_chunk(
    tmp_path: Path, validations: Path
) -> None:
    add_mission_file(
        validations,
        "mostly",
        "catalogue",
        [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "{ucd:phot.mag}", "max_value": 13.0, "mostly": 0.7},
            }
        ],
    )
    mag = values()["mag"]
    mag[[0, 1]] = 20.0  # 2 of the first chunk's 3 rows, but 6 of 8 rows pass overall
    assert (
        run_catalogue(write_fits(tmp_path / "a.fits", values(mag=mag)), validations, "mostly") == []
    )
    mag[2] = 20.0  # 5 of 8: below 0.7
    [finding] = run_catalogue(
        write_fits(tmp_path / "b.fits", values(mag=mag)), validations, "mostly"
    )
    assert finding.failing_count == 3


def test_warning_severity_reports_without_rejecting(tmp_path: Path, validations: Path) -> None:
    add_mission_file(
        validations,
        "lenient",
        "catalogue",
        [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "{ucd:phot.mag}", "min_value": -5.0, "max_value": 35.0},
                "severity": "warning",
            }
        ],
    )
    mag = values()["mag"]
    mag[4] = 50.0
    path = write_fits(tmp_path / "s.fits", values(mag=mag))
    [finding] = run_catalogue(path, validations, "lenient")
    assert finding.severity is Severity.WARNING
    assert finding.failing_count == 1


def test_catalogue_suite_refuses_whole_table_expectations(
    tmp_path: Path, validations: Path
) -> None:
    add_mission_file(
        validations,
        "unique",
        "catalogue",
        [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "{key}"}}],
    )
    path = write_fits(tmp_path / "s.fits", values())
    [finding] = run_catalogue(path, validations, "unique")
    assert finding.check == "expectation.suite"
    assert "missions/unique/catalogue.json" in finding.reason
    assert "row-level" in finding.reason


def test_unreadable_table_is_left_to_the_streaming_checks(
    tmp_path: Path, validations: Path
) -> None:
    path = tmp_path / "s.fits"
    path.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    assert run_catalogue(path, validations) == []


# --- observation rows ---------------------------------------------------------------


def observation(file: str, **changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "file": file,
        "obs_id": file.removesuffix(".fits"),
        "obs_publisher_did": f"ivo://firstlight/demo?x/{file}",
        "dataproduct_type": "image",
        "calib_level": 2,
        "s_ra": 150.0,
        "s_dec": 2.0,
        "s_fov": 0.1,
        "t_min": 60000.0,
        "t_max": 60000.1,
        "t_exptime": 300.0,
        "em_min": 4e-7,
        "em_max": 5.5e-7,
    }
    row.update(changes)
    return row


def test_observation_suite_names_the_files_of_failing_rows(tmp_path: Path) -> None:
    suite = load_suite(VALIDATIONS, "demo", SuiteKind.OBSERVATION)
    rows = [
        observation("a.fits"),
        observation("b.fits", t_min=60001.0),  # ends before it starts
        observation("c.fits", calib_level=7, dataproduct_type="picture"),
    ]
    found = {(f.check, f.file) for f in check_observation_suite(rows, suite, tmp_path)}
    assert found == {
        ("expectation:expect_column_pair_values_a_to_be_greater_than_b", "b.fits"),
        ("expectation:expect_column_values_to_be_between", "c.fits"),
        ("expectation:expect_column_values_to_be_in_set", "c.fits"),
    }
    assert check_observation_suite([observation("a.fits")], suite, None) == []


# --- Data Docs ----------------------------------------------------------------------


def test_data_docs_render_summed_results(tmp_path: Path, validations: Path) -> None:
    mag = values()["mag"]
    mag[6] = 77.0
    path = write_fits(tmp_path / "s.fits", values(mag=mag))
    results = tmp_path / "site" / "results"
    run_catalogue(path, validations, results_dir=results)
    index = build_data_docs(results, tmp_path / "site", run_name="attempt-1")
    assert index == tmp_path / "site" / "index.html"
    [page] = (tmp_path / "site" / "validations").rglob("*.html")
    html = page.read_text()
    assert "Great Expectations" in html
    assert "cat/stars.fits" in html
    assert "77" in html  # the sampled unexpected value
    assert build_data_docs(tmp_path / "none", tmp_path / "empty", run_name="x") is None


def test_data_docs_load_nothing_from_another_host(tmp_path: Path, validations: Path) -> None:
    path = write_fits(tmp_path / "s.fits", values())
    results = tmp_path / "site" / "results"
    run_catalogue(path, validations, results_dir=results)
    site = tmp_path / "site"
    build_data_docs(results, site, run_name="attempt-1")

    pages = list(site.rglob("*.html"))
    assert len(pages) == 2  # the index and the catalogue's validation page
    remote = re.compile(r"""(<script[^>]*src|<link[^>]*href|<img[^>]*src|url\()=?["'(]?https?://""")
    for page in pages:
        html = page.read_text()
        assert not remote.search(html), page
        up = "../" * (len(page.relative_to(site).parts) - 1)
        for own in ("firstlight/firstlight.css", "firstlight/firstlight.js", "images/favicon.ico"):
            linked = f"{up}static/{own}"  # relative to the page, so any URL prefix serves it
            assert f'"{linked}"' in html, (page, linked)
            assert (page.parent / linked).resolve().is_file(), (page, linked)


def test_file_checks_of_a_delivery_without_catalogue_do_not_import_gx(tmp_path: Path) -> None:
    # A fresh interpreter: this test process may have imported it already.
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from firstlight.checks.rules import load_rules
        from firstlight.checks.suites import load_suites
        from firstlight.checks.validate import validate_delivery
        from tests.unit.test_validate import make_delivery

        manifest = make_delivery(Path({str(tmp_path / "d")!r}))
        files = [f for f in manifest.files if f.table is None]
        manifest = manifest.model_copy(update={{"files": files}})
        v = Path({str(VALIDATIONS)!r})
        report = validate_delivery(
            Path({str(tmp_path / "d")!r}), manifest, load_rules(v, "testmission"),
            suites=load_suites(v, "testmission"), results_dir=Path({str(tmp_path / "r")!r}),
        )
        assert report.ok, report.summary()
        print("great_expectations" in sys.modules)
        """
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
