"""A corpus of broken deliveries: each ends quarantined, byte-identical, with a finding
that names its check, its file (and HDU or column), and leaves nothing in the archive.

Each case builds a delivery in the inbox: mostly a generated one then broken, with a
manifest that honestly describes the broken files (so the right later check catches it),
or with the manifest itself broken. Promises 1 and 6 of the brief.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from firstlight.config import Settings
from firstlight.domain.ledger import DeliveryState
from firstlight.domain.manifest import UNKNOWN_MISSION
from firstlight.producer.manifest_builder import build_manifest, write_manifest
from firstlight.services.context import Context
from tests.deliveries import duplicate_source_ids, generated, remanifest, tree_digest
from tests.steps import archive_counts, release_or_quarantine

ROWS = 200
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
IMAGE = "images/demo_field01_g.fits"
SPECTRUM = "spectra/demo_spec_001.fits"
SOURCES = "catalogue/sources.fits"

# --- helpers: editing deliveries and manifests -------------------------------------------


def _manifest(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    return data


def _write_manifest_dict(path: Path, data: dict[str, Any]) -> None:
    (path / "manifest.json").write_text(json.dumps(data, indent=2))


def _entry(data: dict[str, Any], rel: str) -> dict[str, Any]:
    [entry] = [f for f in data["files"] if f["path"] == rel]
    return entry


def rehash(path: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Make the manifest's sizes and sha256 honest again, keeping its types and tables."""
    data = _manifest(path)
    if edit is not None:
        edit(data)
    for entry in data["files"]:
        file = path / entry["path"]
        if file.is_file() and not file.is_symlink():
            blob = file.read_bytes()
            entry["size"] = len(blob)
            entry["sha256"] = hashlib.sha256(blob).hexdigest()
    _write_manifest_dict(path, data)


def rewrite_fits(file: Path, change: Callable[[fits.HDUList], None]) -> None:
    """Change a FITS file with astropy and write it with valid checksums."""
    with fits.open(file) as hdul:
        hdus = fits.HDUList([hdu.copy() for hdu in hdul])
    change(hdus)
    hdus.writeto(file, overwrite=True, checksum=True)


