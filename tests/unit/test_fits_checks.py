"""FITS format checks: a valid file of each product type, and one broken way each."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from firstlight.checks.fits_checks import check_fits_file, parse_fits_date
from firstlight.checks.rules import FormatRules, ProductRules, load_rules
from firstlight.domain.findings import Finding, Severity
from firstlight.domain.manifest import ProductType
from firstlight.formats.fits_checksum import sum_file_range

VALIDATIONS = Path(__file__).resolve().parents[2] / "validations"

OBSERVATION_CARDS = {
    "OBJECT": "M 31",
    "TELESCOP": "FLT",
    "INSTRUME": "CAM",
    "DATE-OBS": "2026-01-02T03:04:05.5",
    "DATE-END": "2026-01-02T04:04:05",
    "WAVEMIN": 4.0e-7,
    "WAVEMAX": 7.0e-7,
    "CALIBLEV": 2,
}


@pytest.fixture(scope="module")
def rules() -> FormatRules:
    """The synthetic mission's strict profile (validations/missions/demo/rules.toml)."""
    return load_rules(VALIDATIONS, "demo")


@pytest.fixture(scope="module")
def defaults() -> FormatRules:
    """The standard-based defaults: a mission without a profile."""
    return load_rules(VALIDATIONS, "testmission")


