"""What is public right now, as TAP sees it: the tables a scientist may query.

Decided at query time by ``storage.visibility`` (the one reader of what is
public at an instant), inside the caller's transaction (so a query sees one
snapshot and an embargo lifts without a rebuild):

- ``<mission>.<table>``: each catalogue of the mission's current release;
- ``<release_key>.<table>`` (e.g. ``demo_dr1_v1.sources``): each catalogue of
  every promoted release, the current one included, by its release key (the
  PostgreSQL schema of that release);
- ``ivoa.obscore``: ObsCore 1.1 rows of every promoted release (current or
  not: ``obs_publisher_did`` names the release) whose ``obs_release_date``
  has passed;
- ``tap_schema.schemas/tables/columns/keys/key_columns``: exactly the above,
  and TAP_SCHEMA's own foreign keys (TAP 1.1 section 4).

A catalogue whose ``release_date`` is still ahead is absent everywhere; a
staging release is never listed. Each table carries a ``source`` that says
where its rows are (the translator in ``query.adql`` reads it); it never
names anything that is not public.

A column is named as ADQL spells it: a name that is an ADQL reserved word (or
not a regular identifier) is delimited, ``"size"`` (TAP 1.1 section 4.3), in
TAP_SCHEMA and /tables alike; ``PublicColumn.plain_name`` is the name itself,
as the database and result tables hold it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from firstlight.domain.manifest import DataType, TableDefinition
from firstlight.storage.archive import Archive
from firstlight.storage.catalogues import HEALPIX_COLUMN
from firstlight.storage.visibility import ObservationRule, PublicAt

IVOA = "ivoa"
TAP_SCHEMA = "tap_schema"

# ADQL 2.1 section 2.1.2: SQL-92's reserved words and ADQL's own (STILTS
# taplint's list too); a column named like one must be delimited in ADQL.
_RESERVED_WORDS = """
    ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION
    AVG BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR
    CHARACTER CHARACTER_LENGTH CHAR_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN
    COMMIT CONNECT CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT
    CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR
    DATE DAY DEALLOCATE DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE DESC DESCRIBE
    DESCRIPTOR DIAGNOSTICS DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END END-EXEC ESCAPE
    EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH FIRST FLOAT FOR
    FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY IMMEDIATE
    IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL
    INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH MAX
    MIN MINUTE MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC
    OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL
    POSITION PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ
    REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND
    SECTION SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME SPACE SQL SQLCODE SQLERROR
    SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP TIMEZONE_HOUR
    TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE
    UNKNOWN UPDATE UPPER USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER
    WHERE WITH WORK WRITE YEAR ZONE
    ABS ACOS ASIN ATAN ATAN2 CEILING COS DEGREES EXP FLOOR LOG LOG10 MOD PI POWER RADIANS
    RAND ROUND SIN SQRT TAN TOP TRUNCATE AREA BOX CENTROID CIRCLE CONTAINS COORD1 COORD2
    COORDSYS DISTANCE INTERSECTS POINT POLYGON REGION
"""
ADQL_RESERVED = frozenset(_RESERVED_WORDS.split())
_REGULAR_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def adql_name(name: str) -> str:
    """``name`` as ADQL spells it: delimited (``"size"``) where it must be."""
    if _REGULAR_IDENTIFIER.match(name) and name.upper() not in ADQL_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def plain_name(name: str) -> str:
    """The name an ADQL name stands for: ``"size"`` -> ``size``."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


@dataclass(frozen=True)
class PublicColumn:
    name: str  # as ADQL spells it (adql_name); a result column's is plain
    datatype: str  # VOTable: boolean short int long float double char
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    principal: bool = False
    indexed: bool = False
    std: bool = False

    @property
    def plain_name(self) -> str:
        """The name itself: the database's column, a parsed identifier's text."""
        return plain_name(self.name)


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key as TAP_SCHEMA.keys/key_columns list it (ADQL names)."""

    key_id: str
    from_table: str
    target_table: str
    columns: tuple[tuple[str, str], ...]  # (from_column, target_column)
    description: str | None = None


@dataclass(frozen=True)
class CatalogueSource:
    """Rows of one release's catalogue, in its physical table."""

    release_key: str
    physical_schema: str | None
    physical_name: str
    ra: str | None  # the columns of the position (HEALPix/q3c indexed)
    dec: str | None
    healpix: str | None  # the HEALPix column, on backends that have one


@dataclass(frozen=True)
class ObscoreSource:
    """ObsCore rows of these (promoted) releases, released by ``now``."""

    release_keys: tuple[str, ...]
    now: datetime
    # s_region also as pgsphere values, GiST-indexed (PostgreSQL with pg_sphere: 0006).
    sphere_regions: bool = False


