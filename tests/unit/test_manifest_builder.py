"""Building a manifest from a delivery folder and writing it atomically."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from firstlight.domain.manifest import (
    MANIFEST_NAME,
    FileFormat,
    Manifest,
    ManifestError,
    ObservationFields,
    ProductType,
    parse_manifest,
)
from firstlight.producer.manifest_builder import (
    build_manifest,
    read_observations_file,
    table_name_for,
    write_manifest,
)

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def build(folder: Path, **kwargs: object) -> Manifest:
    options: dict[str, object] = {
        "mission": "demo", "delivery_id": "d-1", "release_name": "dr1",
        "release_version": "1", "producer": "tests", "created": CREATED,
    }  # fmt: skip
    options.update(kwargs)
    return build_manifest(folder, **options)  # type: ignore[arg-type]


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    folder = tmp_path / "delivery"
    (folder / "cat").mkdir(parents=True)
    (folder / "docs").mkdir()
    (folder / "cat" / "Sources-2.csv").write_text("source_id,ra,dec\n1,10.0,-5.0\n2,10.1,-5.1\n")
    table = fits.BinTableHDU.from_columns(
        [fits.Column("id", "K", array=np.arange(3)), fits.Column("ra", "D", array=np.ones(3)),
         fits.Column("dec", "D", array=np.ones(3))],
        name="OBJECTS",
    )  # fmt: skip
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(folder / "cat" / "objects.fits")
    (folder / "docs" / "README.txt").write_text("Read me, please.\n")
    return folder


def test_lists_every_file_sorted_with_size_and_sha256(delivery: Path) -> None:
    manifest = build(delivery)
    assert [f.path for f in manifest.files] == [
        "cat/Sources-2.csv", "cat/objects.fits", "docs/README.txt",
    ]  # fmt: skip
    for entry in manifest.files:
        data = (delivery / entry.path).read_bytes()
        assert entry.size == len(data)
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
    formats = {f.path: (f.format, f.product_type) for f in manifest.files}
    assert formats["cat/Sources-2.csv"] == (FileFormat.CSV, ProductType.CATALOGUE)
    assert formats["cat/objects.fits"] == (FileFormat.FITS, ProductType.CATALOGUE)
    assert formats["docs/README.txt"] == (FileFormat.OTHER, ProductType.AUXILIARY)


def test_catalogues_get_table_definitions(delivery: Path) -> None:
    tables = {f.path: f.table for f in build(delivery).files if f.table is not None}
    csv_table = tables["cat/Sources-2.csv"]
    assert csv_table.name == "sources_2"
    assert (csv_table.primary_key, csv_table.ra, csv_table.dec) == ("source_id", "ra", "dec")
    fits_table = tables["cat/objects.fits"]
    assert fits_table.name == "objects"
    assert fits_table.description == "OBJECTS"


def test_written_manifest_parses_back_and_is_excluded_next_time(delivery: Path) -> None:
    manifest = build(delivery)
    path = write_manifest(delivery, manifest)
    assert path == delivery / MANIFEST_NAME
    assert parse_manifest(path.read_bytes()) == manifest
    assert sorted(p.name for p in delivery.iterdir()) == ["cat", "docs", MANIFEST_NAME]
    assert build(delivery) == manifest


def test_rewriting_replaces_the_manifest_whole(delivery: Path) -> None:
    write_manifest(delivery, build(delivery))
    newer = build(delivery, producer="someone else")
    write_manifest(delivery, newer)
    assert parse_manifest((delivery / MANIFEST_NAME).read_bytes()).producer == "someone else"
    assert not list(delivery.glob(".*"))


def test_release_dates_per_file_override_the_default(delivery: Path) -> None:
    default = datetime(2026, 6, 1, tzinfo=UTC)
    special = datetime(2027, 1, 1, tzinfo=UTC)
    manifest = build(delivery, release_date=default, release_dates={"cat/objects.fits": special})
    dates = {f.path: f.release_date for f in manifest.files}
    assert dates == {
        "cat/Sources-2.csv": default, "cat/objects.fits": special, "docs/README.txt": default,
    }  # fmt: skip


def test_release_dates_must_name_delivered_files(delivery: Path) -> None:
    with pytest.raises(ManifestError, match=r"nope\.fits"):
        build(delivery, release_dates={"nope.fits": CREATED})


def test_symlink_leaving_the_folder_is_refused(delivery: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours\n")
    (delivery / "docs" / "link.txt").symlink_to(outside)
    with pytest.raises(ManifestError, match=r"docs/link\.txt: symlink leaves the delivery"):
        build(delivery)


def test_symlink_inside_the_folder_is_a_file(delivery: Path) -> None:
    (delivery / "docs" / "copy.txt").symlink_to(delivery / "docs" / "README.txt")
    paths = [f.path for f in build(delivery).files]
    assert "docs/copy.txt" in paths


def test_broken_symlink_is_refused(delivery: Path) -> None:
    (delivery / "docs" / "gone.txt").symlink_to(delivery / "docs" / "missing.txt")
    with pytest.raises(ManifestError, match=r"docs/gone\.txt: broken symlink"):
        build(delivery)


def test_unsafe_names_are_refused_naming_the_path(delivery: Path) -> None:
    (delivery / "docs" / "my notes.txt").write_text("x\n")
    with pytest.raises(ManifestError, match="my notes"):
        build(delivery)


def test_unreadable_fits_is_refused_naming_the_file(delivery: Path) -> None:
    (delivery / "cat" / "broken.fits").write_bytes(b"SIMPLE  = T" + b"\0" * 200)
    with pytest.raises(ManifestError, match=r"cat/broken\.fits"):
        build(delivery)


def test_empty_delivery_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no data files"):
        build(tmp_path)


def test_bad_identity_is_a_manifest_error(delivery: Path) -> None:
    with pytest.raises(ManifestError, match="mission"):
        build(delivery, mission="Not An Identifier")


def test_same_stem_gets_distinct_table_names(delivery: Path) -> None:
    other = delivery / "more"
    other.mkdir()
    (other / "objects.csv").write_text("id,x\n1,2\n")
    names = sorted(f.table.name for f in build(delivery).files if f.table is not None)
    assert names == ["objects", "objects_2", "sources_2"]


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [
        ("Sources.fits", set(), "sources"),
        ("2MASS psc.csv", set(), "t_2mass_psc"),
        ("__.csv", set(), "t"),
        ("gaia.dr3.source.parquet", {"gaia"}, "gaia_2"),
        ("x" * 40 + ".csv", {"x" * 32}, "x" * 30 + "_2"),
    ],
)
def test_table_name_for(name: str, taken: set[str], expected: str) -> None:
    assert table_name_for(Path(name), taken) == expected


def _add_image(folder: Path, name: str) -> None:
    header = fits.Header()
    for key, value in (("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CDELT1", -1e-4),
                       ("CDELT2", 1e-4), ("CRVAL1", 10.0), ("CRVAL2", -5.0)):  # fmt: skip
        header[key] = value
    fits.PrimaryHDU(np.zeros((8, 8), np.float32), header=header).writeto(folder / name)


def test_observation_fields_for_every_image_and_per_file(delivery: Path, tmp_path: Path) -> None:
    _add_image(delivery, "a.fits")
    _add_image(delivery, "b.fits")
    per_file = tmp_path / "observations.json"
    per_file.write_text(
        '{"b.fits": {"instrument": "Cam B", "time_start": "1951-11-08T00:00:00Z",'
        ' "calib_level": 1}}'
    )
    manifest = build(
        delivery,
        observation=ObservationFields(facility="Schmidt", instrument="Cam A"),
        observations=read_observations_file(per_file),
    )
    by_path = {f.path: f for f in manifest.files}
    assert by_path["a.fits"].observation == ObservationFields(
        facility="Schmidt", instrument="Cam A"
    )
    assert by_path["b.fits"].observation == ObservationFields(
        facility="Schmidt",
        instrument="Cam B",
        time_start=datetime(1951, 11, 8, tzinfo=UTC),
        calib_level=1,
    )
    assert by_path["cat/objects.fits"].observation is None  # a catalogue has none
    # The JSON a producer writes round-trips through the archive's parser.
    again = parse_manifest(manifest.to_json().encode())
    assert again.files == manifest.files


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"nope.fits": {"instrument": "X"}}', "not in the delivery"),
        ('{"cat/objects.fits": {"instrument": "X"}}', "has no observation fields"),
        ('{"a.fits": {"instrumnet": "X"}}', "unknown field"),
        ('{"a.fits": {"calib_level": 5}}', "calib_level"),
        ('{"a.fits": {"time_start": "2020-01-01T00:00:00"}}', "timezone"),
        ('{"a.fits": {"wavelength_min": 6e-7, "wavelength_max": 5e-7}}', "below"),
    ],
)
def test_bad_observation_fields_are_refused_by_name(
    delivery: Path, tmp_path: Path, text: str, words: str
) -> None:
    _add_image(delivery, "a.fits")
    per_file = tmp_path / "observations.json"
    per_file.write_text(text)
    with pytest.raises(ManifestError, match=words):
        build(delivery, observations=read_observations_file(per_file))


def test_manifest_command_takes_observation_options(delivery: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from firstlight.cli import app

    _add_image(delivery, "a.fits")
    _add_image(delivery, "b.fits")
    per_file = tmp_path / "observations.json"
    per_file.write_text('{"b.fits": {"instrument": "Cam B"}}')
    result = CliRunner().invoke(
        app,
        [
            "manifest", str(delivery), "--mission", "demo", "--delivery-id", "d-1",
            "--release", "dr1", "--instrument", "Cam A", "--time-start", "1951-11-08T00:00:00",
            "--wavelength-min", "6.2e-7", "--wavelength-max", "6.8e-7", "--calib-level", "1",
            "--observations", str(per_file),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = parse_manifest((delivery / MANIFEST_NAME).read_bytes())
    by_path = {f.path: f.observation for f in manifest.files}
    common = {
        "time_start": datetime(1951, 11, 8, tzinfo=UTC),
        "wavelength_min": 6.2e-7,
        "wavelength_max": 6.8e-7,
        "calib_level": 1,
    }
    assert by_path["a.fits"] == ObservationFields(instrument="Cam A", **common)
    assert by_path["b.fits"] == ObservationFields(instrument="Cam B", **common)
    assert by_path["docs/README.txt"] is None

    bad = CliRunner().invoke(
        app,
        ["manifest", str(delivery), "--mission", "demo", "--delivery-id", "d-1",
         "--release", "dr1", "--calib-level", "9"],
    )  # fmt: skip
    assert bad.exit_code == 1  # invalid input (cli_errors), one line naming the field
    assert "invalid" in bad.output and "calib_level" in bad.output
    assert "Traceback" not in bad.output
