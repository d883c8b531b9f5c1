"""`monitor doctor`: one line per check, plain words, exit status 1 on any FAIL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_settings
from monitor.doctor import FAIL, OK, WARN, exit_status, run_checks
from monitor.locks import try_lock
from monitor.storage.db import make_engine, migrate


def _by_name(checks: list) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.message) for c in checks}


def test_fresh_sqlite_install_says_to_run_init(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var", secret_key="k" * 40)
    checks = _by_name(run_checks(settings, check_model_file=False))
    assert checks["settings"][0] == OK and checks["data dir"][0] == OK and checks["database"][0] == OK
    assert checks["migrations"] == (FAIL, "the database is empty: run `monitor init`")
    assert checks["scheduler"][0] == WARN and "no scheduler is running" in checks["scheduler"][1]
    assert "broker" not in checks  # inline mode needs no broker


def test_database_and_scheduler_lock_on_each_backend(tmp_path: Path, database_url: str) -> None:
    settings = load_settings(data_dir=tmp_path / "var", database_url=database_url, secret_key="k" * 40)
    engine = make_engine(database_url)
    held = try_lock(engine, "scheduler")  # a running scheduler
    try:
        checks = run_checks(settings, check_model_file=False)
        named = _by_name(checks)
        assert named["database"][0] == OK and named["migrations"][0] == OK, named
        assert named["scheduler"] == (OK, "a scheduler is running (it holds the scheduler lock)")
        assert exit_status(checks) == 0
    finally:
        assert held is not None
        held.release()
        engine.dispose()


def test_unreachable_database_and_broker_fail_with_advice(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var", secret_key="k" * 40, executor="celery",
                             database_url="postgresql+psycopg://nobody:secret@127.0.0.1:1/none",
                             broker_url="redis://127.0.0.1:1/0")
    checks = run_checks(settings, check_model_file=False)
    named = _by_name(checks)
    assert named["database"][0] == FAIL and "is PostgreSQL running" in named["database"][1]
    assert "secret" not in named["database"][1]  # the password is never printed
    assert "migrations" not in named  # not asked of a database that does not answer
    assert named["broker"][0] == FAIL and "start Redis or fix MONITOR_BROKER_URL" in named["broker"][1]
    assert "workers" not in named
    assert exit_status(checks) == 1


def test_no_worker_answering_is_a_failure(tmp_path: Path) -> None:
    from tests.test_executor_celery import REDIS_URL

    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        from tests.conftest import skip_or_fail

        skip_or_fail(f"Redis not reachable at {REDIS_URL} ({exc})")
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    migrate(url)
    settings = load_settings(data_dir=tmp_path / "var", secret_key="k" * 40, executor="celery",
                             database_url=url, broker_url=REDIS_URL, task_queue="monitor-doctor-test")
    named = _by_name(run_checks(settings, worker_timeout=0.5, check_model_file=False))
    assert named["broker"][0] == OK
    assert named["executor"][0] == WARN  # celery on SQLite: one machine only
    assert named["workers"][0] == FAIL and "start `monitor worker`" in named["workers"][1]


def test_cli_reports_bad_settings_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("MONITOR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MONITOR_FETCH_WORKERS", "0")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL  settings") and "MONITOR_FETCH_WORKERS" in result.output

    monkeypatch.delenv("MONITOR_FETCH_WORKERS")
    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path / "var"))
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    result = CliRunner().invoke(main, ["doctor", "--json"])
    data = json.loads(result.output)
    statuses = {c["name"]: c["status"] for c in data["checks"]}
    assert statuses["migrations"] == OK and statuses["model"] == OK  # the bundled classifier loads
    assert data["ok"] is True and result.exit_code == 0