def image_hdul(**cards: object) -> fits.HDUList:
    """A 16x16 image with a TAN WCS and the default image keywords, ``cards`` over them."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [10.68, 41.27]
    wcs.wcs.crpix = [8.5, 8.5]
    wcs.wcs.cdelt = [-0.0002, 0.0002]
    header = wcs.to_header()
    _set_cards(header, {**OBSERVATION_CARDS, **cards})
    data = np.arange(256, dtype=np.float32).reshape(16, 16)
    return fits.HDUList([fits.PrimaryHDU(data, header=header)])


def table_hdul(
    extname: str = "SPECTRUM", columns: tuple[str, ...] = ("WAVELENGTH", "FLUX"), **cards: object
) -> fits.HDUList:
    """An empty primary with the spectrum/timeseries keywords and a small table."""
    primary = fits.PrimaryHDU()
    _set_cards(primary.header, {**OBSERVATION_CARDS, "RA": 10.68, "DEC": 41.27, **cards})
    cols = [fits.Column(name, "D", array=np.linspace(1.0, 2.0, 8)) for name in columns]
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    return fits.HDUList([primary, table])


def _set_cards(header: fits.Header, cards: dict[str, object]) -> None:
    for key, value in cards.items():
        if value is None:
            header.remove(key, ignore_missing=True)
        else:
            header[key] = value


def write(hdul: fits.HDUList, path: Path, *, checksum: bool = True) -> Path:
    hdul.writeto(path, checksum=checksum)
    return path


def patch_card(path: Path, keyword: bytes, card: bytes) -> None:
    """Overwrite the 80-byte card that starts with ``keyword`` (bytes only, no astropy)."""
    data = bytearray(path.read_bytes())
    start = data.index(keyword.ljust(8))
    data[start : start + 80] = card.ljust(80)
    path.write_bytes(bytes(data))


def checks(findings: list[Finding], name: str) -> list[Finding]:
    return [f for f in findings if f.check == name]


def _missing_sum(finding: Finding) -> bool:
    """The warning of a file written without checksums (not what a test is about)."""
    return finding.check in {"fits.checksum", "fits.datasum"} and "missing" in finding.reason


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.ERROR]


# --- valid files -------------------------------------------------------------------


def test_valid_image_has_no_findings(tmp_path: Path, rules: FormatRules) -> None:
    path = write(image_hdul(), tmp_path / "img.fits")
    assert check_fits_file(path, "img.fits", ProductType.IMAGE, rules) == []


@pytest.mark.parametrize(
    ("product_type", "extname", "columns"),
    [
        (ProductType.SPECTRUM, "SPECTRUM", ("WAVELENGTH", "FLUX")),
        (ProductType.TIMESERIES, "LIGHTCURVE", ("TIME", "FLUX")),
    ],
)
def test_valid_tables_have_no_findings(
    tmp_path: Path,
    rules: FormatRules,
    product_type: ProductType,
    extname: str,
    columns: tuple[str, ...],
) -> None:
    path = write(table_hdul(extname, columns), tmp_path / "t.fits")
    assert check_fits_file(path, "t.fits", product_type, rules) == []


# --- unreadable files --------------------------------------------------------------


def test_truncated_file_names_the_hdu(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    found = check_fits_file(path, "d/spec.fits", ProductType.SPECTRUM, rules)
    [finding] = found
    assert finding.check == "fits.open"
    assert finding.file == "d/spec.fits"
    assert finding.hdu == 1
    assert "truncated" in finding.reason


def test_header_cut_mid_way_is_an_open_error(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits")
    path.write_bytes(path.read_bytes()[: 2 * 2880 + 100])
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, rules)
    assert checks(errors(found), "fits.open")


def test_missing_end_card(tmp_path: Path, rules: FormatRules) -> None:
    path = write(image_hdul(), tmp_path / "img.fits")
    patch_card(path, b"END", b"")
    [finding] = check_fits_file(path, "img.fits", ProductType.IMAGE, rules)
    assert finding.check == "fits.open"
    assert "END" in finding.reason


@pytest.mark.parametrize("content", [b"", b"not a FITS file at all\n" * 200])
def test_non_fits_bytes(tmp_path: Path, rules: FormatRules, content: bytes) -> None:
    path = tmp_path / "x.fits"
    path.write_bytes(content)
    [finding] = check_fits_file(path, "x.fits", ProductType.IMAGE, rules)
    assert finding.check == "fits.open"
    assert finding.file == "x.fits"


def test_missing_file_is_a_finding(tmp_path: Path, rules: FormatRules) -> None:
    [finding] = check_fits_file(tmp_path / "gone.fits", "gone.fits", ProductType.IMAGE, rules)
    assert finding.check == "fits.open"


# --- checksums ---------------------------------------------------------------------


def test_bad_datasum_in_one_extension_only(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits")
    with fits.open(path) as hdul:
        start = hdul.fileinfo(1)["datLoc"]
    data = bytearray(path.read_bytes())
    data[start + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, rules)
    assert {(f.check, f.hdu) for f in found} == {("fits.checksum", 1), ("fits.datasum", 1)}
    assert all(f.severity is Severity.ERROR for f in found)


def test_edited_header_fails_checksum_only(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits")
    patch_card(path, b"OBJECT", b"OBJECT  = 'M 32'")
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, rules)
    assert [(f.check, f.hdu) for f in found] == [("fits.checksum", 0)]


def test_missing_checksums_when_rules_require_them(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits", checksum=False)
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, rules)
    assert sorted((f.check, f.hdu) for f in found) == [
        ("fits.checksum", 0),
        ("fits.checksum", 1),
        ("fits.datasum", 0),
        ("fits.datasum", 1),
    ]
    assert all("missing" in f.reason for f in found)


def test_missing_checksums_warn_when_not_required(tmp_path: Path, defaults: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "cat.fits", checksum=False)
    found = check_fits_file(path, "cat.fits", ProductType.SPECTRUM, defaults)
    assert sorted((f.check, f.hdu, f.severity) for f in found) == [
        ("fits.checksum", 0, Severity.WARNING),
        ("fits.checksum", 1, Severity.WARNING),
        ("fits.datasum", 0, Severity.WARNING),
        ("fits.datasum", 1, Severity.WARNING),
    ]


def test_wrong_checksum_is_an_error_under_the_defaults(
    tmp_path: Path, defaults: FormatRules
) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits")
    patch_card(path, b"OBJECT", b"OBJECT  = 'M 32'")
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, defaults)
    assert [(f.check, f.hdu, f.severity) for f in found] == [("fits.checksum", 0, Severity.ERROR)]


def test_checksum_is_over_the_bytes_as_written(tmp_path: Path) -> None:
    """A non-standard card with a right CHECKSUM: astropy's own check would re-render
    the card and call the checksum wrong; ours sums the file's bytes."""
    path = write(image_hdul(), tmp_path / "img.fits")
    patch_card(path, b"OBJECT", b"OBJECT  = M31 unquoted")
    _reseal_primary_checksum(path)
    relaxed = FormatRules(mission="x", sources=(), products={})
    [finding] = check_fits_file(path, "img.fits", ProductType.IMAGE, relaxed)
    assert (finding.check, finding.severity) == ("fits.structure", Severity.WARNING)


