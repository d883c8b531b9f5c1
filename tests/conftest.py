"""Shared fixtures: temporary databases on SQLite and (when reachable) PostgreSQL, a local feed server."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from monitor.config import Settings, load_settings
from monitor.runtime import Runtime, open_runtime
from monitor.storage.db import migrate

# Fixtures of the dashboard tests (an app on a copy of a seeded database, logged-in clients).
pytest_plugins = ["dashboard_fixtures"]

PG_ADMIN_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("MONITOR_REQUIRE_SERVICES") == "1"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _postgres_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any driver or network error means "not here"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def skip_or_fail(reason: str) -> None:
    """Skip with a clear message, or fail when CI requires every service (MONITOR_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@contextmanager
def temporary_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards; skips (or fails in CI) when unreachable."""
    problem = _postgres_reachable()
    if problem:
        skip_or_fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({problem}); "
                     "set MONITOR_TEST_POSTGRES_URL to run these tests")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with temporary_postgres_database("monitor_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'monitor.sqlite3'}"
        migrate(url)
        yield url
        return
    server_url = request.getfixturevalue("postgres_server_url")
    migrate(server_url)
    yield server_url
    engine = create_engine(server_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "var", database_url=database_url,
                         fetch_allow_hosts=["127.0.0.1"], secret_key="test-secret", fetch_total_timeout=10.0)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = open_runtime(settings)
    yield rt
    rt.close()


class FeedServer:
    """A tiny HTTP server on 127.0.0.1 whose routes a test sets: path -> (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server.requests.append((self.path, dict(self.headers)))
                status, headers, body = server.routes.get(self.path, (404, {}, b"not found"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> str:
        self.routes[path] = (status, headers or {"Content-Type": "application/rss+xml; charset=utf-8"}, body)
        return self.url(path)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def rss(items: list[dict[str, str]], title: str = "Test News") -> bytes:
    """An RSS 2.0 document with the given items (keys: title, link, guid, description)."""
    from xml.sax.saxutils import escape

    parts = [f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
             f"<guid isPermaLink=\"false\">{escape(i['guid'])}</guid>"
             f"<description>{escape(i.get('description', ''))}</description></item>" for i in items]
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>'
            f"<link>https://news.example.org/</link><description>d</description>{''.join(parts)}"
            "</channel></rss>").encode()


@pytest.fixture
def make_rss() -> Callable[..., bytes]:
    return rss
