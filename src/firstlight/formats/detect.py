"""What a delivered file is: its format, from its content, and its product type.

Content decides; the file name only breaks ties (a one-column ``.csv``, a
delimited ``README.txt``). Detection reads headers and the first few KB, never
whole files, and never resolves XML entities. A file that claims a format but
cannot be read as one raises ``FormatError`` naming the file.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from astropy import units as u
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS

from firstlight.domain.manifest import FileFormat, ProductType
from firstlight.errors import InvalidInputError

_SNIFF_BYTES = 16 * 1024
_FITS_MAGIC = b"SIMPLE  ="
_PARQUET_MAGIC = b"PAR1"
_CSV_DELIMITERS = (",", "\t", ";", "|")
_CSV_EXTENSIONS = {".csv", ".tsv", ".psv", ".dat"}
# Text that happens to have a steady comma count is still prose or markup.
_NOT_TABLE_EXTENSIONS = {
    ".txt", ".md", ".rst", ".json", ".xml", ".html", ".htm", ".yaml", ".yml",
    ".log", ".ini", ".cfg", ".toml", ".py", ".sh",
}  # fmt: skip
_HEADER_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .()/\[\]-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_XML_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s/>]")

_WAVELENGTH_NAMES = {"wavelength", "wave", "lambda"}
_FLUX_NAMES = {"flux", "flux_density", "fluxdens"}
_SPECTRAL_TYPES = ("frequency", "energy", "wavenumber")


class FormatError(InvalidInputError):
    """A file cannot be read as the format it claims; the message names the file,
    ``column`` the column when one is to blame."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class XmlProlog:
    """What precedes an XML document's root element."""

    root: str | None
    declares_entities: bool


def detect_format(path: Path) -> FileFormat:
    """Tell a file's format from its first bytes, the extension breaking ties."""
    head = _read_head(path)
    if head.startswith(_FITS_MAGIC):
        return FileFormat.FITS
    if head.startswith(_PARQUET_MAGIC) and _read_tail(path, len(_PARQUET_MAGIC)) == _PARQUET_MAGIC:
        return FileFormat.PARQUET
    text = _decode_text(head, complete=path.stat().st_size <= len(head))
    if text is None:
        return FileFormat.OTHER
    if scan_xml_prolog(text).root == "VOTABLE":
        return FileFormat.VOTABLE
    if _looks_like_csv(text, path.suffix.lower()):
        return FileFormat.CSV
    return FileFormat.OTHER


def detect_product_type(path: Path, fmt: FileFormat) -> ProductType:
    """Classify a file: FITS by its HDUs, any other table as a catalogue."""
    if fmt is FileFormat.FITS:
        return _fits_product_type(path)
    if fmt in {FileFormat.VOTABLE, FileFormat.CSV, FileFormat.PARQUET}:
        return ProductType.CATALOGUE
    return ProductType.AUXILIARY


def scan_xml_prolog(text: str) -> XmlProlog:
    """Find the root element's local name, skipping declarations and comments.

    A plain scan, not a parser: nothing is expanded or fetched. ``root`` is
    None when the text is not XML or the prolog runs past the text.
    """
    pos = 0
    entities = False
    text = text.lstrip("\ufeff")
    while True:
        pos = _skip_space(text, pos)
        if text.startswith("<?", pos):
            pos = _skip_past(text, pos, "?>")
        elif text.startswith("<!--", pos):
            pos = _skip_past(text, pos, "-->")
        elif text.startswith("<!DOCTYPE", pos):
            end = _doctype_end(text, pos)
            entities = entities or "<!ENTITY" in text[pos:end]
            pos = end
        else:
            match = _XML_ROOT.match(text, pos)
            return XmlProlog(root=match.group(1) if match else None, declares_entities=entities)
        if pos < 0:
            return XmlProlog(root=None, declares_entities=entities)


def sniff_csv_delimiter(text: str) -> str | None:
    """The delimiter that splits every line into the same number (>= 2) of fields."""
    best: tuple[int, str] | None = None
    for delimiter in _CSV_DELIMITERS:
        widths = {len(row) for row in _csv_rows(text, delimiter)}
        if len(widths) == 1 and (width := widths.pop()) >= 2 and (best is None or width > best[0]):
            best = (width, delimiter)
    return None if best is None else best[1]


def csv_delimiter(path: Path) -> str:
    """The delimiter of a CSV file (',' for a single column)."""
    text = _decode_text(_read_head(path), complete=path.stat().st_size <= _SNIFF_BYTES)
    if text is None:
        raise FormatError(f"{path.name}: not UTF-8 text, cannot be read as CSV")
    return sniff_csv_delimiter(text) or ","


def _read_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(_SNIFF_BYTES)


