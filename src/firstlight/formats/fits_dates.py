"""FITS date strings: every form the FITS standard allows, as aware datetimes.

Belongs here: parsing the value of a date keyword (``DATE-OBS``, ``DATE-END``,
``DATE-BEG``, ``DATE``), nothing about which keyword means what. The FITS
standard (4.0, section 9.1.1) allows ``YYYY-MM-DD`` with an optional
``Thh:mm:ss[.s...]``, and, deprecated but valid for dates in 1900-1999, the
original ``DD/MM/YY`` form. Years beyond 9999 and before 1 (signed, five
digits) are valid FITS but not Python datetimes; they are not read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?)?$")
_OLD = re.compile(r"^(\d{2})/(\d{2})/(\d{2})$")

FORMS = "YYYY-MM-DD[Thh:mm:ss[.s]] or DD/MM/YY"


@dataclass(frozen=True)
class FitsDate:
    """A parsed date; ``has_time`` is False when the value names a day only."""

    value: datetime
    has_time: bool


def parse_fits_date(text: str) -> FitsDate | None:
    """The date a FITS date string holds, or None if it is not one.

    FITS dates carry no zone (TIMESYS names the time scale); they are returned
    as UTC-aware datetimes so comparisons never mix naive and aware values.
    """
    value = text.strip()
    old = _OLD.match(value)
    if old is not None:
        day, month, year = (int(g) for g in old.groups())
        try:
            return FitsDate(datetime(1900 + year, month, day, tzinfo=UTC), has_time=False)
        except ValueError:  # 31/02/99
            return None
    iso = _ISO.match(value)
    if iso is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # month 13, hour 25
        return None
    return FitsDate(parsed.replace(tzinfo=UTC), has_time=iso.group(1) is not None)
