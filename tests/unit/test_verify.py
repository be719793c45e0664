"""Step "verify": the manifest, and the files against it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from firstlight.checks.verify import read_manifest, verify_files
from firstlight.domain.findings import Report
from firstlight.domain.manifest import Manifest, ManifestError

FILES = {"img.fits": b"SIMPLE  = T" + b"\0" * 100, "cat/stars.csv": b"id,ra,dec\n1,2.0,3.0\n"}


def manifest_for(files: dict[str, bytes]) -> Manifest:
    entries = [
        {
            "path": path,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "product_type": "auxiliary",
            "format": "other",
        }
        for path, data in files.items()
    ]
    return Manifest.model_validate(
        {
            "mission": "testmission",
            "delivery_id": "d-001",
            "release": {"name": "dr1", "version": "1"},
            "producer": "unit tests",
            "created": "2026-01-02T03:04:05Z",
            "files": entries,
        }
    )


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    """A complete delivery of FILES with its manifest.json."""
    folder = tmp_path / "delivery"
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / "manifest.json").write_text(manifest_for(FILES).to_json())
    return folder


def only(report: Report) -> tuple[str, str | None]:
    [finding] = report.findings
    return finding.check, finding.file


# --- read_manifest -----------------------------------------------------------------


def test_read_manifest_returns_manifest_and_its_hash(delivery: Path) -> None:
    manifest, sha = read_manifest(delivery)
    assert manifest.delivery_id == "d-001"
    assert sha == hashlib.sha256((delivery / "manifest.json").read_bytes()).hexdigest()


def test_missing_manifest_names_the_folder(delivery: Path) -> None:
    (delivery / "manifest.json").unlink()
    with pytest.raises(ManifestError, match=r"no manifest\.json") as err:
        read_manifest(delivery)
    assert str(delivery) in str(err.value)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not a delivery folder"):
        read_manifest(tmp_path / "nowhere")


def test_invalid_manifest_names_the_field(delivery: Path) -> None:
    (delivery / "manifest.json").write_text('{"mission": "x"}')
    with pytest.raises(ManifestError, match="delivery_id"):
        read_manifest(delivery)


def test_manifest_linked_from_outside_is_refused(delivery: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.json"
    (delivery / "manifest.json").rename(outside)
    (delivery / "manifest.json").symlink_to(outside)
    with pytest.raises(ManifestError, match="outside the delivery"):
        read_manifest(delivery)


# --- verify_files ------------------------------------------------------------------


def test_complete_delivery_is_ok(delivery: Path) -> None:
    report = verify_files(delivery, manifest_for(FILES))
    assert report.step == "verify"
    assert report.findings == []
    assert report.ok


def test_missing_file(delivery: Path) -> None:
    (delivery / "cat/stars.csv").unlink()
    assert only(verify_files(delivery, manifest_for(FILES))) == (
        "verify.missing_file",
        "cat/stars.csv",
    )


def test_folder_where_a_file_should_be(delivery: Path) -> None:
    (delivery / "img.fits").unlink()
    (delivery / "img.fits").mkdir()
    report = verify_files(delivery, manifest_for(FILES))
    assert only(report) == ("verify.missing_file", "img.fits")
    assert report.findings[0].observed == "folder"


def test_wrong_size_skips_hashing(delivery: Path) -> None:
    (delivery / "img.fits").write_bytes(FILES["img.fits"] + b"x")
    report = verify_files(delivery, manifest_for(FILES))
    assert only(report) == ("verify.size", "img.fits")
    assert report.findings[0].observed == str(len(FILES["img.fits"]) + 1)


def test_wrong_sha256(delivery: Path) -> None:
    data = bytearray(FILES["img.fits"])
    data[-1] = 1
    (delivery / "img.fits").write_bytes(bytes(data))
    report = verify_files(delivery, manifest_for(FILES))
    assert only(report) == ("verify.sha256", "img.fits")
    assert report.findings[0].observed == hashlib.sha256(bytes(data)).hexdigest()


@pytest.mark.parametrize("name", ["notes.txt", ".hidden", "cat/.DS_Store", "cat/deep/x.csv"])
def test_extra_file(delivery: Path, name: str) -> None:
    (delivery / name).parent.mkdir(parents=True, exist_ok=True)
    (delivery / name).write_bytes(b"surprise")
    assert only(verify_files(delivery, manifest_for(FILES))) == ("verify.extra_file", name)


def test_extra_empty_folder_is_not_a_file(delivery: Path) -> None:
    (delivery / "empty").mkdir()
    assert verify_files(delivery, manifest_for(FILES)).findings == []


def test_file_symlink_leaving_the_delivery(delivery: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.fits"
    outside.write_bytes(FILES["img.fits"])  # same bytes: only the link is wrong
    (delivery / "img.fits").unlink()
    (delivery / "img.fits").symlink_to(outside)
    report = verify_files(delivery, manifest_for(FILES))
    assert only(report) == ("verify.unsafe_link", "img.fits")
    assert "img.fits" in report.findings[0].reason


def test_folder_symlink_leaving_the_delivery(delivery: Path, tmp_path: Path) -> None:
    (delivery / "cat").rename(tmp_path / "cat")
    (delivery / "cat").symlink_to(tmp_path / "cat", target_is_directory=True)
    report = verify_files(delivery, manifest_for(FILES))
    assert only(report) == ("verify.unsafe_link", "cat/stars.csv")
    assert "symlink cat " in report.findings[0].reason


def test_symlink_inside_the_delivery_is_fine(delivery: Path) -> None:
    (delivery / "cat/stars.csv").rename(delivery / "real.csv")
    (delivery / "cat/stars.csv").symlink_to(Path("../real.csv"))
    files = {**FILES, "real.csv": FILES["cat/stars.csv"]}
    assert verify_files(delivery, manifest_for(files)).findings == []


def test_symlink_loop(delivery: Path) -> None:
    (delivery / "img.fits").unlink()
    (delivery / "img.fits").symlink_to("img.fits")
    report = verify_files(delivery, manifest_for(FILES))
    assert only(report)[0] in {"verify.unsafe_link", "verify.missing_file"}


def test_unlisted_symlinked_folder_is_extra(delivery: Path, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (delivery / "more").symlink_to(tmp_path / "other", target_is_directory=True)
    assert only(verify_files(delivery, manifest_for(FILES))) == ("verify.extra_file", "more")


def test_every_problem_is_reported(delivery: Path) -> None:
    (delivery / "img.fits").unlink()
    (delivery / "cat/stars.csv").write_bytes(b"changed")
    (delivery / "extra.bin").write_bytes(b"")
    report = verify_files(delivery, manifest_for(FILES))
    assert sorted((f.check, f.file) for f in report.findings) == [
        ("verify.extra_file", "extra.bin"),
        ("verify.missing_file", "img.fits"),
        ("verify.size", "cat/stars.csv"),
    ]
    assert not report.ok


def test_a_fifo_named_manifest_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    from firstlight.checks.verify import read_manifest
    from firstlight.domain.manifest import ManifestError

    os.mkfifo(tmp_path / "manifest.json")  # reading it would wait for a writer for ever
    with pytest.raises(ManifestError, match="not a regular file"):
        read_manifest(tmp_path)
