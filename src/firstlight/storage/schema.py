"""The archive's own tables, defined once (SQLAlchemy Core).

- ``deliveries`` and ``stage_runs``: the ledger, one row per delivery with its
  one terminal state, and the timing of every step of every attempt.
- ``releases`` and ``current_releases``: immutable releases and the pointer
  whose switch is the promotion.
- ``products``, ``observations`` (ObsCore-shaped) and ``release_tables``
  (catalogues, whose rows live in one physical table per release).
- ``findings``: every finding of verification and validation, per attempt.
- ``observation_sources``: where each ObsCore column of each product came from.

Migrations (``storage/migrations``) are written from these definitions; a
test fails when the two drift apart.

Catalogue tables themselves are built per release by ``storage.catalogues``.

Oracle (see docs/oracle.md): times are stored as plain ``TIMESTAMP`` holding
UTC, so no value depends on a session time zone; and every word Oracle
documents as reserved is quoted, not only those SQLAlchemy's dialect knows
(``findings.file`` would otherwise be invalid there).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    TIMESTAMP,
    BigInteger,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.oracle.base import OracleIdentifierPreparer
from sqlalchemy.types import TypeDecorator, TypeEngine

# Oracle SQL reserved words (SQL Language Reference, "Oracle SQL Reserved Words")
# that SQLAlchemy's Oracle dialect does not quote. Unquoted they are invalid
# identifiers (ORA-00904); SQLAlchemy quotes every name in this set.
_UNQUOTED_RESERVED = (
    "access add audit column file immediate increment initial maxextents mlslabel modify "
    "noaudit offline online privileges row rowid rownum rows session successful sysdate "
    "validate whenever"
)
ORACLE_RESERVED_WORDS_UNQUOTED_BY_SQLALCHEMY = frozenset(_UNQUOTED_RESERVED.split())
OracleIdentifierPreparer.reserved_words.update(ORACLE_RESERVED_WORDS_UNQUOTED_BY_SQLALCHEMY)

# Where UTCDateTime columns hold naive UTC. Oracle: python-oracledb binds a
# datetime without its zone, which a TIMESTAMP WITH TIME ZONE column would then
# read in the session's zone; a plain TIMESTAMP holding UTC is exact everywhere.
_NAIVE_UTC_DIALECTS = frozenset({"sqlite", "oracle"})


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware in Python, UTC in the database, on every backend."""

    impl = TIMESTAMP(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "oracle":
            return dialect.type_descriptor(TIMESTAMP(timezone=False))
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name in _NAIVE_UTC_DIALECTS else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("mission", String(32), nullable=False),
    Column("delivery_id", String(160), nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("release_key", String(100), nullable=True),
    # processing -> released | quarantined | rejected
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("location", String(1024), nullable=False),
    Column("quarantine_path", String(1024), nullable=True),
    Column("report", JSON, nullable=True),
    # Where the latest validation's Data Docs (HTML) were published for this delivery.
    Column("data_docs", String(1024), nullable=True),
    Column("attempts", Integer, nullable=False, default=1),
    # The run working on it: its token and when it last claimed (see Ledger.admit).
    Column("claim_token", String(64), nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("arrived_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # One row per distinct delivery content; the same id with other bytes is
    # another row, which admission rejects once the first was released.
    UniqueConstraint("mission", "delivery_id", "manifest_sha256", name="uq_deliveries_identity"),
)

stage_runs = Table(
    "stage_runs",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("delivery", Integer, ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("stage", String(16), nullable=False),  # domain.ledger.Stage
    Column("outcome", String(16), nullable=False),  # ok | failed | skipped
    Column("detail", Text, nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
)

releases = Table(
    "releases",
    metadata,
    Column("release_key", String(100), primary_key=True),
    Column("mission", String(32), nullable=False, index=True),
    Column("name", String(32), nullable=False),
    Column("version", String(32), nullable=False),
    Column("delivery", Integer, ForeignKey("deliveries.id"), nullable=False),
    # staging -> promoted (current or, after a later promotion, superseded)
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("indexed_at", UTCDateTime, nullable=True),
    Column("promoted_at", UTCDateTime, nullable=True),
    UniqueConstraint("mission", "name", "version", name="uq_releases_name"),
)

current_releases = Table(
    "current_releases",
    metadata,
    Column("mission", String(32), primary_key=True),
    Column("release_key", String(100), ForeignKey("releases.release_key"), nullable=False),
    Column("previous_release_key", String(100), ForeignKey("releases.release_key")),
    Column("switched_at", UTCDateTime, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("release_key", String(100), ForeignKey("releases.release_key"), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("product_type", String(16), nullable=False),
    Column("format", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("release_date", UTCDateTime, nullable=True),
    Column("storage_key", String(1200), nullable=False),
    Column("stored_at", UTCDateTime, nullable=True),
    UniqueConstraint("release_key", "path", name="uq_products_path"),
)

observations = Table(
    "observations",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("release_key", String(100), ForeignKey("releases.release_key"), nullable=False),
    Column("product", Integer, ForeignKey("products.id"), nullable=False),
    Column("obs_collection", String(32), nullable=False),
    Column("obs_id", String(200), nullable=False),
    Column("obs_publisher_did", String(1400), nullable=False),
    Column("dataproduct_type", String(16), nullable=False),
    Column("calib_level", Integer, nullable=False),
    Column("target_name", String(200)),
    Column("s_ra", Float),
    Column("s_dec", Float),
    Column("s_fov", Float),
    Column("s_region", Text),
    Column("t_min", Float),
    Column("t_max", Float),
    Column("t_exptime", Float),
    Column("em_min", Float),
    Column("em_max", Float),
    Column("facility_name", String(100)),
    Column("instrument_name", String(100)),
    Column("access_url", String(2000)),
    Column("access_format", String(64)),
    Column("access_estsize", BigInteger),
    Column("obs_release_date", UTCDateTime),
    Column("healpix", BigInteger),
    UniqueConstraint("release_key", "obs_id", name="uq_observations_obs_id"),
    Index("ix_observations_release_healpix", "release_key", "healpix"),
)

release_tables = Table(
    "release_tables",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("release_key", String(100), ForeignKey("releases.release_key"), nullable=False),
    Column("table_name", String(32), nullable=False),
    # Where the rows live: a schema of the release's own (PostgreSQL) or a
    # prefixed table name (SQLite, Oracle); see storage.backends.
    Column("physical_schema", String(63), nullable=True),
    Column("physical_name", String(128), nullable=False),
    Column("product", Integer, ForeignKey("products.id"), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("row_count", BigInteger, nullable=True),
    Column("release_date", UTCDateTime, nullable=True),
    Column("indexed_at", UTCDateTime, nullable=True),
    UniqueConstraint("release_key", "table_name", name="uq_release_tables_name"),
    UniqueConstraint("physical_schema", "physical_name", name="uq_release_tables_physical"),
)

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("delivery", Integer, ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("step", String(16), nullable=False),
    Column("check_name", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("file", String(1024)),
    Column("hdu", Integer),
    Column("column_name", String(64)),
    Column("failing_count", BigInteger),
    Column("sample_rows", JSON),
    Column("observed", Text),
    Column("reason", Text, nullable=False),
)

# --- the release gate (services/gate.py, docs/gate.md) ---------------------------------

# What a delivery looked like (sizes, column summaries, sky cells, findings, stage
# timings), per attempt: the anomaly model's inputs and the drift reference.
# Where each ObsCore column of each observation product came from, per attempt:
# {"facility_name": "header:TELESCOP", "t_max": "header:DATE-OBS+header:EXPTIME",
#  "instrument_name": "manifest:instrument", ...}; a column absent from it is NULL.
observation_sources = Table(
    "observation_sources",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("delivery", Integer, ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("path", String(1024), nullable=False),
    Column("sources", JSON, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)

delivery_features = Table(
    "delivery_features",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("delivery", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("features", JSON, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    UniqueConstraint("delivery", "attempt", name="uq_delivery_features"),
)

# The gate's decision per attempt: held ones are later approved or rejected by an operator.
gate_decisions = Table(
    "gate_decisions",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("delivery", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    # auto-pass | held | approved | rejected
    Column("decision", String(16), nullable=False),
    # rules | model vN | operator:<name> | timeout
    Column("decided_by", String(100), nullable=False),
    Column("reason", Text, nullable=True),
    Column("drift", JSON, nullable=False),
    Column("anomaly_score", Float, nullable=True),
    Column("anomaly_threshold", Float, nullable=True),
    Column("thresholds", JSON, nullable=False),
    Column("model_version", Integer, nullable=True),
    Column("held_at", UTCDateTime, nullable=True),
    Column("decided_at", UTCDateTime, nullable=False),
    UniqueConstraint("delivery", "attempt", name="uq_gate_decisions"),
)

# Versions of the anomaly model: parameters as JSON (the training matrix and
# hyperparameters; the model is refitted from them, deterministically: no pickle).
gate_models = Table(
    "gate_models",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    # candidate | current | retired | rejected
    Column("state", String(16), nullable=False),
    Column("trained_at", UTCDateTime, nullable=False),
    Column("window_from", UTCDateTime, nullable=True),
    Column("window_to", UTCDateTime, nullable=True),
    Column("samples", Integer, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("params", JSON, nullable=False),
)

# Time-to-data predicted at arrival from the delivery's size, to compare with the actual.
ttd_forecasts = Table(
    "ttd_forecasts",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("delivery", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("predicted_seconds", Float, nullable=True),
    Column("model", String(64), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("made_at", UTCDateTime, nullable=False),
    UniqueConstraint("delivery", "attempt", name="uq_ttd_forecasts"),
)