def _reseal_primary_checksum(path: Path) -> None:
    """Rewrite HDU 0's CHECKSUM value for its bytes as they now are (DATASUM unchanged)."""
    data = bytearray(path.read_bytes())
    start = data.index(b"CHECKSUM= '") + 11
    data[start : start + 16] = b"0" * 16
    path.write_bytes(bytes(data))
    with fits.open(path) as hdul:
        end = hdul[0].fileinfo()["datLoc"] + hdul[0].fileinfo()["datSpan"]
        total = sum_file_range(path, 0, end)
        # astropy's encoder (private) is the reference ASCII encoding of the FITS standard.
        data[start : start + 16] = hdul[0]._char_encode(~total & 0xFFFFFFFF).encode()
    path.write_bytes(bytes(data))


# --- keywords ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cards", "keyword"),
    [
        ({"OBJECT": None}, "OBJECT"),
        ({"OBJECT": ""}, "OBJECT"),
        ({"DATE-OBS": "2026-13-02"}, "DATE-OBS"),
        ({"DATE-END": "02/01/2026"}, "DATE-END"),
        ({"WAVEMIN": "blue"}, "WAVEMIN"),
        ({"WAVEMIN": True}, "WAVEMIN"),
        ({"WAVEMIN": -1.0}, "WAVEMIN"),
        ({"CALIBLEV": 7}, "CALIBLEV"),
        ({"CALIBLEV": 2.5}, "CALIBLEV"),
    ],
)
def test_bad_keyword(
    tmp_path: Path, rules: FormatRules, cards: dict[str, object], keyword: str
) -> None:
    path = write(image_hdul(**cards), tmp_path / "img.fits")
    [finding] = check_fits_file(path, "img.fits", ProductType.IMAGE, rules)
    assert finding.check == "fits.keyword"
    assert finding.hdu == 0
    assert keyword in finding.reason


def test_optional_keyword_may_be_absent(tmp_path: Path, rules: FormatRules) -> None:
    path = write(image_hdul(CALIBLEV=None), tmp_path / "img.fits")
    assert check_fits_file(path, "img.fits", ProductType.IMAGE, rules) == []


@pytest.mark.parametrize(
    ("cards", "reason"),
    [
        ({"WAVEMIN": 7.0e-7, "WAVEMAX": 4.0e-7}, "WAVEMIN < WAVEMAX"),
        ({"WAVEMIN": 7.0e-7, "WAVEMAX": 7.0e-7}, "WAVEMIN < WAVEMAX"),
        ({"DATE-END": "2026-01-01"}, "DATE-OBS <= DATE-END"),
    ],
)
def test_keywords_out_of_order(
    tmp_path: Path, rules: FormatRules, cards: dict[str, object], reason: str
) -> None:
    path = write(image_hdul(**cards), tmp_path / "img.fits")
    [finding] = check_fits_file(path, "img.fits", ProductType.IMAGE, rules)
    assert finding.check == "fits.keyword"
    assert reason in finding.reason


def test_spectrum_position_keywords(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(RA=None, DEC=95.0), tmp_path / "spec.fits")
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, rules)
    assert {(f.check, f.hdu) for f in found} == {("fits.keyword", 0)}
    assert sorted(f.reason.split()[0] for f in found) == ["DEC", "required"]


