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

    scheduler_tick_seconds: int = Field(60, ge=1, description="How often the scheduler looks for due feeds.")
    executor: Literal["inline"] = "inline"

    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8000
    dashboard_threads: int = 8
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
