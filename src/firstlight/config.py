"""The one source of settings: every knob is a field here, read from the
environment (prefix ``FIRSTLIGHT_``) when ``Settings()`` is built, never at
import time. Everything else receives a ``Settings`` or the values it needs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# validations/ sits at the root of the source tree, beside src/.
_DEFAULT_VALIDATIONS = Path(__file__).resolve().parents[2] / "validations"


class Settings(BaseSettings):
    """Where firstlight keeps its data and how it reaches its systems."""

    model_config = SettingsConfigDict(env_prefix="FIRSTLIGHT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"),
        description="Root of the embedded default: inbox/, quarantine/, public/, archive.db.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the archive database: sqlite:///..., postgresql+psycopg://..., "
            "oracle+oracledb://...; default SQLite in data_dir."
        ),
    )
    validations_dir: Path = Field(
        default=_DEFAULT_VALIDATIONS,
        description="Folder of validation rules (format rules, suites) as files.",
    )
    healpix_order: int = Field(
        default=16,
        ge=4,
        le=29,
        description="HEALPix order (NESTED) of the stored position index (16: ~3.2 arcsec).",
    )
    ingest_chunk_rows: int = Field(
        default=100_000, gt=0, description="Rows per chunk when streaming catalogues."
    )
    validate_memory_mib: int = Field(
        default=2048,
        ge=64,
        description="Heap a child process parsing one delivered file may use (RLIMIT_DATA).",
    )
    validate_seconds: float = Field(
        default=1800, gt=0, description="Time the checks of one delivered file may take."
    )
    validate_processes: int = Field(
        default=2,
        gt=0,
        description=(
            "Files of one delivery checked at once, each in its own child under the limits "
            "above (memory: up to this many times validate_memory_mib)."
        ),
    )
    cluster_catalogues: bool = Field(
        default=True,
        description=(
            "PostgreSQL: store catalogue rows in q3c order (the loader sorts them, bounded "
            "memory), so a cone search reads few pages."
        ),
    )
    pg_sort_run_rows: int = Field(
        default=250_000,
        gt=0,
        description="PostgreSQL: rows the loader sorts in memory at a time (one run on disk).",
    )
    pg_index_connections: int = Field(
        default=2,
        ge=1,
        le=16,
        description="PostgreSQL: connections building a catalogue's indexes at the same time.",
    )
    pg_maintenance_work_mem_mib: int = Field(
        default=512,
        ge=1,
        description="PostgreSQL: maintenance_work_mem of each index build (its sort in memory).",
    )
    pg_partition_rows: int = Field(
        default=50_000_000,
        gt=0,
        description="PostgreSQL: catalogues with this many rows or more are partitioned by sky.",
    )
    pg_partitions: int = Field(
        default=24, ge=2, le=1024, description="PostgreSQL: partitions of a large catalogue."
    )
    claim_lease_seconds: int = Field(
        default=30,
        gt=0,
        description=(
            "How long a run's claim on a delivery holds unless renewed; a live run renews it "
            "every sixth of this, so a dead run's delivery is taken over within it."
        ),
    )

    # The release gate (docs/gate.md): drift and anomaly thresholds, the operator's wait.
    gate_psi: float = Field(
        default=0.25,
        gt=0,
        description="Gate: a column's PSI against the current release that holds.",
    )
    gate_row_ratio: float = Field(
        default=3.0, gt=1, description="Gate: a row-count change (either way) that holds."
    )
    gate_null_fraction: float = Field(
        default=0.1, gt=0, le=1, description="Gate: a change of a column's null share that holds."
    )
    gate_footprint_outside: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Gate: share of positions outside the mission's past sky cells that holds.",
    )
    gate_min_history: int = Field(
        default=10, ge=2, description="Gate: normal deliveries needed before a model is trained."
    )
    gate_forest_min_samples: int = Field(
        default=50,
        ge=2,
        description="Gate: samples from which an isolation forest replaces robust z.",
    )
    gate_anomaly_margin: float = Field(
        default=0.05, ge=0, description="Gate: margin above the highest training score that holds."
    )
    gate_holdout_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Gate: newest share of labelled history a new model version is judged on.",
    )
    gate_pause_seconds: int = Field(
        default=3600,
        gt=0,
        description="Gate: how long a held run waits for an operator before quarantining.",
    )
    gate_poll_seconds: int = Field(
        default=10, gt=0, description="Gate: how often a held run checks for the operator's answer."
    )
    gate_retrain_interval_seconds: int = Field(
        default=86400, gt=0, description="How often retrain-gate-model runs."
    )

    inbox_settle_seconds: float = Field(
        default=600.0,
        gt=0,
        description=(
            "How long a watcher waits for the files a manifest lists to be complete "
            "before announcing the delivery anyway (verification then says what is missing)."
        ),
    )
    watch_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often watchers re-check pending deliveries."
    )
    embargo_interval_seconds: int = Field(
        default=3600, gt=0, description="How often release-embargoed runs (maximum lateness)."
    )
    reconcile_interval_seconds: int = Field(
        default=60,
        gt=0,
        description="How often reconcile-inbox looks for missed arrivals and abandoned runs.",
    )
    failure_webhook_url: str | None = Field(
        default=None, description="Also POST failed runs to this URL (besides the ERROR log)."
    )
    worker_limit: int = Field(
        default=4,
        gt=0,
        description="Flow runs one worker executes at once (each a process forked warm).",
    )
    workers: int = Field(default=1, gt=0, description="Workers `firstlight up` starts.")
    stop_grace_seconds: float = Field(
        default=20,
        gt=0,
        description="On stop, how long runs cut short get to record it before they are killed.",
    )
    work_pool: str = Field(
        default="firstlight", min_length=1, description="The Prefect work pool workers pull from."
    )
    heartbeat_seconds: int = Field(
        default=30,
        ge=30,  # Prefect's own minimum
        description="Flow-run heartbeat; a run silent for 3 of these is marked Crashed.",
    )
    prefect_port: int = Field(
        default=4200,
        gt=0,
        lt=65536,
        description="Port of the Prefect server `firstlight up` starts.",
    )
    query_host: str = Field(
        default="127.0.0.1", description="Address the query service (TAP, SCS, DataLink) binds."
    )
    query_port: int = Field(
        default=8300, ge=0, lt=65536, description="Port of the query service (0: a free one)."
    )
    query_public_url: str | None = Field(
        default=None,
        description=(
            "Base URL people reach the query service at (behind a proxy, say): links in run "
            "artifacts and `firstlight quarantine show` start with it; default "
            "http://query_host:query_port."
        ),
    )
    query_maxrec: int = Field(
        default=10_000, gt=0, description="Rows a TAP query returns when it gives no MAXREC."
    )
    query_maxrec_limit: int = Field(
        default=1_000_000, gt=0, description="Most rows a TAP query may ask for (MAXREC)."
    )
    query_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Time limit of one synchronous TAP query."
    )
    query_job_seconds: int = Field(
        default=3600, gt=0, description="Most time an asynchronous TAP job may run."
    )
    query_job_retention_hours: float = Field(
        default=72.0, gt=0, description="How long an asynchronous TAP job and its result are kept."
    )
    query_workers: int = Field(default=2, gt=0, description="Asynchronous TAP jobs run at once.")
    query_upload_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description="Most bytes of TAP_UPLOAD tables one query may bring (0: no uploads).",
    )
    query_upload_max_rows: int = Field(
        default=100_000, ge=0, description="Most rows of one TAP_UPLOAD table."
    )
    query_database_url: str | None = Field(
        default=None,
        description=(
            "Read-only SQLAlchemy URL the query service connects with; default: PostgreSQL, "
            "the archive URL as query_role; SQLite, the archive file opened read-only."
        ),
    )
    query_role: str = Field(
        default="firstlight_reader",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL role (LOGIN) that may read only what is public.",
    )
    coverage_order: int = Field(
        default=8,
        ge=3,
        le=12,
        description="HEALPix order of the sky coverage (MOC) made per release (8: ~0.23 deg).",
    )
    prefect_ui_url: str | None = Field(
        default=None,
        description="Prefect UI the operations page links held runs to; default: prefect_port.",
    )
    pages_operations: bool = Field(
        default=True,
        description=(
            "Serve /operations (the ledger: delivery names, reasons, reports, Data Docs) on the "
            "query service's port; false where that port is public."
        ),
    )
    pages_history: int = Field(
        default=500,
        gt=0,
        le=10_000,
        description="Most recent deliveries the operations page reads (its queries are bounded).",
    )
    s3_bucket: str | None = Field(default=None, description="S3 inbox bucket; unset: no S3 inbox.")
    s3_prefix: str = Field(default="", description="Key prefix of deliveries in the S3 inbox.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (e.g. a MinIO or moto server); unset: AWS."
    )
    s3_region: str = Field(default="us-east-1", description="Region of the S3 inbox.")
    s3_queue_url: str | None = Field(
        default=None,
        description="SQS queue receiving the bucket's event notifications; unset: list the bucket.",
    )
    public_s3_bucket: str | None = Field(
        default=None,
        description="S3 bucket of the public store (endpoint, region: s3_*); unset: public_dir.",
    )
    public_s3_prefix: str = Field(default="", description="Key prefix of the S3 public store.")
    presign_seconds: int = Field(
        default=3600, gt=0, le=604800, description="Lifetime of presigned S3 download URLs."
    )

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def reports_dir(self) -> Path:
        """Data Docs of validation: ``<mission>/<delivery_id>/attempt-<n>/index.html``."""
        return self.data_dir / "reports"

    @property
    def public_dir(self) -> Path:
        return self.data_dir / "public"

    @property
    def embargo_dir(self) -> Path:
        """Private store of embargoed products until their release date."""
        return self.data_dir / "embargo"

    @property
    def coverage_dir(self) -> Path:
        """Sky coverage (MOC) per release and embargo group, made at index time."""
        return self.data_dir / "coverage"

    @property
    def pages_cache_dir(self) -> Path:
        """Images the pages draw (sky maps, time-to-data plots), cached by what they show."""
        return self.data_dir / "pages-cache"

    @property
    def query_jobs_dir(self) -> Path:
        """Asynchronous TAP jobs (their state and results), kept across restarts."""
        return self.data_dir / "tap-jobs"

    @property
    def query_url(self) -> str:
        """The query service's base URL as people reach it (no trailing slash)."""
        if self.query_public_url:
            return self.query_public_url.rstrip("/")
        host = "127.0.0.1" if self.query_host in ("0.0.0.0", "") else self.query_host  # noqa: S104 - naming, not binding
        return f"http://{host}:{self.query_port}"

    @property
    def archive_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'archive.db').resolve()}"

    @property
    def s3_staging_dir(self) -> Path:
        """Where S3 deliveries are downloaded before they appear in the inbox whole."""
        return self.inbox_dir / ".s3-staging"

    @property
    def state_dir(self) -> Path:
        """Small state files of long-running parts (e.g. the S3 listing cursor)."""
        return self.data_dir / "state"

    def as_environment(self) -> dict[str, str]:
        """These settings as FIRSTLIGHT_* variables, for child processes to read back."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            text = str(value.resolve()) if isinstance(value, Path) else str(value)
            env[f"FIRSTLIGHT_{name.upper()}"] = text.lower() if isinstance(value, bool) else text
        return env

    def ensure_dirs(self) -> None:
        for path in (self.inbox_dir, self.quarantine_dir, self.public_dir, self.embargo_dir):
            path.mkdir(parents=True, exist_ok=True)
