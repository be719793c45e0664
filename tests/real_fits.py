"""A corpus of real FITS files from real telescopes, taken from the installed packages.

What belongs here: which files, from which package, and why each one is in the
corpus (what it exercises that the synthetic deliveries never do), and
building a delivery folder of them. Only files the project's own dependencies
ship are used (astropy, and astroquery's and pyvo's test data), so the corpus
needs no download. A file shipped gzip-compressed is delivered decompressed:
the delivery format takes plain FITS only (docs/delivery-format.md).
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RealFile:
    name: str  # its name in the delivery
    package: str
    path: str  # inside the package
    why: str

    @property
    def source(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        assert spec is not None and spec.origin is not None, f"{self.package} is not installed"
        return Path(spec.origin).parent / self.path


CORPUS = (
    RealFile(
        "poss1_m1.fits",
        "astroquery",
        "ipac/ned/tests/data/query_images.fits",
        "Palomar 48-inch Schmidt plate (POSS-I, via NED): DATE-OBS in the standard's old "
        "dd/mm/yy form ('08/11/51'), no time of day, EXPOSURE in minutes, TELESCOP only",
    ),
    RealFile(
        "ukst_dss.fits",
        "astropy",
        "wcs/tests/data/dss.14.29.56-62.41.05.fits.gz",
        "UK 48-inch Schmidt plate from the Digitized Sky Survey: dd/mm/yy date, EXPOSURE "
        "in minutes, a non-standard SKEW card (a structure warning, not a defect)",
    ),
    RealFile(
        "cfht_megacam.fits",
        "astroquery",
        "cadc/tests/data/query_images.fits",
        "CFHT MegaPrime/MegaCam (via CADC): INSTRUME and DETECTOR, FILTER 'g.MP9401' "
        "(wavelengths from the filter table), DATE-OBS of a day only beside a precise "
        "MJD-OBS, EXPTIME",
    ),
    RealFile(
        "ukirt_wfcam.fits",
        "astroquery",
        "ukidss/tests/data/image.fits",
        "UKIRT WFCAM (UKIDSS): the image in an extension, ZPN projection, DATE-END, "
        "FILTER 'K', DETECTOR in the extension's header",
    ),
    RealFile(
        "apogee_sip.fits",
        "astropy",
        "nddata/tests/data/sip-wcs.fits",
        "Apogee Alta CCD: TAN-SIP distortion polynomials, FILTER 'B', EXPTIME, no TELESCOP",
    ),
    RealFile(
        "effelsberg_gal.fits",
        "astroquery",
        "magpis/tests/data/image.fits",
        "Effelsberg 100-m radio map (MAGPIS): galactic GLON-SIN axes (converted to ICRS), "
        "INSTRUME and DATE-OBS written blank",
    ),
    RealFile(
        "ngc1316_fk4.fits",
        "astropy",
        "io/fits/tests/data/checksum.fits",
        "optical image of NGC 1316: FK4 B1950 SIN axes, a CHECKSUM and DATASUM in every "
        "HDU (verified), a table extension from another mission (XTE) beside it",
    ),
    RealFile(
        "azp_1904-66.fits",
        "astropy",
        "modeling/tests/data/1904-66_AZP.fits",
        "Calabretta & Greisen's AZP (zenithal perspective) test image of a real radio field: "
        "a WCS and nothing else; the manifest's observation fields complete it",
    ),
    RealFile(
        "hst_lookup.fits",
        "astropy",
        "wcs/tests/data/dist_lookup.fits.gz",
        "HST-style distortions: TAN-SIP plus lookup-table (CPDIS) and detector (D2IM) "
        "corrections held in extensions, which wcslib needs the whole file for",
    ),
)

# A real file with a real defect: DATE-OBS '19930417' is in no form the FITS standard allows.
BAD_DATE = RealFile(
    "vla_first.fits",
    "astroquery",
    "image_cutouts/first/tests/data/image.fits",
    "VLA FIRST cutout: DATE-OBS '19930417' is not a FITS date; refused, naming the keyword",
)


def deliver(files: tuple[RealFile, ...] | list[RealFile], folder: Path) -> Path:
    """A delivery folder (no manifest yet) holding ``files``, decompressed where gzipped."""
    folder.mkdir(parents=True)
    for item in files:
        data = item.source.read_bytes()
        if item.path.endswith(".gz"):
            data = gzip.decompress(data)
        (folder / item.name).write_bytes(data)
    return folder