def _read_tail(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        if fh.seek(0, io.SEEK_END) < 2 * size:
            return b""
        fh.seek(-size, io.SEEK_END)
        return fh.read(size)


def _decode_text(head: bytes, *, complete: bool) -> str | None:
    """UTF-8 text without control characters, cut to whole lines unless complete."""
    if not complete:
        cut = head.rfind(b"\n")
        if cut < 0:
            return None
        head = head[: cut + 1]
    try:
        text = head.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    if not text.strip() or _CONTROL.search(text):
        return None
    return text


def _looks_like_csv(text: str, suffix: str) -> bool:
    if suffix in _NOT_TABLE_EXTENSIONS:
        return False
    delimiter = sniff_csv_delimiter(text)
    if delimiter is None:
        # One column: plausible only when the name says CSV and no line splits.
        single = all(len(row) == 1 for row in _csv_rows(text, ","))
        return suffix in _CSV_EXTENSIONS and single and _is_header(_first_row(text, ","))
    return _is_header(_first_row(text, delimiter))


def _csv_rows(text: str, delimiter: str) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    except csv.Error:
        return []


def _first_row(text: str, delimiter: str) -> list[str]:
    rows = _csv_rows(text, delimiter)
    return next(iter(rows), [])


def _is_header(fields: list[str]) -> bool:
    names = [f.strip() for f in fields]
    unique = len(set(names)) == len(names)
    return bool(names) and unique and all(_HEADER_FIELD.match(n) for n in names)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _skip_past(text: str, pos: int, end: str) -> int:
    found = text.find(end, pos)
    return -1 if found < 0 else found + len(end)


def _doctype_end(text: str, pos: int) -> int:
    """Index after a DOCTYPE declaration, stepping over its internal subset."""
    depth = 0
    quote = ""
    for i in range(pos + 2, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == ">" and depth == 0:
            return i + 1
    return -1


# --- FITS product types ---------------------------------------------------------------


def _fits_product_type(path: Path) -> ProductType:
    headers = _fits_headers(path)
    image = _first_image_header(headers)
    if image is not None and _has_celestial_wcs(image, path):
        return ProductType.IMAGE
    tables = [h for h in headers if h.get("XTENSION") == "BINTABLE"]
    if any(_is_spectrum(h) for h in tables):
        return ProductType.SPECTRUM
    if any(_is_timeseries(h) for h in tables):
        return ProductType.TIMESERIES
    if tables:
        return ProductType.CATALOGUE
    return ProductType.AUXILIARY


def _fits_headers(path: Path) -> list[fits.Header]:
    """Every HDU's header, without touching the data."""
    try:
        # Oddities of a header are the validate step's findings, not detection's.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=True, mode="readonly") as hdul:
                return [hdu.header.copy() for hdu in hdul]
    except (OSError, ValueError, IndexError, KeyError) as exc:
        raise FormatError(f"{path.name}: unreadable FITS: {exc}") from exc


def _first_image_header(headers: list[fits.Header]) -> fits.Header | None:
    """The primary HDU if it holds an image, else the first IMAGE extension."""
    for index, header in enumerate(headers):
        is_image = index == 0 or header.get("XTENSION") == "IMAGE"
        if is_image and header.get("NAXIS", 0) >= 1:
            return header if _is_2d(header) else None
    return None


def _is_2d(header: fits.Header) -> bool:
    naxis = int(header.get("NAXIS", 0))
    sizes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    return naxis >= 2 and all(n > 1 for n in sizes[:2]) and all(n == 1 for n in sizes[2:])


def _has_celestial_wcs(header: fits.Header, path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            # fix=False: wcslib's date fixes only warn, they do not change the axes.
            return bool(WCS(header, naxis=2, fix=False).has_celestial)
    except (ValueError, MemoryError, KeyError, TypeError):
        pass
    # Lookup-table distortions (CPDIS, D2IM) live in other HDUs, which wcslib then needs.
    try:
        with warnings.catch_warnings(), fits.open(path, memmap=True, mode="readonly") as hdul:
            warnings.simplefilter("ignore", AstropyWarning)
            return bool(WCS(header, hdul, naxis=2, fix=False).has_celestial)
    except (OSError, ValueError, MemoryError, KeyError, TypeError, IndexError):
        return False


def _table_fields(header: fits.Header) -> list[tuple[str, str | None]]:
    """(TTYPEn, TUNITn) of a table header, names upper-cased."""
    count = int(header.get("TFIELDS", 0))
    fields = []
    for i in range(1, count + 1):
        unit = header.get(f"TUNIT{i}")
        fields.append((str(header.get(f"TTYPE{i}", "")).strip().upper(), unit and str(unit)))
    return fields


def _is_spectrum(header: fits.Header) -> bool:
    if str(header.get("EXTNAME", "")).strip().upper() == "SPECTRUM":
        return True
    fields = _table_fields(header)
    has_wave = any(n.lower() in _WAVELENGTH_NAMES or _is_spectral_unit(un) for n, un in fields)
    has_flux = any(n.lower() in _FLUX_NAMES or n.startswith("FLUX") for n, _ in fields)
    return has_wave and has_flux


def _is_timeseries(header: fits.Header) -> bool:
    if str(header.get("EXTNAME", "")).strip().upper() == "LIGHTCURVE":
        return True
    return any(name == "TIME" for name, _ in _table_fields(header))


def _is_spectral_unit(unit: str | None) -> bool:
    """A unit of the spectral axis: wavelength (up to metres), frequency or energy."""
    if not unit:
        return False
    try:
        parsed = u.Unit(unit, parse_strict="silent")
    except ValueError:
        return False
    if isinstance(parsed, u.UnrecognizedUnit):
        return False
    if parsed.physical_type == "length":
        # Parsecs and kilometres are distances, not wavelengths.
        return bool(parsed.to(u.m) <= 1.0)
    return any(parsed.physical_type == kind for kind in _SPECTRAL_TYPES)
