"""The manifest model: strict parsing with errors that name the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from firstlight.domain.manifest import (
    ManifestError,
    ProductType,
    manifest_json_schema,
    parse_manifest,
)

VALID: dict[str, Any] = {
    "mission": "gaia",
    "delivery_id": "gaia-dr4-0001",
    "release": {"name": "dr4", "version": "1"},
    "producer": "DPAC",
    "created": "2026-11-25T10:00:00Z",
    "files": [
        {
            "path": "images/a.fits",
            "size": 2880,
            "sha256": "a" * 64,
            "product_type": "image",
            "format": "fits",
        },
        {
            "path": "catalogue/sources.fits",
            "size": 5760,
            "sha256": "b" * 64,
            "product_type": "catalogue",
            "format": "fits",
            "release_date": "2027-01-01T00:00:00+00:00",
            "table": {
                "name": "sources",
                "primary_key": "source_id",
                "ra": "ra",
                "dec": "dec",
                "columns": [
                    {"name": "source_id", "datatype": "int64", "ucd": "meta.id;meta.main"},
                    {"name": "ra", "datatype": "float64", "unit": "deg"},
                    {"name": "dec", "datatype": "float64", "unit": "deg"},
                ],
            },
        },
    ],
}


def _parse(data: dict[str, Any]) -> Any:
    return parse_manifest(json.dumps(data).encode())


def _with(path: str, value: Any) -> dict[str, Any]:
    """VALID with one field replaced; path like 'files.0.path'."""
    data = copy.deepcopy(VALID)
    node: Any = data
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    return data


def test_valid_manifest_parses() -> None:
    m = _parse(VALID)
    assert m.release_key == "gaia_dr4_v1"
    assert m.files[1].product_type is ProductType.CATALOGUE
    assert m.files[1].release_date is not None and m.files[1].release_date.tzinfo is not None
    assert m.files[1].table is not None and m.files[1].table.column("SOURCE_ID").datatype == "int64"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("files.0.path", "/etc/passwd", "files[0].path: path '/etc/passwd' must be relative"),
        ("files.0.path", "../outside.fits", "files[0].path: path '../outside.fits' leaves"),
        ("files.0.path", "images/../../x.fits", "leaves the delivery"),
        ("files.0.path", "images\\a.fits", "must be relative, with '/' separators"),
        ("files.0.path", "images/.hidden", "segment '.hidden'"),
        ("files.0.path", "images//a.fits", "empty or '.' segments"),
        ("files.0.path", "manifest.json", "cannot list itself"),
        ("created", "2026-11-25T10:00:00", "created: datetime must carry a timezone"),
        ("files.1.release_date", "2027-01-01T00:00:00", "files[1].release_date: datetime must"),
        ("files.0.sha256", "XYZ", "files[0].sha256"),
        ("files.0.size", -1, "files[0].size"),
        ("mission", "Gaia DR4", "mission"),
        ("files.0.product_type", "movie", "files[0].product_type"),
    ],
)
def test_bad_field_is_named(field: str, value: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=None) as info:
        _parse(_with(field, value))
    assert message in str(info.value)


def test_unknown_field_is_named() -> None:
    data = _with("files.0.colour", "blue")
    with pytest.raises(ManifestError) as info:
        _parse(data)
    assert "files[0].colour: unknown field" in str(info.value)


def test_unknown_top_level_field_is_named() -> None:
    with pytest.raises(ManifestError, match=r"manifest\.json: extra: unknown field"):
        _parse({**VALID, "extra": 1})


def test_duplicate_paths_rejected_even_by_case() -> None:
    data = copy.deepcopy(VALID)
    twin = copy.deepcopy(data["files"][0])
    twin["path"] = "IMAGES/A.fits"
    data["files"].append(twin)
    with pytest.raises(ManifestError, match=r"files: .*duplicate path 'IMAGES/A\.fits'"):
        _parse(data)


def test_catalogue_needs_table_and_roles_name_columns() -> None:
    no_table = copy.deepcopy(VALID)
    del no_table["files"][1]["table"]
    with pytest.raises(ManifestError, match=r"files\[1\]: .*needs its table definition"):
        _parse(no_table)
    with pytest.raises(ManifestError, match="primary_key names column 'nope'"):
        _parse(_with("files.1.table.primary_key", "nope"))


def test_missing_required_field_and_bad_json() -> None:
    data = copy.deepcopy(VALID)
    del data["producer"]
    with pytest.raises(ManifestError, match="producer: Field required"):
        _parse(data)
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(b"{not json")
    with pytest.raises(ManifestError, match="must be a JSON object"):
        parse_manifest(b"[]")


def test_committed_json_schema_matches_the_model() -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json"
    assert json.loads(committed.read_text()) == manifest_json_schema(), (
        "docs/manifest.schema.json is stale: run `firstlight schema > docs/manifest.schema.json`"
    )


def test_json_schema_accepts_valid_and_rejects_unknown_fields() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = manifest_json_schema()
    jsonschema.validate(VALID, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_with("files.0.colour", "blue"), schema)
