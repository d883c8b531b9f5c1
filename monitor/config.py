"""One typed settings object: defaults <- TOML file <- ``MONITOR_*`` environment variables.

The TOML file is ``monitor.toml`` in the working directory, or the path in ``MONITOR_CONFIG``. Settings are
built once by the entry point (CLI, scheduler, dashboard) and passed in; nothing reads the environment later.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from monitor import __version__


def _config_file() -> Path:
    return Path(os.environ.get("MONITOR_CONFIG", "monitor.toml"))


class Settings(BaseSettings):
    """Every setting of the monitor. Environment variables are the field names upper-cased with ``MONITOR_``."""

    model_config = SettingsConfigDict(env_prefix="MONITOR_", extra="ignore", validate_default=True)

    data_dir: Path = Field(Path("./var"), description="Where the SQLite file, secret key and logs live.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in data_dir.")
    secret_key: str | None = Field(None, description="Flask secret; generated and kept in data_dir when unset.")
    admin_password: str | None = Field(None, description="Password for the first `admin` account.")

    fetch_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or CIDR ranges the fetcher may reach although private/loopback (comma separated).",
    )
    fetch_allow_files: bool = Field(False, description="Allow file:// feed URLs (demo only).")
    fetch_connect_timeout: float = 10.0
    fetch_read_timeout: float = 20.0
    fetch_total_timeout: float = 60.0
    fetch_max_bytes: int = 10 * 1024 * 1024
    fetch_max_redirects: int = 5
    fetch_workers: int = Field(8, ge=1, le=256)
    contact_url: str = "https://github.com/statement-monitor/statement-monitor"

    feed_default_interval: int = Field(30, ge=1, description="Minutes between fetches of a new feed.")
    feed_max_backoff: int = Field(24 * 60, ge=1, description="Cap, in minutes, on the retry delay of a failing feed.")
    feed_disable_after: int = Field(10, ge=1, description="Consecutive failures after which a feed is disabled.")

    model_path: Path | None = Field(None, description="Classifier file (.skops); default: the bundled model.")
    check_top_k: int = Field(3, ge=1, le=50)
    flag_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Minimum score for a contradiction flag.")
    flag_threshold_unexplained: float = Field(
        0.8, ge=0.0, le=1.0,
        description="Minimum score for a contradiction flag whose reasons name no figure, date, name or denial.")
    flag_min_relevance: float = Field(
        0.1, ge=0.0, le=1.0,
        description="Minimum retrieval cosine between claim and statement for a contradiction flag: a claim can only "
                    "contradict a statement it talks about.")

    # learning from review (monitor/pipeline/retrain.py, registry.py)
    training_data_dir: Path = Field(Path("../shared/data"), description="Public training data (fnc1/, sick/); "
                                    "when absent, retraining uses feedback + synthetic pairs only.")
    retrain_hour: int = Field(2, ge=0, le=23, description="Hour (UTC) of the nightly retraining job.")
    retrain_base_max_pairs: int | None = Field(None, ge=1, description="Subsample of base training pairs "
                                               "(FNC-1 training split + SICK train); default: all.")
    retrain_eval_max_pairs: int = Field(3000, ge=1, description="FNC-1 hold-out pairs used to compare models.")
    retrain_synthetic_sentences: int = Field(3000, ge=0, description="Numeric sentences perturbed into "
                                             "synthetic pairs (training-split bodies and current releases).")
    retrain_feedback_weight: float = Field(3.0, gt=0, description="Sample weight of one reviewer label.")
    retrain_min_feedback_eval: int = Field(10, ge=1, description="Fewest held-out feedback rows needed to use "
                                           "the feedback slice as evidence.")

    # alerts (monitor/alerts/)
    smtp_host: str | None = Field(None, description="SMTP server for alert and digest emails.")
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "statement-monitor@localhost"
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_timeout: float = 20.0
    webhook_timeout: float = Field(10.0, gt=0, description="Seconds for one webhook POST.")
    alert_max_attempts: int = Field(6, ge=1, description="Delivery attempts before an alert is marked failed.")
    alert_backoff_seconds: int = Field(60, ge=1, description="First retry delay; doubled after each failure.")
    digest_hour: int = Field(7, ge=0, le=23, description="Hour (UTC) of the daily digest email.")
    public_url: str | None = Field(None, description="The dashboard's public address, for links in alerts.")

    scheduler_tick_seconds: int = Field(60, ge=1, description="How often the scheduler looks for due feeds.")
    executor: Literal["inline", "celery"] = Field(
        "inline", description="inline: fetch and check in the scheduler process; celery: enqueue to workers.")
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker (Redis) for executor=celery.")
    task_queue: str = Field("monitor", pattern=r"^[A-Za-z0-9_.:-]+$",
                            description="Celery queue, also the prefix of the monitor's Redis keys.")
    worker_concurrency: int = Field(4, ge=1, le=256, description="Task processes of one `monitor worker`.")
    check_batch_size: int = Field(200, ge=1, description="Items checked per transaction by a check task.")
    task_visibility_timeout: int = Field(
        3600, ge=1, description="Seconds before a task of a worker that died is delivered again (Redis).")
    task_max_retries: int = Field(5, ge=0, description="Retries (exponential backoff) of a task on a transient error.")
    host_concurrency: int = Field(2, ge=1, description="Fetches at once against one host, across all workers.")
    host_lock_seconds: int = Field(300, ge=1, description="Expiry of a worker's per-host fetch slot (crash safety).")
    db_pool_size: int = Field(5, ge=1, description="Connections kept open per process (PostgreSQL).")
    db_max_overflow: int = Field(10, ge=0, description="Extra connections allowed at peak (PostgreSQL).")
    db_pool_recycle: int = Field(1800, ge=-1, description="Seconds after which a pooled connection is renewed.")

    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8000
    dashboard_threads: int = 8
    display_timezone: str = Field("UTC", description="IANA time zone the dashboard shows times in, e.g. "
                                  "Asia/Ho_Chi_Minh (times are stored in UTC).")
    session_cookie_secure: bool = Field(False, description="Set on deployments served over HTTPS.")

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    # Derived values -----------------------------------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``<data_dir>/monitor.sqlite3``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'monitor.sqlite3').resolve()}"

    @property
    def user_agent(self) -> str:
        return f"statement-monitor/{__version__} (+{self.contact_url})"

    @property
    def models_dir(self) -> Path:
        """Where retrained model versions are kept: ``<data_dir>/models``."""
        return self.data_dir / "models"

    def ensure_data_dir(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.data_dir

    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once and kept (mode 0600) in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.ensure_data_dir() / "secret_key"
        if path.exists():
            return path.read_text().strip()
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment and the TOML file; ``overrides`` win (used by tests)."""
    return Settings(**overrides)