@dataclass(frozen=True)
class ValuesSource:
    """Rows computed here (TAP_SCHEMA), in the table's column order."""

    rows: tuple[tuple[Any, ...], ...]


Source = CatalogueSource | ObscoreSource | ValuesSource


@dataclass(frozen=True)
class PublicTable:
    schema_name: str
    table_name: str  # qualified as ADQL writes it: "demo.sources"
    description: str | None
    table_type: str  # "table" | "view"
    columns: tuple[PublicColumn, ...]
    keys: tuple[ForeignKey, ...] = ()  # the ones from this table
    source: Source | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        """The unqualified name: "sources"."""
        return self.table_name.split(".", 1)[1]

    def column(self, name: str) -> PublicColumn:
        """The column whose plain name (a parsed identifier's text) is ``name``."""
        for col in self.columns:
            if col.plain_name == name:
                return col
        raise KeyError(name)


VOTABLE_TYPES: dict[DataType, str] = {
    DataType.BOOLEAN: "boolean",
    DataType.INT16: "short",
    DataType.INT32: "int",
    DataType.INT64: "long",
    DataType.FLOAT32: "float",
    DataType.FLOAT64: "double",
    DataType.STRING: "char",
}


def _c(  # noqa: PLR0917  (a table of columns reads best positionally)
    name: str,
    datatype: str,
    ucd: str | None,
    utype: str | None,
    description: str,
    unit: str | None = None,
    *,
    xtype: str | None = None,
    indexed: bool = False,
    std: bool = True,
) -> PublicColumn:
    return PublicColumn(
        name=adql_name(name),
        datatype=datatype,
        arraysize="*" if datatype == "char" else None,
        xtype=xtype,
        unit=unit,
        ucd=ucd,
        utype=utype,
        description=description,
        principal=True,
        indexed=indexed,
        std=std,
    )