def test_unparsable_card(tmp_path: Path, rules: FormatRules) -> None:
    path = write(image_hdul(), tmp_path / "img.fits", checksum=False)
    patch_card(path, b"OBJECT", b"OBJECT  = M 31 unquoted")
    relaxed = FormatRules(
        mission="x", sources=(), products={ProductType.IMAGE: _no_sums(rules, ProductType.IMAGE)}
    )
    found = check_fits_file(path, "img.fits", ProductType.IMAGE, relaxed)
    [keyword] = checks(found, "fits.keyword")
    assert "OBJECT" in keyword.reason
    # astropy can repair the card in memory: a structure warning, not an error.
    [structure] = checks(found, "fits.structure")
    assert structure.severity is Severity.WARNING
    assert structure.hdu == 0


def _no_sums(rules: FormatRules, product_type: ProductType) -> ProductRules:
    return rules.for_product(product_type).model_copy(update={"checksums": False})


@pytest.mark.parametrize("product_type", [ProductType.IMAGE, ProductType.SPECTRUM])
def test_defaults_require_no_observation_keyword(
    tmp_path: Path, defaults: FormatRules, product_type: ProductType
) -> None:
    """A real header may name nothing: the ObsCore step warns, the format rules do not."""
    bare = dict.fromkeys([*OBSERVATION_CARDS, "RA", "DEC"])
    hdul = image_hdul(**bare) if product_type is ProductType.IMAGE else table_hdul("X", **bare)
    path = write(hdul, tmp_path / "bare.fits")
    assert check_fits_file(path, "bare.fits", product_type, defaults) == []


@pytest.mark.parametrize(
    ("cards", "errors_on"),
    [
        ({"DATE-OBS": "08/11/51", "DATE-END": None}, None),  # the old form, 1951
        ({"DATE-OBS": "19/05/94", "DATE-END": "1994-05-19T23:00:00"}, None),
        ({"DATE-OBS": "2005-07-31", "DATE-END": None}, None),
        ({"DATE-OBS": "", "INSTRUME": "", "DATE-END": None}, None),  # blank: unknown
        ({"DATE-OBS": "19930417", "DATE-END": None}, "DATE-OBS"),  # no FITS form
        ({"DATE-OBS": "31/02/99", "DATE-END": None}, "DATE-OBS"),
        ({"DATE-OBS": "20/05/94", "DATE-END": "1994-05-19"}, "DATE-OBS <= DATE-END"),
        ({"CALIBLEV": 7}, "CALIBLEV"),
    ],
)
def test_defaults_check_keywords_when_present(
    tmp_path: Path, defaults: FormatRules, cards: dict[str, object], errors_on: str | None
) -> None:
    path = write(image_hdul(**cards), tmp_path / "img.fits")
    found = check_fits_file(path, "img.fits", ProductType.IMAGE, defaults)
    if errors_on is None:
        assert found == []
    else:
        [finding] = found
        assert (finding.check, finding.severity) == ("fits.keyword", Severity.ERROR)
        assert errors_on in finding.reason


def test_defaults_take_an_image_without_celestial_wcs(
    tmp_path: Path, defaults: FormatRules, rules: FormatRules
) -> None:
    hdul = image_hdul()
    for key in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2"):
        del hdul[0].header[key]
    path = write(hdul, tmp_path / "img.fits")
    assert check_fits_file(path, "img.fits", ProductType.IMAGE, defaults) == []
    [strict] = check_fits_file(path, "img.fits", ProductType.IMAGE, rules)
    assert (strict.check, strict.severity) == ("fits.wcs", Severity.ERROR)


def test_strict_profile_still_requires_every_keyword(tmp_path: Path, rules: FormatRules) -> None:
    path = write(
        image_hdul(TELESCOP=None, **{"DATE-OBS": "08/11/51", "DATE-END": None}), tmp_path / "i.fits"
    )
    found = check_fits_file(path, "i.fits", ProductType.IMAGE, rules)
    assert sorted(f.reason for f in found) == [
        "required keyword DATE-END is missing",
        "required keyword TELESCOP is missing",
    ]


