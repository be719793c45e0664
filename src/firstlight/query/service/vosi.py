"""VOSI and DALI documents of the TAP service: availability, capabilities,
tables (VODataService 1.1 tableset) and the DALI examples page.

Pure: limits, URLs and table descriptions in, XML out. The tables come from
query.public.public_tables, so what /tap/tables lists is exactly what a
query may reach now (embargoed catalogues are absent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Protocol

from firstlight.query.service.formats import FORMATS, VOTABLE_TD, OutputFormat
from firstlight.query.service.uws import iso
from firstlight.query.service.votable import ColumnLike, attr, text

XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
VS = 'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
VR = 'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"'
TR = 'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"'
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'

GEOMETRY_FUNCTIONS = (
    "POINT", "CIRCLE", "BOX", "POLYGON", "CONTAINS", "INTERSECTS", "DISTANCE", "CENTROID",
)  # fmt: skip


class TableColumn(ColumnLike, Protocol):
    @property
    def principal(self) -> bool: ...
    @property
    def indexed(self) -> bool: ...
    @property
    def std(self) -> bool: ...


class TableKey(Protocol):
    @property
    def target_table(self) -> str: ...
    @property
    def columns(self) -> Sequence[tuple[str, str]]: ...  # (from_column, target_column)
    @property
    def description(self) -> str | None: ...


class TableLike(Protocol):
    @property
    def schema_name(self) -> str: ...
    @property
    def table_name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def table_type(self) -> str: ...
    @property
    def columns(self) -> Sequence[TableColumn]: ...
    @property
    def keys(self) -> Sequence[TableKey]: ...


@dataclass(frozen=True)
class Limits:
    default_maxrec: int
    maxrec_limit: int
    sync_seconds: int
    job_seconds: int
    retention_seconds: int


def availability_xml(available: bool, note: str, up_since: datetime | None) -> str:
    since = f"<vosi:upSince>{iso(up_since)}</vosi:upSince>" if up_since else ""
    return (
        f"{XML_HEAD}<vosi:availability "
        'xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
        f"<vosi:available>{'true' if available else 'false'}</vosi:available>"
        f"{since}<vosi:note>{text(note)}</vosi:note></vosi:availability>"
    )


def _vosi(standard: str, url: str) -> str:
    return (
        f'<capability standardID="ivo://ivoa.net/std/VOSI#{standard}">'
        f'<interface xsi:type="vs:ParamHTTP"><accessURL use="full">{text(url)}</accessURL>'
        "</interface></capability>"
    )


def _mime(fmt: OutputFormat) -> str:
    """The MIME type a client asks for the format by (VOTable's names its serialization)."""
    if fmt is VOTABLE_TD:
        return f"{fmt.mime};serialization=TABLEDATA"
    return f"{fmt.mime};serialization=BINARY2" if fmt.votable else fmt.mime


def capabilities_xml(tap_url: str, limits: Limits) -> str:
    """The TAP capability (TAPRegExt 1.0) and the VOSI and DALI examples endpoints."""
    geometry = "".join(f"<feature><form>{f}</form></feature>" for f in GEOMETRY_FUNCTIONS)
    formats = "".join(
        f"<outputFormat{f' ivo-id={attr(f.ivo_id)}' if f.ivo_id else ''}>"
        f"<mime>{text(_mime(f))}</mime><alias>{text(f.name)}</alias></outputFormat>"
        for f in FORMATS
    )
    return (
        f"{XML_HEAD}<vosi:capabilities "
        'xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        f"{XSI} {VS} {VR} {TR}>"
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{text(tap_url)}</accessURL></interface>'
        '<dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>'
        "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        "<description>ADQL 2.1, parsed and re-rendered for the archive's database</description>"
        '<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">'
        f"{geometry}</languageFeatures></language>"
        f"{formats}"
        f"<retentionPeriod><default>{limits.retention_seconds}</default>"
        f"<hard>{limits.retention_seconds}</hard></retentionPeriod>"
        f"<executionDuration><default>{limits.job_seconds}</default>"
        f"<hard>{limits.job_seconds}</hard></executionDuration>"
        f'<outputLimit><default unit="row">{limits.default_maxrec}</default>'
        f'<hard unit="row">{limits.maxrec_limit}</hard></outputLimit>'
        "</capability>"
        + _vosi("capabilities", f"{tap_url}/capabilities")
        + _vosi("availability", f"{tap_url}/availability")
        + _vosi("tables-1.1", f"{tap_url}/tables")
        + '<capability standardID="ivo://ivoa.net/std/DALI#examples">'
        '<interface xsi:type="vr:WebBrowser">'
        f'<accessURL use="full">{text(tap_url)}/examples</accessURL></interface></capability>'
        "</vosi:capabilities>"
    )


def _column_xml(col: TableColumn) -> str:
    std = ' std="true"' if col.std else ""
    parts = [f"<column{std}><name>{text(col.name)}</name>"]
    for tag, value in (
        ("description", col.description),
        ("unit", col.unit),
        ("ucd", col.ucd),
        ("utype", col.utype),
    ):
        if value:
            parts.append(f"<{tag}>{text(value)}</{tag}>")
    arraysize = col.arraysize or ("*" if col.datatype in ("char", "unicodeChar") else None)
    extra = f" arraysize={attr(arraysize)}" if arraysize else ""
    if col.xtype:
        extra += f" extendedType={attr(col.xtype)}"
    parts.append(f'<dataType xsi:type="vs:VOTableType"{extra}>{text(col.datatype)}</dataType>')
    if col.indexed:
        parts.append("<flag>indexed</flag>")
    if col.principal:
        parts.append("<flag>principal</flag>")
    parts.append("</column>")
    return "".join(parts)


def _foreign_key_xml(key: TableKey) -> str:
    pairs = "".join(
        f"<fkColumn><fromColumn>{text(f)}</fromColumn><targetColumn>{text(t)}</targetColumn>"
        "</fkColumn>"
        for f, t in key.columns
    )
    about = f"<description>{text(key.description)}</description>" if key.description else ""
    target = f"<targetTable>{text(key.target_table)}</targetTable>"
    return f"<foreignKey>{target}{pairs}{about}</foreignKey>"


def table_xml(table: TableLike, *, detail: bool = True, root: bool = False) -> str:
    kind = "view" if table.table_type == "view" else "output"
    head = (
        f'{XML_HEAD}<vosi:table xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {XSI} {VS} '
        f'type="{kind}">'
        if root
        else f'<table type="{kind}">'
    )
    body = f"<name>{text(table.table_name)}</name>"
    if table.description:
        body += f"<description>{text(table.description)}</description>"
    if detail:
        body += "".join(_column_xml(c) for c in table.columns)
        body += "".join(_foreign_key_xml(k) for k in table.keys)  # as TAP_SCHEMA.keys
    return head + body + ("</vosi:table>" if root else "</table>")


def tableset_xml(tables: Iterable[TableLike], *, detail: bool = True) -> str:
    ordered = sorted(tables, key=lambda t: (t.schema_name, t.table_name))
    schemas = "".join(
        f"<schema><name>{text(schema)}</name>"
        + "".join(table_xml(t, detail=detail) for t in group)
        + "</schema>"
        for schema, group in groupby(ordered, key=lambda t: t.schema_name)
    )
    return (
        f'{XML_HEAD}<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" '
        f"{XSI} {VS}>{schemas}</vosi:tableset>"
    )


@dataclass(frozen=True)
class Example:
    key: str
    name: str
    explanation: str
    query: str


EXAMPLES = (
    Example(
        "obscore-products",
        "What the archive holds",
        "The first observations of ivoa.obscore, with the URL that downloads each product.",
        "SELECT TOP 10 obs_id, dataproduct_type, target_name, s_ra, s_dec, access_url\n"
        "FROM ivoa.obscore",
    ),
    Example(
        "obscore-cone",
        "Observations around a position",
        "Observations whose position lies within one degree of (RA, Dec) = (150, 2).",
        "SELECT obs_id, obs_publisher_did, s_ra, s_dec\nFROM ivoa.obscore\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 150.0, 2.0, 1.0))",
    ),
    Example(
        "tables",
        "The tables one can query",
        "Every table of every public release, from TAP_SCHEMA.",
        "SELECT schema_name, table_name, description\nFROM tap_schema.tables",
    ),
)


def examples_xhtml(examples: Sequence[Example] = EXAMPLES) -> str:
    """DALI examples: XHTML with RDFa; each example's name and query marked up."""
    body = "".join(
        f'<div typeof="example" id={attr(e.key)} resource={attr("#" + e.key)}>'
        f'<h2 property="name">{text(e.name)}</h2><p>{text(e.explanation)}</p>'
        f'<pre class="dachs-ex-tapquery" property="query">{text(e.query)}</pre></div>'
        for e in examples
    )
    return (
        f'{XML_HEAD}<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" '
        'vocab="http://www.ivoa.net/rdf/examples#">'
        "<head><title>firstlight TAP examples</title></head>"
        f"<body><h1>Examples of queries</h1>{body}</body></html>\n"
    )
