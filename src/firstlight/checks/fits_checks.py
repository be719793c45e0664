"""Format checks of one FITS file against the format rules of its product type.

Belongs here: everything that needs the FITS structure (HDUs, headers, checksums,
WCS, table columns). Catalogue *content* (rows) is checked in
``catalogue_checks``. The file is opened read-only, memory-mapped and lazily, so
a large file costs its headers plus one pass over the data for DATASUM (the
checksum arithmetic itself is ``formats.fits_checksum``).

Nothing here raises on bad bytes and no warning escapes: what astropy raises or
warns about becomes a finding. Check names: ``fits.open``, ``fits.structure``,
``fits.checksum``, ``fits.datasum``, ``fits.keyword``, ``fits.wcs``,
``fits.table_columns``. Warnings are captured with ``warnings.catch_warnings``,
which is process-global: run checks in processes, not threads, when several go
at once.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from astropy.io import fits
from astropy.io.fits.verify import VerifyError, VerifyWarning
from astropy.wcs import WCS, FITSFixedWarning

from firstlight.checks.rules import (
    PRIMARY,
    FormatRules,
    KeywordRule,
    KeywordType,
    OrderRule,
    ProductRules,
)
from firstlight.domain.findings import Finding, Severity
from firstlight.domain.manifest import ProductType
from firstlight.errors import InvalidInputError
from firstlight.formats.fits_checksum import NEGATIVE_ZERO, fold, sum_file_range
from firstlight.formats.fits_dates import FORMS as FITS_DATE_FORMS
from firstlight.formats.fits_dates import parse_fits_date as parse_date

# What astropy raises on broken bytes (a short buffer is a TypeError from numpy).
BROKEN_FITS_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    VerifyError,
)

_FITS_MAGIC = b"SIMPLE  ="
_BLOCK = 2880
_HDU_HEADING = re.compile(r"^HDU \d+:$")
_CARD_HEADING = re.compile(r"^Card (\d+):$")
_WCSLIB_WHERE = re.compile(r"^ERROR \d+ in \w+\(\) at line \d+ of file \S+:$")
_VERIFY_FRAME = ("Verification reported errors:", "Note: astropy.io.fits uses zero-based")

HduCheck = Callable[[Any, str, ProductRules], list[Finding]]


def check_fits_file(
    path: Path, rel: str, product_type: ProductType, rules: FormatRules
) -> list[Finding]:
    """All format findings of one FITS file; ``rel`` is its path in the manifest."""
    product = rules.for_product(product_type)
    findings: list[Finding] = []
    # Outermost net: a warning no phase below claims (closing, say) is still a finding.
    with _warnings_as_findings(findings, "fits.open", rel, Severity.ERROR):
        hdul = open_fits(path, rel, findings)
        if hdul is not None:
            try:
                if read_headers(hdul, path, rel, findings):
                    for check in HDU_CHECKS:
                        findings.extend(check(hdul, rel, product))
            finally:
                hdul.close()
    return _deduplicated(findings)


def open_fits(path: Path, rel: str, findings: list[Finding]) -> Any | None:
    """The HDU list (read-only, memory-mapped, lazy), or None with the reason in findings."""
    not_plain = _not_plain_fits(path, rel)
    if not_plain is not None:
        findings.append(not_plain)
        return None
    opened: list[Finding] = []
    with _warnings_as_findings(opened, "fits.open", rel, Severity.ERROR):
        try:
            hdul = fits.open(path, mode="readonly", memmap=True, lazy_load_hdus=True)
        except BROKEN_FITS_ERRORS as exc:
            # astropy's warnings on the way to the failure only echo its cause; a
            # header declaring data far past the end (NAXISn = 10**12) fails its seek.
            findings.append(_declared_past_end(path, rel) or _unreadable(rel, exc))
            return None
    findings.extend(opened)
    return hdul


# Compressed files astropy would decompress, whole and unasked, if it were given one.
_COMPRESSED_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"PK\x03\x04", "zip"))


def _not_plain_fits(path: Path, rel: str) -> Finding | None:
    """A FITS product starts with SIMPLE; a compressed one is refused before opening it."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_FITS_MAGIC))
    except OSError:
        return None  # astropy's open says why, as before
    if head == _FITS_MAGIC:
        return None
    kind = next((name for magic, name in _COMPRESSED_MAGIC if head.startswith(magic)), None)
    if kind is not None:
        reason = f"not a plain FITS file: {kind}-compressed; deliver FITS uncompressed"
    else:
        reason = "not a FITS file: it does not start with the SIMPLE card"
    return Finding("fits.open", reason, file=rel, observed=repr(head))