def replace_card(file: Path, keyword: str, card: bytes) -> None:
    """Overwrite the first 80-byte card of ``keyword`` in place (no checksum repair)."""
    blob = bytearray(file.read_bytes())
    key = keyword.encode().ljust(8)
    for start in range(0, len(blob), 80):
        if blob[start : start + 8] == key:
            blob[start : start + 80] = card.ljust(80)
            file.write_bytes(bytes(blob))
            return
    raise AssertionError(f"no {keyword} card in {file}")


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every file's bytes and every symlink's target (compared as a link, never followed)."""
    found: dict[str, tuple[str, bytes | str]] = {}
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [*filenames, *dirnames]:
            item = Path(current) / name
            rel = item.relative_to(root).as_posix()
            if item.is_symlink():
                found[rel] = ("link", str(item.readlink()))
            elif item.is_file():
                found[rel] = ("file", item.read_bytes())
    return found


# --- small catalogue deliveries in other table formats -------------------------------------


def _catalogue_columns(rows: int = ROWS) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {
        "source_id": np.arange(1, rows + 1, dtype=np.int64),
        "ra": rng.uniform(149.0, 151.0, rows),
        "dec": rng.uniform(1.0, 3.0, rows),
        "mag": rng.uniform(12.0, 20.0, rows),
    }


def _csv_text(columns: dict[str, Any]) -> str:
    names = list(columns)
    lines = [",".join(names)]
    for i in range(len(columns[names[0]])):
        lines.append(",".join(str(columns[n][i]) for n in names))
    return "\n".join(lines) + "\n"


def _votable_text(prolog: str = "", description: str = "Sources") -> str:
    cols = _catalogue_columns(20)
    rows = "".join(
        f"<TR><TD>{cols['source_id'][i]}</TD><TD>{cols['ra'][i]}</TD><TD>{cols['dec'][i]}</TD></TR>"
        for i in range(20)
    )
    return (
        f'<?xml version="1.0"?>\n{prolog}'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
        f'<RESOURCE><TABLE name="sources"><DESCRIPTION>{description}</DESCRIPTION>'
        '<FIELD name="source_id" datatype="long" ucd="meta.id;meta.main"/>'
        '<FIELD name="ra" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main"/>'
        '<FIELD name="dec" datatype="double" unit="deg" ucd="pos.eq.dec;meta.main"/>'
        f"<DATA><TABLEDATA>{rows}</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n"
    )


def _write_parquet(file: Path, columns: dict[str, Any]) -> None:
    pq.write_table(pa.table(columns), file)


def table_delivery(inbox: Path, name: str, write: Callable[[Path], None]) -> Path:
    """A delivery holding one catalogue file ``catalogue/<name>``, with a built manifest."""
    path = inbox / "demo-cat"
    (path / "catalogue").mkdir(parents=True)
    write(path / "catalogue" / name)
    manifest = build_manifest(
        path,
        mission="demo",
        delivery_id="demo-cat",
        release_name="dr1",
        release_version="1",
        producer="broken-delivery corpus",
        created=CREATED,
    )
    write_manifest(path, manifest)
    return path


# --- the cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], Path]
    check: str
    file: str | None
    hdu: int | None = None
    column: str | None = None
    reason: str | None = None  # a fragment the finding's reason must contain
    mission: str = "demo"


def _gen(inbox: Path) -> Path:
    return generated(inbox, rows=ROWS, images=1, timeseries=0)


def truncated_fits(inbox: Path) -> Path:
    path = _gen(inbox)
    file = path / IMAGE
    file.write_bytes(file.read_bytes()[:100_000])
    rehash(path)
    return path


def missing_end_card(inbox: Path) -> Path:
    path = _gen(inbox)
    replace_card(path / IMAGE, "END", b"")
    rehash(path)
    return path


def bad_checksum_in_extension(inbox: Path) -> Path:
    path = _gen(inbox)
    file = path / SPECTRUM
    with fits.open(file) as hdul:
        data_start = int(hdul[1].fileinfo()["datLoc"])
    blob = bytearray(file.read_bytes())
    blob[data_start + 5] ^= 0x01
    file.write_bytes(bytes(blob))
    rehash(path)
    return path


def absurd_naxis(inbox: Path) -> Path:
    path = _gen(inbox)
    replace_card(path / IMAGE, "NAXIS1", f"NAXIS1  = {10**12:>20}".encode())
    rehash(path)
    return path


def missing_date_obs(inbox: Path) -> Path:
    path = _gen(inbox)
    rewrite_fits(path / IMAGE, lambda h: h[0].header.remove("DATE-OBS"))
    remanifest(path)
    return path


def _strip_wcs(hdus: fits.HDUList) -> None:
    header = hdus[0].header
    for key in ("CTYPE1", "CTYPE2"):
        header.remove(key)


def no_celestial_wcs(inbox: Path) -> Path:
    path = _gen(inbox)
    rewrite_fits(path / IMAGE, _strip_wcs)
    rehash(path)  # still declared an image (the builder would call it auxiliary)
    return path


def date_obs_not_a_date(inbox: Path) -> Path:
    path = _gen(inbox)

    def change(hdus: fits.HDUList) -> None:
        hdus[0].header["DATE-OBS"] = "yesterday"

    rewrite_fits(path / IMAGE, change)
    rehash(path)
    return path


def wavemin_above_wavemax(inbox: Path) -> Path:
    path = _gen(inbox)

    def change(hdus: fits.HDUList) -> None:
        header = hdus[0].header
        header["WAVEMIN"], header["WAVEMAX"] = header["WAVEMAX"], header["WAVEMIN"]

    rewrite_fits(path / IMAGE, change)
    remanifest(path)
    return path


def _edit_sources(path: Path, change: Callable[[Any], None]) -> None:
    rewrite_fits(path / SOURCES, lambda h: change(h[1].data))
    remanifest(path)


def duplicate_ids(inbox: Path) -> Path:
    path = _gen(inbox)
    duplicate_source_ids(path, rows=(3, 7))
    return path


def nan_ra(inbox: Path) -> Path:
    path = _gen(inbox)

    def change(data: Any) -> None:
        data["ra"][5] = np.nan

    _edit_sources(path, change)
    return path


def infinite_dec(inbox: Path) -> Path:
    path = _gen(inbox)

    def change(data: Any) -> None:
        data["dec"][6] = np.inf

    _edit_sources(path, change)
    return path


def dec_out_of_range(inbox: Path) -> Path:
    path = _gen(inbox)

    def change(data: Any) -> None:
        data["dec"][2] = 95.0

    _edit_sources(path, change)
    return path


def ra_360(inbox: Path) -> Path:
    path = _gen(inbox)

    def change(data: Any) -> None:
        data["ra"][4] = 360.0

    _edit_sources(path, change)
    return path


def magnitudes_out_of_range(inbox: Path) -> Path:
    path = _gen(inbox)

    def change(data: Any) -> None:
        data["phot_g_mean_mag"][[4, 150]] = [99.0, -40.0]

    _edit_sources(path, change)
    return path


def zero_rows(inbox: Path) -> Path:
    path = _gen(inbox)
    rewrite_fits(
        path / SOURCES, lambda h: h.__setitem__(1, fits.BinTableHDU(h[1].data[:0], h[1].header))
    )
    remanifest(path)
    return path


def csv_null_source_id(inbox: Path) -> Path:
    def write(file: Path) -> None:
        lines = _csv_text(_catalogue_columns()).splitlines()
        fields = lines[10].split(",")
        lines[10] = ",".join(["", *fields[1:]])
        file.write_text("\n".join(lines) + "\n")

    return table_delivery(inbox, "sources.csv", write)


def csv_ragged_rows(inbox: Path) -> Path:
    path = table_delivery(
        inbox, "sources.csv", lambda f: f.write_text(_csv_text(_catalogue_columns()))
    )
    file = path / "catalogue" / "sources.csv"
    lines = file.read_text().splitlines()
    lines[50] += ",42,extra"
    file.write_text("\n".join(lines) + "\n")
    rehash(path)
    return path


def csv_strings_declared_int(inbox: Path) -> Path:
    def write(file: Path) -> None:
        columns = _catalogue_columns()
        columns["label"] = np.array([f"s{i}" for i in range(ROWS)])
        file.write_text(_csv_text(columns))

    path = table_delivery(inbox, "sources.csv", write)

    def edit(data: dict[str, Any]) -> None:
        table = _entry(data, "catalogue/sources.csv")["table"]
        [label] = [c for c in table["columns"] if c["name"] == "label"]
        label["datatype"] = "int64"

    rehash(path, edit)
    return path


def parquet_float_declared_int(inbox: Path) -> Path:
    path = table_delivery(
        inbox, "sources.parquet", lambda f: _write_parquet(f, _catalogue_columns())
    )

    def edit(data: dict[str, Any]) -> None:
        table = _entry(data, "catalogue/sources.parquet")["table"]
        [mag] = [c for c in table["columns"] if c["name"] == "mag"]
        mag["datatype"] = "int64"

    rehash(path, edit)
    return path


def parquet_schema_differs(inbox: Path) -> Path:
    path = table_delivery(
        inbox, "sources.parquet", lambda f: _write_parquet(f, _catalogue_columns())
    )
    columns = _catalogue_columns()
    columns["flux"] = columns.pop("mag")
    _write_parquet(path / "catalogue" / "sources.parquet", columns)
    rehash(path)
    return path


def _swap_votable(inbox: Path, prolog: str, description: str) -> Path:
    path = table_delivery(inbox, "sources.vot", lambda f: f.write_text(_votable_text()))
    (path / "catalogue" / "sources.vot").write_text(_votable_text(prolog, description))
    rehash(path)
    return path


def votable_external_entity(inbox: Path) -> Path:
    prolog = '<!DOCTYPE VOTABLE [<!ENTITY ext SYSTEM "file:///etc/passwd">]>\n'
    return _swap_votable(inbox, prolog, "&ext;")


def votable_billion_laughs(inbox: Path) -> Path:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    prolog = f"<!DOCTYPE VOTABLE [{''.join(entities)}]>\n"
    return _swap_votable(inbox, prolog, "&lol9;")


GZIP_MEMBER_BYTES = 16 * 1024 * 1024
GZIP_MEMBERS = 256  # 4 GiB of zeros once decompressed, about 4 MB on disk


def gzip_bomb_bytes() -> bytes:
    member = gzip.compress(bytes(GZIP_MEMBER_BYTES), compresslevel=9, mtime=0)
    return member * GZIP_MEMBERS


def gzip_bomb_as_csv(inbox: Path) -> Path:
    path = table_delivery(
        inbox, "sources.csv", lambda f: f.write_text(_csv_text(_catalogue_columns()))
    )
    (path / "catalogue" / "sources.csv").rename(path / "catalogue" / "sources.csv.gz")
    (path / "catalogue" / "sources.csv.gz").write_bytes(gzip_bomb_bytes())

    def edit(data: dict[str, Any]) -> None:
        _entry(data, "catalogue/sources.csv")["path"] = "catalogue/sources.csv.gz"

    rehash(path, edit)
    return path


def gzip_bomb_as_fits(inbox: Path) -> Path:
    """A gzipped FITS image whose data expand to GBs, declared as a plain FITS image."""
    path = _gen(inbox)
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = 8
    header["NAXIS"] = 2
    header["NAXIS1"] = GZIP_MEMBER_BYTES
    header["NAXIS2"] = GZIP_MEMBERS
    head = header.tostring().encode()
    (path / IMAGE).write_bytes(gzip.compress(head, mtime=0) + gzip_bomb_bytes())
    rehash(path)
    return path


# --- verify: the files against the manifest -----------------------------------------------


def missing_file(inbox: Path) -> Path:
    path = _gen(inbox)
    (path / SPECTRUM).unlink()
    return path


def extra_file(inbox: Path) -> Path:
    path = _gen(inbox)
    (path / "notes.txt").write_text("not in the manifest\n")
    return path


def wrong_size(inbox: Path) -> Path:
    path = _gen(inbox)
    with (path / SPECTRUM).open("ab") as fh:
        fh.write(b"\0" * 2880)
    return path


def wrong_sha256(inbox: Path) -> Path:
    path = _gen(inbox)
    blob = bytearray((path / SPECTRUM).read_bytes())
    blob[-10] ^= 0xFF
    (path / SPECTRUM).write_bytes(bytes(blob))
    return path


def symlink_leaving_inbox(inbox: Path) -> Path:
    path = _gen(inbox)
    outside = inbox.parent / "outside-secret.txt"
    outside.write_text("secret\n")
    (path / "aux").mkdir()
    (path / "aux" / "readme.txt").symlink_to(outside)
    blob = outside.read_bytes()

    def edit(data: dict[str, Any]) -> None:
        data["files"].append(
            {
                "path": "aux/readme.txt",
                "size": len(blob),
                "sha256": hashlib.sha256(blob).hexdigest(),
                "product_type": "auxiliary",
                "format": "other",
            }
        )

    rehash(path, edit)
    return path


# --- the manifest itself -------------------------------------------------------------------


def _manifest_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], Path]:
    def build(inbox: Path) -> Path:
        path = _gen(inbox)
        data = _manifest(path)
        edit(data)
        _write_manifest_dict(path, data)
        return path

    return build


def _set_path(rel: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        _entry(data, SPECTRUM)["path"] = rel

    return edit


def _set_release_date(value: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        _entry(data, SPECTRUM)["release_date"] = value

    return edit


def _unknown_field(data: dict[str, Any]) -> None:
    _entry(data, SPECTRUM)["colour"] = "blue"


def _duplicate_path(data: dict[str, Any]) -> None:
    data["files"].append(dict(_entry(data, SPECTRUM)))


def _no_table(data: dict[str, Any]) -> None:
    del _entry(data, SOURCES)["table"]


def manifest_not_json(inbox: Path) -> Path:
    path = _gen(inbox)
    (path / "manifest.json").write_text('{"mission": "demo", "files": [')
    return path


def empty_folder(inbox: Path) -> Path:
    path = inbox / "nothing-here"
    path.mkdir(parents=True)
    return path


CASES: dict[str, Case] = {
    # FITS structure and content
    "truncated_fits": Case(truncated_fits, "fits.open", IMAGE, hdu=0, reason="truncated"),
    "missing_end_card": Case(missing_end_card, "fits.open", IMAGE, reason="END"),
    "bad_checksum_ext1_datasum": Case(bad_checksum_in_extension, "fits.datasum", SPECTRUM, hdu=1),
    "bad_checksum_ext1_checksum": Case(bad_checksum_in_extension, "fits.checksum", SPECTRUM, hdu=1),
    "absurd_naxis1": Case(absurd_naxis, "fits.open", IMAGE, hdu=0, reason="truncated"),
    "missing_date_obs": Case(missing_date_obs, "fits.keyword", IMAGE, hdu=0, reason="DATE-OBS"),
    "no_celestial_wcs": Case(no_celestial_wcs, "fits.wcs", IMAGE, hdu=0, reason="celestial"),
    "date_obs_not_a_date": Case(
        date_obs_not_a_date, "fits.keyword", IMAGE, hdu=0, reason="DATE-OBS"
    ),
    "wavemin_above_wavemax": Case(
        wavemin_above_wavemax, "fits.keyword", IMAGE, hdu=0, reason="WAVEMIN"
    ),
    "gzip_bomb_as_fits": Case(gzip_bomb_as_fits, "fits.open", IMAGE, reason="compressed"),
    # catalogue content
    "duplicate_source_ids": Case(duplicate_ids, "table.key_unique", SOURCES, column="source_id"),
    "nan_ra": Case(nan_ra, "table.ra_range", SOURCES, column="ra"),
    "infinite_dec": Case(infinite_dec, "table.dec_range", SOURCES, column="dec"),
    "dec_out_of_range": Case(dec_out_of_range, "table.dec_range", SOURCES, column="dec"),
    "ra_360": Case(ra_360, "table.ra_range", SOURCES, column="ra"),
    "zero_rows": Case(zero_rows, "table.empty", SOURCES),
    "magnitudes_out_of_range": Case(
        magnitudes_out_of_range,
        "expectation:expect_column_values_to_be_between",
        SOURCES,
        column="phot_g_mean_mag",
        reason="2 of 200 rows",
    ),
    "csv_null_source_id": Case(
        csv_null_source_id, "table.key_null", "catalogue/sources.csv", column="source_id"
    ),
    "csv_ragged_rows": Case(csv_ragged_rows, "table.read", "catalogue/sources.csv"),
    "csv_strings_declared_int": Case(
        csv_strings_declared_int, "table.read", "catalogue/sources.csv", column="label"
    ),
    "parquet_float_declared_int": Case(
        parquet_float_declared_int, "table.columns", "catalogue/sources.parquet", column="mag"
    ),
    "parquet_schema_differs_missing": Case(
        parquet_schema_differs, "table.columns", "catalogue/sources.parquet", column="mag"
    ),
    "parquet_schema_differs_extra": Case(
        parquet_schema_differs, "table.columns", "catalogue/sources.parquet", column="flux"
    ),
    "votable_external_entity": Case(
        votable_external_entity, "table.read", "catalogue/sources.vot", reason="entities"
    ),
    "votable_billion_laughs": Case(
        votable_billion_laughs, "table.read", "catalogue/sources.vot", reason="entities"
    ),
    "gzip_bomb_as_csv": Case(gzip_bomb_as_csv, "table.read", "catalogue/sources.csv.gz"),
    # verify: files against the manifest
    "missing_file": Case(missing_file, "verify.missing_file", SPECTRUM),
    "extra_file": Case(extra_file, "verify.extra_file", "notes.txt"),
    "wrong_size": Case(wrong_size, "verify.size", SPECTRUM),
    "wrong_sha256": Case(wrong_sha256, "verify.sha256", SPECTRUM),
    "symlink_leaving_inbox": Case(
        symlink_leaving_inbox, "verify.unsafe_link", "aux/readme.txt", reason="outside"
    ),
    # the manifest itself
    "path_dotdot": Case(
        _manifest_edit(_set_path("../spec.fits")), "verify.manifest", "manifest.json", reason=".."
    ),
    "path_absolute": Case(
        _manifest_edit(_set_path("/etc/passwd")),
        "verify.manifest",
        "manifest.json",
        reason="files[",
    ),
    "naive_release_date": Case(
        _manifest_edit(_set_release_date("2027-01-01T00:00:00")),
        "verify.manifest",
        "manifest.json",
        reason="release_date",
    ),
    "invalid_release_date": Case(
        _manifest_edit(_set_release_date("next year")),
        "verify.manifest",
        "manifest.json",
        reason="release_date",
    ),
    "unknown_field": Case(
        _manifest_edit(_unknown_field), "verify.manifest", "manifest.json", reason="colour"
    ),
    "duplicate_paths": Case(
        _manifest_edit(_duplicate_path), "verify.manifest", "manifest.json", reason="duplicate"
    ),
    "catalogue_without_table": Case(
        _manifest_edit(_no_table), "verify.manifest", "manifest.json", reason="table"
    ),
    # Unparsable: the arrival is recorded as mission _unknown, named by its folder.
    "manifest_not_json": Case(
        manifest_not_json, "verify.manifest", "manifest.json", mission=UNKNOWN_MISSION
    ),
    "empty_folder_no_manifest": Case(
        empty_folder,
        "verify.manifest",
        "manifest.json",
        reason="no manifest.json",
        mission=UNKNOWN_MISSION,
    ),
}


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


@pytest.mark.parametrize("name", list(CASES))
def test_broken_delivery_is_quarantined_with_a_named_finding(
    name: str, ctx: Context, settings: Settings
) -> None:
    case = CASES[name]
    path = case.build(settings.inbox_dir)
    delivered = tree_digest(path)
    delivered_links = snapshot(path)
    rss_before = _max_rss_bytes()

    ticket = release_or_quarantine(ctx, path)  # a crash here fails the case

    # Nothing was decompressed (or otherwise blown up) into memory.
    assert _max_rss_bytes() - rss_before < 512 * 1024 * 1024
    entry = ctx.archive.ledger.entry(ticket.delivery_pk)
    assert entry.state in {DeliveryState.QUARANTINED, DeliveryState.REJECTED}, entry
    assert entry.mission == case.mission
    found = ctx.archive.ledger.findings(ticket.delivery_pk)
    matching = [
        f
        for f in found
        if f.check == case.check
        and f.file == case.file
        and (case.hdu is None or f.hdu == case.hdu)
        and (case.column is None or f.column == case.column)
        and (case.reason is None or case.reason in f.reason)
    ]
    assert matching, [f.describe() for f in found]
    # The quarantine holds the delivery byte-identical, symlinks as links, with its report.
    assert entry.quarantine_path
    quarantined = Path(entry.quarantine_path)
    assert tree_digest(quarantined / "delivery") == delivered
    assert snapshot(quarantined / "delivery") == delivered_links
    report = json.loads((quarantined / "report.json").read_text())
    assert any(f["check"] == case.check for f in report["report"]["findings"])
    # Nothing of it in the archive or in the stores.
    assert archive_counts(ctx) == dict.fromkeys(
        ("releases", "products", "observations", "release_tables", "catalogue_tables"), 0
    )
    for store in (settings.public_dir, settings.embargo_dir):
        assert not [p for p in store.rglob("*") if not p.is_dir()], store