_OC = "obscore:"
# ObsCore 1.1 (table 5 and appendix B): name, type, UCD, utype, description, unit.
OBSCORE_COLUMNS: tuple[PublicColumn, ...] = (
    _c("dataproduct_type", "char", "meta.code.class", _OC + "ObsDataset.dataProductType",
       "Data product type (image, spectrum, timeseries...)"),
    _c("calib_level", "int", "meta.code;obs.calib", _OC + "ObsDataset.calibLevel",
       "Calibration level (0 raw to 4 analysis product)"),
    _c("obs_collection", "char", "meta.id", _OC + "DataID.Collection",
       "Name of the data collection (the mission)"),
    _c("obs_id", "char", "meta.id", _OC + "DataID.observationID",
       "Observation identifier", indexed=True),
    _c("obs_publisher_did", "char", "meta.ref.ivoid", _OC + "Curation.PublisherDID",
       "Dataset identifier given by the publisher"),
    _c("access_url", "char", "meta.ref.url", _OC + "Access.Reference", "URL of the data file"),
    _c("access_format", "char", "meta.code.mime", _OC + "Access.Format",
       "Content format (MIME type) of the data file"),
    _c("access_estsize", "long", "phys.size;meta.file", _OC + "Access.Size",
       "Estimated size of the data file", "kbyte"),
    _c("target_name", "char", "meta.id;src", _OC + "Target.Name", "Astronomical target name"),
    _c("s_ra", "double", "pos.eq.ra", _OC + "Char.SpatialAxis.Coverage.Location.Coord."
       "Position2D.Value2.C1", "Central right ascension, ICRS", "deg", indexed=True),
    _c("s_dec", "double", "pos.eq.dec", _OC + "Char.SpatialAxis.Coverage.Location.Coord."
       "Position2D.Value2.C2", "Central declination, ICRS", "deg", indexed=True),
    _c("s_fov", "double", "phys.angSize;instr.fov", _OC + "Char.SpatialAxis.Coverage.Bounds."
       "Extent.diameter", "Diameter of the covered region", "deg"),
    _c("s_region", "char", "pos.outline;obs.field", _OC + "Char.SpatialAxis.Coverage.Support."
       "Area", "Sky region covered (STC-S)", xtype="adql:REGION"),
    _c("s_resolution", "double", "pos.angResolution", _OC + "Char.SpatialAxis.Resolution."
       "Refval.value", "Spatial resolution (FWHM)", "arcsec"),
    _c("s_xel1", "long", "meta.number", _OC + "Char.SpatialAxis.numBins1",
       "Number of elements along the first spatial axis"),
    _c("s_xel2", "long", "meta.number", _OC + "Char.SpatialAxis.numBins2",
       "Number of elements along the second spatial axis"),
    _c("t_min", "double", "time.start;obs.exposure", _OC + "Char.TimeAxis.Coverage.Bounds."
       "Limits.StartTime", "Start time (MJD, UTC)", "d"),
    _c("t_max", "double", "time.end;obs.exposure", _OC + "Char.TimeAxis.Coverage.Bounds."
       "Limits.StopTime", "Stop time (MJD, UTC)", "d"),
    _c("t_exptime", "double", "time.duration;obs.exposure", _OC + "Char.TimeAxis.Coverage."
       "Support.Extent", "Total exposure time", "s"),
    _c("t_resolution", "double", "time.resolution", _OC + "Char.TimeAxis.Resolution.Refval."
       "value", "Temporal resolution", "s"),
    _c("t_xel", "long", "meta.number", _OC + "Char.TimeAxis.numBins",
       "Number of elements along the time axis"),
    _c("em_min", "double", "em.wl;stat.min", _OC + "Char.SpectralAxis.Coverage.Bounds.Limits."
       "LoLimit", "Minimum wavelength", "m"),
    _c("em_max", "double", "em.wl;stat.max", _OC + "Char.SpectralAxis.Coverage.Bounds.Limits."
       "HiLimit", "Maximum wavelength", "m"),
    _c("em_res_power", "double", "spect.resolution", _OC + "Char.SpectralAxis.Resolution."
       "ResolPower.refVal", "Spectral resolving power"),
    _c("em_xel", "long", "meta.number", _OC + "Char.SpectralAxis.numBins",
       "Number of elements along the spectral axis"),
    _c("o_ucd", "char", "meta.ucd", _OC + "Char.ObservableAxis.ucd",
       "UCD of the observable (e.g. phot.flux.density)"),
    _c("pol_states", "char", "meta.code;phys.polarization", _OC + "Char.PolarizationAxis."
       "stateList", "Polarization states present"),
    _c("pol_xel", "long", "meta.number", _OC + "Char.PolarizationAxis.numBins",
       "Number of polarization samples"),
    _c("facility_name", "char", "meta.id;instr.tel", _OC + "Provenance.ObsConfig.Facility.name",
       "Name of the facility (telescope, spacecraft)"),
    _c("instrument_name", "char", "meta.id;instr", _OC + "Provenance.ObsConfig.Instrument.name",
       "Name of the instrument"),
    _c("obs_release_date", "char", "time.release", _OC + "Curation.releaseDate",
       "Date the data became (or becomes) public", xtype="timestamp"),
)  # fmt: skip

# Columns of ``observations`` behind ObsCore's; the others are NULL.
OBSCORE_STORED = frozenset(
    [
        "dataproduct_type",
        "calib_level",
        "obs_collection",
        "obs_id",
        "obs_publisher_did",
        "access_url",
        "access_format",
        "access_estsize",
        "target_name",
        "s_ra",
        "s_dec",
        "s_fov",
        "s_region",
        "t_min",
        "t_max",
        "t_exptime",
        "em_min",
        "em_max",
        "facility_name",
        "instrument_name",
        "obs_release_date",
    ]
)