def test_parse_fits_date() -> None:
    assert parse_fits_date("2026-01-02") is not None
    assert parse_fits_date("08/11/51") == datetime(1951, 11, 8, tzinfo=UTC)
    assert parse_fits_date("8/11/51") is None
    parsed = parse_fits_date("2026-01-02T03:04:05.123456789")
    assert parsed is not None
    assert parsed.tzinfo is not None
    assert parse_fits_date("2026-01-02 03:04:05") is None
    assert parse_fits_date("2026-02-30") is None


# --- WCS ---------------------------------------------------------------------------


def test_image_without_wcs(tmp_path: Path, rules: FormatRules) -> None:
    hdul = image_hdul()
    for key in ("CTYPE1", "CTYPE2"):
        del hdul[0].header[key]
    path = write(hdul, tmp_path / "img.fits")
    [finding] = check_fits_file(path, "img.fits", ProductType.IMAGE, rules)
    assert (finding.check, finding.hdu) == ("fits.wcs", 0)
    assert "celestial" in finding.reason


@pytest.mark.parametrize(
    ("cards", "reason"),
    [
        ({"CRVAL2": 95.0}, "Ill-conditioned"),
        ({"CDELT1": 0.0}, "singular"),
        ({"CTYPE1": "RA---XYZ"}, "cannot be read"),
    ],
)
def test_insane_wcs(
    tmp_path: Path, rules: FormatRules, cards: dict[str, object], reason: str
) -> None:
    path = write(image_hdul(**cards), tmp_path / "img.fits")
    found = check_fits_file(path, "img.fits", ProductType.IMAGE, rules)
    [finding] = checks(found, "fits.wcs")
    assert finding.hdu == 0
    assert reason in finding.reason
    assert finding.severity is Severity.ERROR


def test_image_without_pixels(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "img.fits")
    found = check_fits_file(path, "img.fits", ProductType.IMAGE, rules)
    [finding] = checks(found, "fits.wcs")
    assert "no image HDU" in finding.reason


# --- table columns -----------------------------------------------------------------


def test_spectrum_missing_column(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(columns=("WAVELENGTH", "FLUXES")), tmp_path / "spec.fits")
    [finding] = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, rules)
    assert (finding.check, finding.hdu, finding.column) == ("fits.table_columns", 1, "FLUX")


def test_timeseries_without_its_extension(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul("SPECTRUM", ("TIME", "FLUX")), tmp_path / "lc.fits")
    [finding] = check_fits_file(path, "lc.fits", ProductType.TIMESERIES, rules)
    assert finding.check == "fits.table_columns"
    assert "LIGHTCURVE" in finding.reason


# --- structure ---------------------------------------------------------------------


def test_unfixable_structure_is_an_error(tmp_path: Path, rules: FormatRules) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits", checksum=False)
    patch_card(path, b"TELESCOP", b"TELE*COP= 'FLT'")
    relaxed = FormatRules(mission="x", sources=(), products={})
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, relaxed)
    [finding] = [f for f in found if not _missing_sum(f)]
    assert (finding.check, finding.hdu, finding.severity) == ("fits.structure", 0, "error")
    assert "TELE*COP" in finding.reason


def test_fixable_structure_in_extension_is_a_warning(tmp_path: Path) -> None:
    path = write(table_hdul(), tmp_path / "spec.fits", checksum=False)
    # GCOUNT must be 1 in a table extension; astropy can set it.
    patch_card(path, b"GCOUNT", b"GCOUNT  =                    2")
    relaxed = FormatRules(mission="x", sources=(), products={})
    found = check_fits_file(path, "spec.fits", ProductType.SPECTRUM, relaxed)
    [finding] = [f for f in found if not _missing_sum(f)]
    assert (finding.check, finding.hdu, finding.severity) == ("fits.structure", 1, "warning")
    assert "GCOUNT" in finding.reason
