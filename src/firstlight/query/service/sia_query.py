"""SIA 2.0 query parameters as one ADQL query over ``ivoa.obscore``, for images.

Pure: ``sia_adql`` turns the parameters (lower-case names, each with its list
of values) into ADQL, or raises ``ParameterError`` naming the parameter and
what it should look like. The ADQL then runs like any TAP query (parsed,
re-rendered, public rows only, MAXREC-bounded), so SIA answers exactly what
TAP answers about the same observations.

Rules (SIA 2.0 section 2.2): values of one parameter are ORed, parameters are
ANDed; intervals are ``lo hi`` with ``-Inf``/``+Inf`` open ends (a single
number for BAND and TIME is a point); an interval matches a row whose range
overlaps it. POS shapes (ICRS degrees) select observations whose footprint
may touch the shape: ``CIRCLE ra dec r`` by the centre's distance against
``r`` plus half the field of view; ``RANGE`` and ``POLYGON`` by the centre.
Only images (``dataproduct_type`` image or cube) are searched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from firstlight.query.service.params import ParameterError

IMAGE_TYPES = ("image", "cube")
# parameter -> ObsCore column, for exact-match text parameters
_TEXT = {
    "id": "obs_publisher_did",
    "collection": "obs_collection",
    "facility": "facility_name",
    "instrument": "instrument_name",
    "dptype": "dataproduct_type",
    "target": "target_name",
    "format": "access_format",
}
# parameter -> (lower column, upper column) of the range an interval must overlap
_RANGES = {
    "band": ("em_min", "em_max"),
    "time": ("t_min", "t_max"),
    "fov": ("s_fov", "s_fov"),
    "spatres": ("s_resolution", "s_resolution"),
    "exptime": ("t_exptime", "t_exptime"),
}
_POINT_ALLOWED = frozenset({"band", "time"})
_POL_STATES = frozenset(
    [
        "I",
        "Q",
        "U",
        "V",
        "RR",
        "LL",
        "RL",
        "LR",
        "XX",
        "YY",
        "XY",
        "YX",
        "POLI",
        "POLA",
    ]  # SIA 2.0 section 2.2.4
)
PARAMETERS = frozenset({"pos", "pol", "calib", *_TEXT, *_RANGES})
COLUMNS = (
    "obs_publisher_did, obs_id, obs_collection, dataproduct_type, calib_level, "
    "target_name, s_ra, s_dec, s_fov, s_region, s_resolution, t_min, t_max, t_exptime, "
    "em_min, em_max, pol_states, facility_name, instrument_name, access_url, "
    "access_format, access_estsize, obs_release_date"
)


def sia_adql(params: Mapping[str, Sequence[str]]) -> str:
    """The ADQL query the SIA parameters ask (names lower-case, values as given)."""
    terms = [_any([f"dataproduct_type = {_text(t)}" for t in IMAGE_TYPES])]
    for name in sorted(PARAMETERS):
        values = [v for v in params.get(name, ()) if v.strip()]
        if not values:
            continue
        if name == "pos":
            alternatives = [_pos(v) for v in values]
        elif name == "pol":
            alternatives = [_pol(v) for v in values]
        elif name == "calib":
            alternatives = [f"calib_level = {_integer(name, v)}" for v in values]
        elif name in _TEXT:
            alternatives = [f"{_TEXT[name]} = {_text(v)}" for v in values]
        else:
            alternatives = [_overlap(name, v) for v in values]
        terms.append(_any(alternatives))
    where = "\n  AND ".join(terms)
    return f"SELECT {COLUMNS}\nFROM ivoa.obscore\nWHERE {where}"


def _any(alternatives: list[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")"


def _text(value: str) -> str:
    """An ADQL string literal (the query is parsed again: this is never pasted into SQL)."""
    return "'" + value.replace("'", "''") + "'"


def _number(name: str, text: str, *, infinite: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(f"{name.upper()}: {text!r} is not a number") from None
    if math.isnan(value) or (math.isinf(value) and not infinite):
        raise ParameterError(f"{name.upper()}: {text!r} is not a finite number")
    return value


def _integer(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ParameterError(f"{name.upper()}: {text!r} is not an integer") from None


def _interval(name: str, value: str) -> tuple[float, float]:
    parts = value.split()
    if len(parts) == 1 and name in _POINT_ALLOWED:
        point = _number(name, parts[0])
        return point, point
    if len(parts) != 2:
        shape = "a number or 'lo hi'" if name in _POINT_ALLOWED else "'lo hi'"
        raise ParameterError(f"{name.upper()}={value!r}: expected {shape} (-Inf/+Inf open)")
    lo, hi = (_number(name, p, infinite=True) for p in parts)
    if lo > hi:
        raise ParameterError(f"{name.upper()}={value!r}: the lower bound is above the upper")
    return lo, hi


def _overlap(name: str, value: str) -> str:
    lo, hi = _interval(name, value)
    low_column, high_column = _RANGES[name]
    terms = []
    if math.isfinite(hi):
        terms.append(f"{low_column} <= {hi!r}")
    if math.isfinite(lo):
        terms.append(f"{high_column} >= {lo!r}")
    if not terms:  # -Inf +Inf: any row that has the value
        terms.append(f"{low_column} IS NOT NULL")
    return "(" + " AND ".join(terms) + ")"


def _pol(value: str) -> str:
    state = value.strip().upper()
    if state not in _POL_STATES:
        raise ParameterError(f"POL={value!r}: one of {' '.join(sorted(_POL_STATES))}")
    return f"pol_states LIKE {_text(f'%/{state}/%')}"


def _pos(value: str) -> str:
    shape, *rest = value.split()
    numbers = [_number("pos", t) for t in rest]
    kind = shape.upper()
    if kind == "CIRCLE" and len(numbers) == 3:
        ra, dec, radius = numbers
        _check_position(value, ra, dec)
        if not 0 <= radius <= 180:
            raise ParameterError(f"POS={value!r}: the radius must be in [0, 180] degrees")
        centre = f"POINT('ICRS', {ra!r}, {dec!r})"
        return (
            f"(DISTANCE(POINT('ICRS', s_ra, s_dec), {centre}) "
            f"<= {radius!r} + COALESCE(s_fov, 0) / 2)"
        )
    if kind == "RANGE" and len(numbers) == 4:
        ra1, ra2, dec1, dec2 = numbers
        if not (0 <= ra1 <= ra2 <= 360 and -90 <= dec1 <= dec2 <= 90):
            raise ParameterError(f"POS={value!r}: RANGE ra1 ra2 dec1 dec2, each pair ordered")
        return f"(s_ra BETWEEN {ra1!r} AND {ra2!r} AND s_dec BETWEEN {dec1!r} AND {dec2!r})"
    if kind == "POLYGON" and len(numbers) >= 6 and len(numbers) % 2 == 0:
        for ra, dec in zip(numbers[::2], numbers[1::2], strict=True):
            _check_position(value, ra, dec)
        vertices = ", ".join(repr(n) for n in numbers)
        return f"1 = CONTAINS(POINT('ICRS', s_ra, s_dec), POLYGON('ICRS', {vertices}))"
    raise ParameterError(
        f"POS={value!r}: expected CIRCLE ra dec radius, RANGE ra1 ra2 dec1 dec2 "
        "or POLYGON ra1 dec1 ra2 dec2 ra3 dec3 ... (ICRS degrees)"
    )


def _check_position(value: str, ra: float, dec: float) -> None:
    if not (0 <= ra <= 360 and -90 <= dec <= 90):
        raise ParameterError(f"POS={value!r}: RA must be in [0, 360], Dec in [-90, 90]")