_TAP_SCHEMA_COLUMNS: dict[str, tuple[PublicColumn, ...]] = {
    "schemas": (
        _c("schema_name", "char", "meta.id;meta.main", None, "Schema name"),
        _c("utype", "char", "meta.utype", None, "Utype of the schema"),
        _c("description", "char", "meta.note", None, "Description of the schema"),
        _c("schema_index", "int", "meta.number", None, "Suggested order of schemas"),
    ),
    "tables": (
        _c("schema_name", "char", "meta.id", None, "Schema the table belongs to"),
        _c("table_name", "char", "meta.id;meta.main", None, "Qualified table name"),
        _c("table_type", "char", "meta.code", None, "table or view"),
        _c("utype", "char", "meta.utype", None, "Utype of the table"),
        _c("description", "char", "meta.note", None, "Description of the table"),
        _c("table_index", "int", "meta.number", None, "Suggested order of tables"),
    ),
    "columns": (
        _c("table_name", "char", "meta.id", None, "Qualified table name"),
        _c("column_name", "char", "meta.id;meta.main", None, "Column name"),
        _c("datatype", "char", "meta.code", None, "VOTable datatype"),
        _c("arraysize", "char", "meta.code", None, "VOTable arraysize"),
        _c("xtype", "char", "meta.code", None, "VOTable xtype"),
        _c("size", "int", "meta.number", None, "Deprecated: arraysize as an integer"),
        _c("description", "char", "meta.note", None, "Description of the column"),
        _c("utype", "char", "meta.utype", None, "Utype of the column"),
        _c("unit", "char", "meta.unit", None, "Unit (VOUnit)"),
        _c("ucd", "char", "meta.ucd", None, "UCD of the column"),
        _c("indexed", "int", "meta.code", None, "1 if the column is indexed"),
        _c("principal", "int", "meta.code", None, "1 if the column is principal"),
        _c("std", "int", "meta.code", None, "1 if the column is defined by a standard"),
        _c("column_index", "int", "meta.number", None, "Suggested order of columns"),
    ),
    "keys": (
        _c("key_id", "char", "meta.id;meta.main", None, "Key identifier"),
        _c("from_table", "char", "meta.id", None, "Table with the foreign key"),
        _c("target_table", "char", "meta.id", None, "Table with the primary key"),
        _c("utype", "char", "meta.utype", None, "Utype of the key"),
        _c("description", "char", "meta.note", None, "Description of the key"),
    ),
    "key_columns": (
        _c("key_id", "char", "meta.id", None, "Key identifier"),
        _c("from_column", "char", "meta.id", None, "Column in the from table"),
        _c("target_column", "char", "meta.id", None, "Column in the target table"),
    ),
}


def _tap_schema_key(from_name: str, target_name: str, column: str) -> ForeignKey:
    from_table, target_table = f"{TAP_SCHEMA}.{from_name}", f"{TAP_SCHEMA}.{target_name}"
    return ForeignKey(
        key_id=f"{from_table}.{column}",
        from_table=from_table,
        target_table=target_table,
        columns=((column, column),),
        description=f"The {target_table} row of each {from_table} row",
    )


# TAP 1.1 section 4: the foreign keys between TAP_SCHEMA's own tables, by from table.
_TAP_SCHEMA_KEYS: dict[str, tuple[ForeignKey, ...]] = {
    "tables": (_tap_schema_key("tables", "schemas", "schema_name"),),
    "columns": (_tap_schema_key("columns", "tables", "table_name"),),
    "keys": (
        ForeignKey(
            key_id=f"{TAP_SCHEMA}.keys.from_table",
            from_table=f"{TAP_SCHEMA}.keys",
            target_table=f"{TAP_SCHEMA}.tables",
            columns=(("from_table", "table_name"),),
            description="The table holding each key's columns",
        ),
        ForeignKey(
            key_id=f"{TAP_SCHEMA}.keys.target_table",
            from_table=f"{TAP_SCHEMA}.keys",
            target_table=f"{TAP_SCHEMA}.tables",
            columns=(("target_table", "table_name"),),
            description="The table each key points to",
        ),
    ),
    "key_columns": (_tap_schema_key("key_columns", "keys", "key_id"),),
}


def public_tables(conn: Connection, archive: Archive, *, now: datetime) -> list[PublicTable]:
    """Every table a scientist may query now, read inside the caller's transaction."""
    # Imported here: query.dialects imports this module (through query.adql).
    from firstlight.query.dialects import query_dialect

    dialect = query_dialect(archive.engine.dialect.name)
    healpix = dialect.healpix
    public = PublicAt(now)
    promoted = public.releases(conn)
    current = {r.release_key: r.mission for r in promoted if r.current}
    by_release: dict[str, list[Any]] = {}
    for row in public.tables(conn):
        by_release.setdefault(str(row.release_key), []).append(row)
    # Every promoted release's observations (the releases are read already: no second read).
    rule = ObservationRule(tuple(sorted(r.release_key for r in promoted)), now)

    tables: list[PublicTable] = [
        PublicTable(
            schema_name=IVOA,
            table_name=f"{IVOA}.obscore",
            description="ObsCore 1.1: one row per public observation of every public release",
            table_type="view",
            columns=OBSCORE_COLUMNS,
            source=ObscoreSource(rule.release_keys, rule.now, dialect.sphere_regions(conn)),
        )
    ]
    for rel in promoted:
        key = str(rel.release_key)
        schemas = [key] + ([str(rel.mission)] if current.get(key) == rel.mission else [])
        for row in by_release.get(key, []):
            definition = TableDefinition.model_validate(row.definition)
            source = CatalogueSource(
                release_key=key,
                physical_schema=row.physical_schema,
                physical_name=row.physical_name,
                ra=definition.ra.lower() if definition.ra else None,
                dec=definition.dec.lower() if definition.dec else None,
                healpix=HEALPIX_COLUMN if healpix and definition.ra else None,
            )
            for schema in schemas:
                what = "current release" if schema == rel.mission else "release"
                tables.append(
                    PublicTable(
                        schema_name=schema,
                        table_name=f"{schema}.{row.table_name}",
                        description=(
                            f"{definition.description or row.table_name} "
                            f"({rel.mission} {what} {rel.name} v{rel.version})"
                        ),
                        table_type="table",
                        columns=catalogue_columns(definition),
                        source=source,
                    )
                )
    tables.sort(key=lambda t: (t.schema_name != IVOA, t.schema_name, t.table_name))
    return tables + tap_schema_tables(tables)


