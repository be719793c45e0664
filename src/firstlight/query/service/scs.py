"""Simple Cone Search 1.03, one service per public catalogue: /scs/{mission}/{table}.

The search itself is query.cone (current release, embargo honoured, nearest
first). SCS wants its UCD1 words on the identifier and position columns
(ID_MAIN, POS_EQ_RA_MAIN, POS_EQ_DEC_MAIN) and errors as a VOTable whose
INFO named Error says what is wrong. /scs/{mission}/obscore searches the
mission's public observations the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from firstlight.domain.manifest import TableDefinition
from firstlight.errors import InvalidInputError, NotFoundError
from firstlight.query.cone import ConeResult, cone_search, cone_search_observations
from firstlight.query.public import VOTABLE_TYPES
from firstlight.query.service.execution import DID_COLUMN, public_urls
from firstlight.query.service.state import ServiceState
from firstlight.query.service.votable import (
    VOTABLE_MIME,
    FieldSpec,
    ServiceDescriptor,
    attr,
    error_document,
    results_document,
)

router = APIRouter(prefix="/scs")

OBSCORE = "obscore"
DISTANCE = FieldSpec(
    "distance", "double", unit="deg", ucd="pos.angDistance", description="From the cone's centre"
)
OBSCORE_FIELDS = {
    "obs_id": FieldSpec("obs_id", "char", "*", ucd="ID_MAIN", description="Observation id"),
    "dataproduct_type": FieldSpec("dataproduct_type", "char", "*", ucd="meta.code.class"),
    "target_name": FieldSpec("target_name", "char", "*", ucd="meta.id;src"),
    "s_ra": FieldSpec("s_ra", "double", unit="deg", ucd="POS_EQ_RA_MAIN"),
    "s_dec": FieldSpec("s_dec", "double", unit="deg", ucd="POS_EQ_DEC_MAIN"),
    "s_fov": FieldSpec("s_fov", "double", unit="deg", ucd="phys.angSize;instr.fov"),
    "t_min": FieldSpec("t_min", "double", unit="d", ucd="time.start;obs.exposure"),
    "t_max": FieldSpec("t_max", "double", unit="d", ucd="time.end;obs.exposure"),
    "em_min": FieldSpec("em_min", "double", unit="m", ucd="em.wl;stat.min"),
    "em_max": FieldSpec("em_max", "double", unit="m", ucd="em.wl;stat.max"),
    "instrument_name": FieldSpec("instrument_name", "char", "*", ucd="meta.id;instr"),
    "access_url": FieldSpec("access_url", "char", "*", ucd="meta.ref.url"),
    DID_COLUMN: FieldSpec(DID_COLUMN, "char", "*", ucd="meta.ref.ivoid"),
}


class ConeRequestError(InvalidInputError):
    """RA, DEC, SR or VERB missing or out of range; the message names it."""


def cone_parameters(params: dict[str, str]) -> tuple[float, float, float, int]:
    """RA, DEC, SR (degrees) and VERB (1..3, default 2) of an SCS request."""
    values: list[float] = []
    for name in ("RA", "DEC", "SR"):
        raw = params.get(name)
        if raw is None or not raw.strip():
            raise ConeRequestError(f"{name} is missing")
        try:
            value = float(raw)
        except ValueError:
            raise ConeRequestError(f"{name}={raw!r} is not a number") from None
        if not math.isfinite(value):
            raise ConeRequestError(f"{name}={raw!r} is not a finite number")
        values.append(value)
    ra, dec, sr = values
    if not 0 <= ra <= 360:  # SCS 1.03: ICRS degrees; 400 is a mistake, not 40
        raise ConeRequestError(f"RA={ra} is outside [0, 360]")
    if not -90 <= dec <= 90:
        raise ConeRequestError(f"DEC={dec} is outside [-90, 90]")
    if not 0 <= sr <= 10:
        raise ConeRequestError(f"SR={sr} is outside [0, 10] degrees")
    verb_text = params.get("VERB", "2")
    if verb_text not in ("1", "2", "3"):
        raise ConeRequestError(f"VERB={verb_text!r}: use 1, 2 or 3")
    return ra % 360.0, dec, sr, int(verb_text)


def catalogue_fields(definition: TableDefinition, columns: Sequence[str]) -> list[FieldSpec]:
    """FIELDs of a cone result: the manifest's types, units and UCDs, SCS's UCDs on its three."""
    roles = {
        (definition.primary_key or "").lower(): "ID_MAIN",
        (definition.ra or "").lower(): "POS_EQ_RA_MAIN",
        (definition.dec or "").lower(): "POS_EQ_DEC_MAIN",
    }
    by_name = {c.name.lower(): c for c in definition.columns}
    fields: list[FieldSpec] = []
    for name in columns:
        if name == DISTANCE.name:
            fields.append(DISTANCE)
            continue
        col = by_name[name.lower()]
        role = roles.get(name.lower())
        datatype = "char" if role == "ID_MAIN" else VOTABLE_TYPES[col.datatype]
        description = col.description
        if role and col.ucd:
            description = f"{description or ''} (UCD1+: {col.ucd})".strip()
        fields.append(
            FieldSpec(
                name=col.name.lower(),
                datatype=datatype,
                arraysize="*" if datatype == "char" else None,
                unit=col.unit,
                ucd=role or col.ucd,
                description=description,
            )
        )
    return fields


def chosen_columns(result: ConeResult, keep: set[str] | None, verb: int) -> list[int]:
    """Indexes of the columns VERB shows: 1 the id and position, 2 all, 3 all and distance."""
    wanted = []
    for i, name in enumerate(result.columns):
        if name == DISTANCE.name and verb < 3:
            continue
        if verb == 1 and keep is not None and name.lower() not in keep:
            continue
        wanted.append(i)
    return wanted


def scs_error(message: str) -> str:
    """An SCS 1.03 error (INFO named Error), also carrying DALI's QUERY_STATUS."""
    doc = error_document(message)
    marker = "</RESOURCE>"
    return doc.replace(marker, f'<INFO ID="Error" name="Error" value={attr(message)}/>{marker}', 1)


