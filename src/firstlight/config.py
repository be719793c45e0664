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
        default=1800, gt=0, description="Time one check on one delivered file may take."
    )
    cluster_catalogues: bool = Field(
        default=True,
        description="PostgreSQL: store catalogue rows in q3c order (CLUSTER) after loading.",
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
        default=1800,
        gt=0,
        description="How long a run's claim on a delivery holds before another run may take it.",
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
        default=600, gt=0, description="How often reconcile-inbox looks for missed arrivals."
    )
    failure_webhook_url: str | None = Field(
        default=None, description="Also POST failed runs to this URL (besides the ERROR log)."
    )
    runner_limit: int = Field(
        default=4,
        gt=0,
        description="Flow runs `firstlight up` executes at once (each is a process).",
    )
    prefect_port: int = Field(
        default=4200,
        gt=0,
        lt=65536,
        description="Port of the Prefect server `firstlight up` starts.",
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

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def public_dir(self) -> Path:
        return self.data_dir / "public"

    @property
    def embargo_dir(self) -> Path:
        """Private store of embargoed products until their release date."""
        return self.data_dir / "embargo"

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