_CACHE_LOCK = threading.Lock()
_CACHE: dict[str, tuple[tuple[Any, ...], list[PublicTable]]] = {}


def public_tables_now(conn: Connection, archive: Archive, *, now: datetime) -> list[PublicTable]:
    """``public_tables``, remembered per database while its fingerprint stays the same.

    Building the list (three reads, TAP_SCHEMA's rows) cost a small query more than its
    own SQL; the fingerprint is one read in the same snapshot, so the answer is the one
    ``public_tables`` would give now. Only ObsCore's instant is renewed on a hit.
    """
    key = str(conn.engine.url)
    mark = PublicAt(now).fingerprint(conn)
    with _CACHE_LOCK:
        found = _CACHE.get(key)
    if found is not None and found[0] == mark:
        return [_at(table, now) for table in found[1]]
    tables = public_tables(conn, archive, now=now)
    with _CACHE_LOCK:
        _CACHE[key] = (mark, tables)
    return tables


def _at(table: PublicTable, now: datetime) -> PublicTable:
    source = table.source
    if isinstance(source, ObscoreSource):
        return replace(table, source=replace(source, now=now))
    return table


def catalogue_columns(definition: TableDefinition) -> tuple[PublicColumn, ...]:
    roles = {
        (r or "").lower() for r in (definition.primary_key, definition.ra, definition.dec) if r
    }
    return tuple(
        PublicColumn(
            name=adql_name(col.name.lower()),
            datatype=VOTABLE_TYPES[col.datatype],
            arraysize="*" if col.datatype is DataType.STRING else None,
            unit=col.unit,
            ucd=col.ucd,
            description=col.description,
            principal=col.name.lower() in roles,
            indexed=col.name.lower() in roles,
        )
        for col in definition.columns
    )


def tap_schema_tables(tables: Sequence[PublicTable]) -> list[PublicTable]:
    """The TAP_SCHEMA tables describing ``tables`` and themselves."""
    names = list(_TAP_SCHEMA_COLUMNS)
    own = [
        PublicTable(
            schema_name=TAP_SCHEMA,
            table_name=f"{TAP_SCHEMA}.{name}",
            description=f"TAP_SCHEMA {name}: the tables and columns this service offers",
            table_type="table",
            columns=_TAP_SCHEMA_COLUMNS[name],
            keys=_TAP_SCHEMA_KEYS.get(name, ()),
        )
        for name in names
    ]
    described = [*tables, *own]
    keys = [k for t in described for k in t.keys]
    schema_names = list(dict.fromkeys(t.schema_name for t in described))
    rows: dict[str, list[tuple[Any, ...]]] = {
        "schemas": [(s, None, _schema_description(s), i) for i, s in enumerate(schema_names)],
        "tables": [
            (t.schema_name, t.table_name, t.table_type, None, t.description, i)
            for i, t in enumerate(described)
        ],
        "columns": [
            (
                t.table_name,
                c.name,
                c.datatype,
                c.arraysize,
                c.xtype,
                None,
                c.description,
                c.utype,
                c.unit,
                c.ucd,
                int(c.indexed),
                int(c.principal),
                int(c.std),
                i,
            )
            for t in described
            for i, c in enumerate(t.columns)
        ],
        "keys": [(k.key_id, k.from_table, k.target_table, None, k.description) for k in keys],
        "key_columns": [(k.key_id, f, t) for k in keys for f, t in k.columns],
    }
    return [
        PublicTable(
            schema_name=t.schema_name,
            table_name=t.table_name,
            description=t.description,
            table_type=t.table_type,
            columns=t.columns,
            keys=t.keys,
            source=ValuesSource(tuple(rows[t.name])),
        )
        for t in own
    ]


def _schema_description(schema: str) -> str:
    if schema == IVOA:
        return "IVOA standard tables (ObsCore)"
    if schema == TAP_SCHEMA:
        return "Description of the tables this service offers"
    return f"Catalogues of {schema}"