def _error(message: str) -> Response:
    # SCS 1.03: errors are VOTables with HTTP 200, which clients read.
    return Response(scs_error(message), media_type=VOTABLE_MIME)


def _search(
    state: ServiceState, *, mission: str, table: str, ra: float, dec: float, sr: float
) -> tuple[ConeResult, list[FieldSpec], set[str] | None]:
    limit = state.settings.query_maxrec
    radius = max(sr, 1e-12)  # SR=0 asks for the metadata: a vanishing cone has no rows
    if table == OBSCORE:
        result = cone_search_observations(
            state.archive,
            mission=mission,
            ra=ra,
            dec=dec,
            radius=radius,
            limit=limit,
            now=state.now(),
        )
        fields = [OBSCORE_FIELDS.get(n, DISTANCE) for n in result.columns]
        return result, fields, {"obs_id", "s_ra", "s_dec", "access_url"}
    result = cone_search(
        state.archive,
        mission=mission,
        table=table,
        ra=ra,
        dec=dec,
        radius=radius,
        limit=limit,
        now=state.now(),
    )
    definition = next(
        t.definition
        for t in state.archive.releases.tables(result.release_key)
        if t.table_name == result.table
    )
    keep = {(n or "").lower() for n in (definition.primary_key, definition.ra, definition.dec)}
    return result, catalogue_fields(definition, result.columns), keep


@router.get("/{mission}/{table}")
async def cone(request: Request, mission: str, table: str) -> Response:
    state: ServiceState = request.app.state.service
    params = {k.upper(): v for k, v in request.query_params.items()}
    try:
        ra, dec, sr, verb = cone_parameters(params)
        result, fields, keep = await run_in_threadpool(
            lambda: _search(state, mission=mission, table=table, ra=ra, dec=dec, sr=sr)
        )
    except (ConeRequestError, NotFoundError, ValueError) as exc:
        return _error(str(exc))
    base = str(request.base_url).rstrip("/")
    index = chosen_columns(result, keep, verb)
    rows: Sequence[Sequence[Any]] = [[row[i] for i in index] for row in result.rows]
    if sr == 0:
        rows = []
    shown = [fields[i] for i in index]
    rows = public_urls(state, base, shown, rows)
    body = "".join(
        results_document(
            shown,
            rows,
            overflow=result.overflow,
            descriptors=[ServiceDescriptor(f"{base}/datalink/links", DID_COLUMN)],
            table_name=result.table,
        )
    )
    return Response(body, media_type=VOTABLE_MIME)