def _declared_past_end(path: Path, rel: str) -> Finding | None:
    """The first HDU whose header declares data past the end of the file, read header by
    header without astropy's seeks; None if none does or the headers cannot be read."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            index = 0
            while fh.tell() < size:
                header = fits.Header.fromfile(fh)  # whole blocks: ends where the data start
                end = fh.tell() + _data_span(header)
                if end > size:
                    return Finding(
                        check="fits.open",
                        reason=(
                            f"file is truncated: {size} bytes, but HDU {index}'s header "
                            f"declares data up to byte {end}"
                        ),
                        file=rel,
                        hdu=index,
                        observed=str(size),
                    )
                fh.seek(end)
                index += 1
    except BROKEN_FITS_ERRORS:
        return None
    return None


def _data_span(header: Any) -> int:
    """Bytes of an HDU's data, padded to whole blocks (FITS standard 4.4.1)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    sizes = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
    if header.get("GROUPS") is True and sizes[0] == 0:
        sizes = sizes[1:]
    bits = abs(int(header["BITPIX"])) * int(header.get("GCOUNT", 1))
    count = int(header.get("PCOUNT", 0)) + math.prod(sizes)
    size = bits * count // 8
    return -(-size // _BLOCK) * _BLOCK


def read_headers(hdul: Any, path: Path, rel: str, findings: list[Finding]) -> bool:
    """Read every header and check the data fits in the file; False if unusable."""
    opened: list[Finding] = []
    with _warnings_as_findings(opened, "fits.open", rel, Severity.ERROR):
        try:
            count = len(hdul)  # lazy loading: this reads all headers
        except BROKEN_FITS_ERRORS as exc:
            findings.append(_unreadable(rel, exc))
            return False
    truncated = _truncation(hdul, count, path.stat().st_size, rel)
    # Our truncation finding names the HDU; astropy's warnings only repeat the cause.
    findings.extend(opened if truncated is None else [truncated])
    return truncated is None


def _truncation(hdul: Any, count: int, size: int, rel: str) -> Finding | None:
    for index in range(count):
        # The HDU's own fileinfo: the list's re-serialises headers (and warns about them).
        info = hdul[index].fileinfo()
        end = int(info["datLoc"]) + int(info["datSpan"])
        if end > size:
            return Finding(
                check="fits.open",
                reason=f"file is truncated: {size} bytes, but HDU {index} ends at byte {end}",
                file=rel,
                hdu=index,
                observed=str(size),
            )
    return None


# --- checksums -------------------------------------------------------------------


def check_checksums(hdul: Any, rel: str, product: ProductRules) -> list[Finding]:
    """CHECKSUM/DATASUM of every HDU, verified when present (FITS standard, appendix J).

    Wrong is an error; missing is an error if the rules require them, else a warning.

    Summed over the file's own bytes: astropy's ``verify_checksum`` re-serialises the
    header, which repairs non-standard cards and then blames the checksum.
    """
    path = Path(hdul.filename())
    findings: list[Finding] = []
    for index, hdu in enumerate(hdul):
        with _warnings_as_findings(findings, "fits.checksum", rel, Severity.WARNING, hdu=index):
            findings.extend(
                [
                    Finding(check, reason, file=rel, hdu=index, severity=severity)
                    for check, reason, severity in _sum_problems(
                        path, hdu, required=product.checksums
                    )
                ]
            )
    return findings


def _sum_problems(path: Path, hdu: Any, *, required: bool) -> list[tuple[str, str, Severity]]:
    header = hdu.header
    missing = Severity.ERROR if required else Severity.WARNING
    problems = [
        (check, f"{keyword} is missing", missing)
        for check, keyword in (("fits.checksum", "CHECKSUM"), ("fits.datasum", "DATASUM"))
        if keyword not in header
    ]
    if "CHECKSUM" not in header and "DATASUM" not in header:
        return problems
    info = hdu.fileinfo()
    header_start, data_start = int(info["hdrLoc"]), int(info["datLoc"])
    data_sum = sum_file_range(path, data_start, int(info["datSpan"]))
    if "DATASUM" in header:
        try:
            declared = int(str(header["DATASUM"]).strip())
        except BROKEN_FITS_ERRORS:
            declared = None
        if declared != data_sum:
            reason = "DATASUM does not match the HDU's data"
            problems.append(("fits.datasum", reason, Severity.ERROR))
    if "CHECKSUM" in header:
        header_sum = sum_file_range(path, header_start, data_start - header_start)
        if fold(header_sum + data_sum) != NEGATIVE_ZERO:
            reason = "CHECKSUM does not match the HDU's header and data"
            problems.append(("fits.checksum", reason, Severity.ERROR))
    return problems


# --- header keywords ---------------------------------------------------------------


class _KeywordError(InvalidInputError):
    def __init__(self, reason: str, observed: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.observed = None if observed is None else repr(observed)


def check_keywords(hdul: Any, rel: str, product: ProductRules) -> list[Finding]:
    """Required keywords present, of their type, allowed value and range, in order."""
    findings: list[Finding] = []
    for hdu_name, keywords in product.keywords.items():
        index = find_hdu(hdul, hdu_name)
        if index is None:
            reason = f"no HDU {hdu_name!r} to hold keywords {', '.join(keywords)}"
            findings.append(Finding("fits.keyword", reason, file=rel))
            continue
        orders = [o for o in product.order if o.hdu == hdu_name]
        # A card astropy warns about is check_structure's finding, not a keyword's.
        with _warnings_as_findings(
            findings, "fits.keyword", rel, Severity.WARNING, hdu=index, ignore=(VerifyWarning,)
        ):
            findings.extend(_check_header(hdul[index].header, keywords, orders, rel, index))
    return findings


def _check_header(
    header: Any,
    keywords: Mapping[str, KeywordRule],
    orders: list[OrderRule],
    rel: str,
    index: int,
) -> list[Finding]:
    findings = []
    values: dict[str, object] = {}
    for name, rule in keywords.items():
        try:
            value = keyword_value(header, name, rule)
        except _KeywordError as problem:
            findings.append(
                Finding(
                    "fits.keyword", problem.reason, file=rel, hdu=index, observed=problem.observed
                )
            )
            continue
        if value is not None:
            values[name] = value
    for order in orders:
        if order.lower in values and order.upper in values:
            lower, upper = values[order.lower], values[order.upper]
            if not _in_order(lower, upper, strict=order.strict):
                sign = "<" if order.strict else "<="
                reason = f"{order.lower} {sign} {order.upper} does not hold"
                observed = f"{order.lower}={lower}, {order.upper}={upper}"
                findings.append(
                    Finding("fits.keyword", reason, file=rel, hdu=index, observed=observed)
                )
    return findings


def keyword_value(header: Any, name: str, rule: KeywordRule) -> object:
    """The keyword's value, parsed for comparison; None when absent and optional."""
    try:
        present = name in header
        raw = header[name] if present else None
    except BROKEN_FITS_ERRORS as exc:
        # The card image is not shown: astropy repairs a card as it renders it.
        raise _KeywordError(f"{name} card cannot be parsed: not a valid FITS value") from exc
    if not present or (not rule.required and _blank(raw)):
        # An optional keyword written blank ('') says "unknown", as its absence does.
        if rule.required:
            raise _KeywordError(f"required keyword {name} is missing")
        return None
    value = _typed(name, raw, rule.type)
    if rule.allowed is not None and value not in rule.allowed:
        allowed = ", ".join(map(repr, rule.allowed))
        raise _KeywordError(f"{name} must be one of {allowed}", raw)
    if isinstance(value, int | float):
        if rule.minimum is not None and value < rule.minimum:
            raise _KeywordError(f"{name} must be >= {rule.minimum:g}", raw)
        if rule.maximum is not None and value > rule.maximum:
            raise _KeywordError(f"{name} must be <= {rule.maximum:g}", raw)
    return value


def _typed(name: str, raw: object, kind: KeywordType) -> object:
    """The value if it is of the rule's type (bool is not a number: FITS T/F is logical)."""
    number = raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    if kind is KeywordType.STRING and isinstance(raw, str) and raw.strip():
        return raw
    if kind is KeywordType.INTEGER and isinstance(number, int):
        return number
    if kind is KeywordType.NUMBER and number is not None and math.isfinite(number):
        return number
    if kind is KeywordType.BOOLEAN and isinstance(raw, bool):
        return raw
    if kind is KeywordType.DATE and isinstance(raw, str):
        parsed = parse_fits_date(raw)
        if parsed is not None:
            return parsed
        raise _KeywordError(f"{name} is not a FITS date ({FITS_DATE_FORMS})", raw)
    article = "an" if kind is KeywordType.INTEGER else "a"
    non_empty = "non-empty " if kind is KeywordType.STRING else ""
    raise _KeywordError(f"{name} must be {article} {non_empty}{kind}", raw)


def parse_fits_date(value: str) -> datetime | None:
    """A FITS date string (any form the standard allows) as an aware datetime, or None."""
    parsed = parse_date(value)
    return None if parsed is None else parsed.value


def _blank(raw: object) -> bool:
    return isinstance(raw, str) and not raw.strip()


def _in_order(lower: object, upper: object, *, strict: bool) -> bool:
    if isinstance(lower, datetime) and isinstance(upper, datetime):
        return lower < upper if strict else lower <= upper
    if isinstance(lower, int | float) and isinstance(upper, int | float):
        return lower < upper if strict else lower <= upper
    return True  # rules guarantee one ordered type; nothing comparable to judge


# --- WCS ---------------------------------------------------------------------------


def check_wcs(hdul: Any, rel: str, product: ProductRules) -> list[Finding]:
    """The image's celestial WCS maps its centre onto the sky.

    Required (``celestial_wcs = true``): the first image HDU of 2+ axes must have
    one. Not required: an image without one is left to the ObsCore step (its
    position is then NULL, with a warning), a WCS wcslib cannot read is a
    warning, and a celestial WCS that maps the centre off the sky is an error.
    """
    required = product.celestial_wcs
    index = first_image_hdu(hdul)
    if index is None:
        reason = "no image HDU with two or more axes"
        return [Finding("fits.wcs", reason, file=rel)] if required else []
    findings: list[Finding] = []
    # FITSFixedWarning only says wcslib normalised a card (e.g. MJD-OBS from DATE-OBS);
    # VerifyWarnings about the header's cards are check_structure's findings.
    with _warnings_as_findings(
        findings,
        "fits.wcs",
        rel,
        Severity.WARNING,
        hdu=index,
        ignore=(FITSFixedWarning, VerifyWarning),
    ):
        problem = celestial_wcs_problem(hdul[index].header, hdul, required=required)
    if problem is not None:
        reason, observed, severity = problem
        findings.append(
            Finding("fits.wcs", reason, file=rel, hdu=index, observed=observed, severity=severity)
        )
    return findings


def celestial_wcs_problem(
    header: Any, hdul: Any = None, *, required: bool = True
) -> tuple[str, str | None, Severity] | None:
    """What is wrong with a header's celestial WCS (reason, observed, severity), or None.

    ``hdul`` lets wcslib read lookup-table distortions (CPDIS, D2IM) from their
    extensions.
    """
    lenient = Severity.ERROR if required else Severity.WARNING
    try:
        wcs = WCS(header, hdul)
    except BROKEN_FITS_ERRORS as exc:  # WcsError and friends are ValueErrors
        return f"WCS cannot be read: {_wcslib_text(exc)}", None, lenient
    if not wcs.has_celestial:
        if not required:
            return None
        return "no celestial WCS (CTYPEi pair such as RA---TAN / DEC--TAN)", None, Severity.ERROR
    problem = _centre_problem(wcs.celestial)
    return None if problem is None else (*problem, Severity.ERROR)


def _centre_problem(celestial: Any) -> tuple[str, str | None] | None:
    shape = celestial.pixel_shape
    if shape is None:
        return "celestial WCS without image dimensions (NAXISi)", None
    centre = [(n - 1) / 2 for n in shape]
    try:
        lon, lat = (float(v) for v in celestial.pixel_to_world_values(*centre))
    except BROKEN_FITS_ERRORS as exc:
        return f"WCS cannot map the image centre: {_wcslib_text(exc)}", None
    observed = f"centre ({lon}, {lat})"
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return "image centre maps to a non-finite sky position", observed
    if not -90 <= lat <= 90:
        return "image centre maps to a latitude outside [-90, 90]", observed
    return None


def first_image_hdu(hdul: Any) -> int | None:
    """The HDU carrying the image: primary or extension, the first with 2+ axes."""
    for index, hdu in enumerate(hdul):
        if isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
            naxis = hdu.header.get("NAXIS", 0)
            if isinstance(naxis, int) and naxis >= 2:
                return index
    return None


# --- table columns -----------------------------------------------------------------


def check_table_columns(hdul: Any, rel: str, product: ProductRules) -> list[Finding]:
    """The product's table extension exists and has the required columns."""
    rule = product.table
    if rule is None:
        return []
    index = find_hdu(hdul, rule.extname)
    if index is None:
        reason = f"no table extension with EXTNAME {rule.extname}"
        return [Finding("fits.table_columns", reason, file=rel)]
    hdu = hdul[index]
    if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
        reason = f"extension {rule.extname} is not a table"
        return [Finding("fits.table_columns", reason, file=rel, hdu=index)]
    findings: list[Finding] = []
    with _warnings_as_findings(findings, "fits.table_columns", rel, Severity.WARNING, hdu=index):
        try:
            names = {str(name).upper() for name in hdu.columns.names}
        except BROKEN_FITS_ERRORS as exc:
            reason = f"table columns cannot be read: {_text(exc)}"
            return [Finding("fits.table_columns", reason, file=rel, hdu=index)]
    for column in rule.columns:
        if column.upper() not in names:
            reason = f"required column {column} is missing from {rule.extname}"
            findings.append(
                Finding("fits.table_columns", reason, file=rel, hdu=index, column=column)
            )
    return findings


# --- structure (astropy's verify) -------------------------------------------------------


def check_structure(hdul: Any, rel: str, product: ProductRules) -> list[Finding]:
    """``verify`` per HDU and of the list: unfixable problems error, fixable ones warn.

    ``fix`` repairs headers in memory only (the file is read-only): checks after
    this one see the repaired headers, checksums must come before it.
    """
    del product  # the FITS standard is the same for every product type
    findings: list[Finding] = []
    for index, hdu in enumerate(hdul):
        findings.extend(_verify_findings(hdu, rel, index))
    # List-level problems (missing EXTEND, an extension that is not one) come first;
    # what follows under "HDU n:" headings was reported per HDU above.
    findings.extend(_verify_findings(hdul, rel, None))
    return findings


def _verify_findings(target: Any, rel: str, index: int | None) -> list[Finding]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            target.verify("fix+warn")
        except BROKEN_FITS_ERRORS as exc:
            reason = f"verification failed: {_text(exc)}"
            return [Finding("fits.structure", reason, file=rel, hdu=index)]
    lines = [line for w in caught for line in str(w.message).splitlines()]
    return parse_verify_lines(lines, rel, index)


def parse_verify_lines(lines: list[str], rel: str, index: int | None) -> list[Finding]:
    """Findings from astropy's verify report (one warning per line, nested by indent)."""
    findings = []
    card: int | None = None
    for line in lines:
        text = line.strip()
        if not text or text.startswith(_VERIFY_FRAME):
            continue
        if _HDU_HEADING.match(text):
            if index is None:
                break
            continue
        if heading := _CARD_HEADING.match(text):
            card = int(heading[1])
            continue
        unfixable = text.startswith("Unfixable error:")
        reason = text.removeprefix("Unfixable error:").strip()
        findings.append(
            Finding(
                "fits.structure",
                _text(reason if card is None else f"card {card}: {reason}"),
                file=rel,
                hdu=index,
                severity=Severity.ERROR if unfixable else Severity.WARNING,
            )
        )
    return findings


# --- shared ------------------------------------------------------------------------


HDU_CHECKS: tuple[HduCheck, ...] = (
    # Order matters: astropy repairs headers in memory when it verifies them (and
    # when WCS serialises them); keywords are judged as written, before any repair.
    check_checksums,
    check_keywords,
    check_structure,
    check_wcs,
    check_table_columns,
)


def find_hdu(hdul: Any, name: str) -> int | None:
    """Index of the HDU a rule names: 'primary' or an extension's EXTNAME."""
    if name.lower() == PRIMARY:
        return 0
    for index, hdu in enumerate(hdul):
        if index > 0 and str(hdu.name).upper() == name.upper():
            return index
    return None


@contextmanager
def _warnings_as_findings(
    sink: list[Finding],
    check: str,
    rel: str,
    severity: Severity,
    *,
    hdu: int | None = None,
    ignore: tuple[type[Warning], ...] = (),
) -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                if not issubclass(warning.category, ignore):
                    reason = _text(warning.message)
                    sink.append(Finding(check, reason, file=rel, hdu=hdu, severity=severity))


def _unreadable(rel: str, exc: BaseException) -> Finding:
    return Finding("fits.open", f"not a readable FITS file: {_text(exc)}", file=rel)


def _text(message: object) -> str:
    """One line of astropy's (often multi-line, padded) message."""
    return " ".join(str(message).split())


def _wcslib_text(exc: BaseException) -> str:
    """wcslib's message without its C source locations."""
    lines = [line for line in str(exc).splitlines() if not _WCSLIB_WHERE.match(line.strip())]
    return _text(" ".join(lines))


def _deduplicated(findings: list[Finding]) -> list[Finding]:
    # astropy repeats a warning once per card or access; one finding says it.
    return list(dict.fromkeys(findings))
