"""``monitor doctor``: is this installation able to run? One line per check, in plain words.

Each check returns OK, WARN (works, but look at it) or FAIL (something will not work), with what to do.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, text

from monitor.config import Settings

OK, WARN, FAIL = "OK", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _short(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


def check_settings(settings: Settings | None, error: BaseException | None = None) -> Check:
    if settings is None:
        detail = _short(error) if error else "unknown error"
        errors = getattr(error, "errors", None)
        if callable(errors):
            detail = "; ".join(f"MONITOR_{'_'.join(str(p) for p in e.get('loc', ())).upper()}: {e.get('msg')}"
                               for e in errors())
        return Check("settings", FAIL, f"the settings do not load ({detail}); fix monitor.toml or the "
                     "MONITOR_* variables named")
    source = os.environ.get("MONITOR_CONFIG", "monitor.toml")
    where = f"{source} and MONITOR_* variables" if os.path.exists(source) else "MONITOR_* variables"
    return Check("settings", OK, f"loaded from defaults and {where}; executor={settings.executor}")


def check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        settings.ensure_data_dir()
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("data dir", FAIL, f"{path.resolve()} is not writable ({_short(exc)}); create it or give "
                     "the service user write access (MONITOR_DATA_DIR)")
    return Check("data dir", OK, f"{path.resolve()} is writable")


def check_secret_key(settings: Settings) -> Check:
    if settings.secret_key:
        if len(settings.secret_key) < 32:
            return Check("secret key", WARN, "MONITOR_SECRET_KEY is shorter than 32 characters; use a long "
                         "random value (python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        return Check("secret key", OK, "set by MONITOR_SECRET_KEY")
    path = (settings.data_dir / "secret_key").resolve()
    if not path.exists():
        return Check("secret key", WARN, f"none yet: one will be generated in {path} on first start; with "
                     "several dashboard machines set the same MONITOR_SECRET_KEY on each")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check("secret key", WARN, f"{path} can be read by other users (mode {mode:o}): chmod 600 it")
    return Check("secret key", OK, f"kept in {path}")


def _engine(settings: Settings) -> Engine:
    from monitor.storage.db import make_engine

    url = settings.resolved_database_url
    if url.startswith("postgresql"):
        return make_engine(url, connect_args={"connect_timeout": 5})
    return make_engine(url)


def _redacted(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def check_database(engine: Engine) -> Check:
    started = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        hint = ("is PostgreSQL running, and are host, port, user and password in MONITOR_DATABASE_URL right?"
                if engine.dialect.name == "postgresql" else "is the data directory there and writable?")
        return Check("database", FAIL, f"cannot connect to {_redacted(engine)} ({_short(exc)}); {hint}")
    ms = (time.monotonic() - started) * 1000
    message = f"{engine.dialect.name} reachable at {_redacted(engine)} ({ms:.0f} ms)"
    return Check("database", OK, message)


def check_migrations(engine: Engine) -> Check:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from monitor.storage.db import alembic_config

    try:
        head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except Exception as exc:
        return Check("migrations", FAIL, f"cannot read the schema version ({_short(exc)})")
    if current is None:
        return Check("migrations", FAIL, "the database is empty: run `monitor init`")
    if current != head:
        return Check("migrations", FAIL, f"the schema is at {current}, the code needs {head}: stop the "
                     "scheduler and workers, back up the database, then run `monitor init`")
    return Check("migrations", OK, f"schema at the latest revision ({head})")


def check_broker(settings: Settings) -> Check:
    from monitor.celery_app import redis_client

    client = redis_client(settings)
    if client is None:
        return Check("broker", WARN, f"{settings.broker_url.split('@')[-1]} is not Redis: per-host politeness "
                     "and duplicate-enqueue protection only work with a Redis broker")
    try:
        client.ping()
        waiting = client.llen(settings.task_queue)
    except Exception as exc:
        return Check("broker", FAIL, f"Redis at {settings.broker_url.split('@')[-1]} does not answer "
                     f"({_short(exc)}); start Redis or fix MONITOR_BROKER_URL")
    finally:
        client.close()
    return Check("broker", OK, f"Redis answers; {waiting} task(s) waiting in the queue")


def check_workers(settings: Settings, timeout: float = 2.0) -> Check:
    from monitor.celery_app import make_celery

    try:
        app = make_celery(settings)
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except Exception as exc:
        return Check("workers", FAIL, f"cannot ask the workers ({_short(exc)})")
    if not replies:
        return Check("workers", FAIL, f"no worker answered within {timeout:.0f} s: start `monitor worker` "
                     "on at least one machine (MONITOR_EXECUTOR=celery sends all fetching to workers)")
    return Check("workers", OK, f"{len(replies)} worker(s) answered: {', '.join(sorted(replies))}")


def check_scheduler_lock(engine: Engine) -> Check:
    from monitor.locks import lock_is_held

    try:
        held = lock_is_held(engine, "scheduler")
    except Exception as exc:
        return Check("scheduler", WARN, f"cannot tell whether a scheduler runs ({_short(exc)})")
    if held is None:
        return Check("scheduler", WARN, "cannot tell whether a scheduler runs on this database")
    if held:
        return Check("scheduler", OK, "a scheduler is running (it holds the scheduler lock)")
    return Check("scheduler", WARN, "no scheduler is running: feeds are not collected until exactly one "
                 "`monitor scheduler` (or `monitor run`) is started")


def check_model(settings: Settings, engine: Engine) -> Check:
    from monitor.runtime import Runtime
    from monitor.storage.db import make_session_factory

    runtime = Runtime(settings=settings, engine=engine, factory=make_session_factory(engine))
    try:
        model = runtime.model
    except Exception as exc:
        where = settings.model_path or "the bundled model"
        return Check("model", FAIL, f"cannot load {where} ({_short(exc)}); run `monitor train` or fix "
                     "MONITOR_MODEL_PATH")
    return Check("model", OK, f"classifier {getattr(model, 'version', '?')} loads")


def run_checks(settings: Settings | None, settings_error: BaseException | None = None, *,
               worker_timeout: float = 2.0, check_model_file: bool = True) -> list[Check]:
    """Every check, in order; later checks that depend on a failed one are left out."""
    checks = [check_settings(settings, settings_error)]
    if settings is None:
        return checks
    checks += [check_data_dir(settings), check_secret_key(settings)]
    try:
        engine = _engine(settings)
    except Exception as exc:
        return [*checks, Check("database", FAIL, f"the database URL is not usable ({_short(exc)}); "
                               "install the driver (pip install 'statement-monitor[postgres]') or fix "
                               "MONITOR_DATABASE_URL")]
    try:
        database = check_database(engine)
        checks.append(database)
        if database.status == OK:
            checks.append(check_migrations(engine))
            checks.append(check_scheduler_lock(engine))
        if settings.executor == "celery":
            if engine.dialect.name == "sqlite":
                checks.append(Check("executor", WARN, "executor=celery with SQLite: every worker must run on "
                                    "this machine; use PostgreSQL for workers on other machines"))
            broker = check_broker(settings)
            checks.append(broker)
            if broker.status != FAIL:
                checks.append(check_workers(settings, worker_timeout))
        if check_model_file:
            checks.append(check_model(settings, engine))
    finally:
        engine.dispose()
    return checks


def render(checks: list[Check], echo: Callable[[str], Any]) -> None:
    width = max(len(c.name) for c in checks)
    for check in checks:
        echo(f"{check.status:<4}  {check.name:<{width}}  {check.message}")


def exit_status(checks: list[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0
