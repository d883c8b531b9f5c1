"""Settings come from defaults, a TOML file and MONITOR_* variables, in that order of priority."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.config import load_settings


def test_defaults_env_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("MONITOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.data_dir == Path("var") and settings.fetch_allow_hosts == []
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'var' / 'monitor.sqlite3'}"

    (tmp_path / "monitor.toml").write_text('flag_threshold = 0.7\nfetch_allow_hosts = ["10.0.0.0/8"]\n')
    assert load_settings().flag_threshold == 0.7
    monkeypatch.setenv("MONITOR_FETCH_ALLOW_HOSTS", "127.0.0.1, ::1")
    monkeypatch.setenv("MONITOR_FLAG_THRESHOLD", "0.6")
    settings = load_settings()
    assert settings.fetch_allow_hosts == ["127.0.0.1", "::1"] and settings.flag_threshold == 0.6

    monkeypatch.setenv("MONITOR_FLAG_THRESHOLD", "2")
    with pytest.raises(ValidationError):
        load_settings()


def test_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", secret_key=None)
    key = settings.resolved_secret_key()
    assert len(key) > 40 and settings.resolved_secret_key() == key
    assert (tmp_path / "d" / "secret_key").stat().st_mode & 0o077 == 0
    assert load_settings(data_dir=tmp_path / "d", secret_key="given").resolved_secret_key() == "given"
