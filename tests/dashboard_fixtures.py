"""Fixtures and helpers for the dashboard tests (imported explicitly by ``tests/test_dashboard_*.py``).

Each test gets a fresh SQLite database in ``tmp_path`` created by the Alembic migrations, with one admin, one
viewer, a news feed and item with one claim, a release with one statement, and a contradicting match whose
"figure" reason points at real offsets in both texts.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard import create_app
from monitor.accounts import create_user
from monitor.config import load_settings
from monitor.storage.db import make_engine, make_session_factory, migrate, transaction
from monitor.storage.tables import Claim, Feed, Item, Match, Release, Statement

ADMIN = ("admin", "admin-password-1")
VIEWER = ("viewer", "viewer-password-1")
REVIEWER = ("reviewer", "reviewer-password-1")

CLAIM_TEXT = "Tỷ lệ lạm phát năm 2023 là 5,2%, theo báo cáo mới."
STATEMENT_TEXT = "Chỉ số giá tiêu dùng bình quân năm 2023 tăng 3,25% so với năm 2022."
RELEASE_BODY = "Tổng cục Thống kê công bố số liệu. " + STATEMENT_TEXT + " Lạm phát cơ bản tăng 4,16%."
ITEM_TITLE = "Lạm phát năm 2023 vượt mục tiêu"


def span_of(text: str, part: str) -> list[int]:
    start = text.index(part)
    return [start, start + len(part)]


@dataclass
class Seeded:
    url: str
    match_id: int
    item_id: int
    admin_id: int


def seed(url: str, *, item_title: str = ITEM_TITLE, claim_text: str = CLAIM_TEXT,
         item_url: str = "https://news.example.vn/lam-phat-2023") -> Seeded:
    """Insert the fixture rows through the ORM (schema must exist)."""
    engine = make_engine(url)
    try:
        with transaction(make_session_factory(engine)) as session:
            admin = create_user(session, *ADMIN, role="admin")
            create_user(session, *VIEWER, role="viewer")
            create_user(session, *REVIEWER, role="reviewer")
            feed = Feed(url="https://news.example.vn/rss", name="Báo Ví Dụ", kind="news")
            session.add(feed)
            session.flush()
            item = Item(feed_id=feed.id, guid="item-1", url=item_url, title=item_title,
                        summary_text=claim_text, content_text="", content_hash="h1",
                        published_at=datetime(2024, 1, 5, 8, 30, tzinfo=UTC))
            session.add(item)
            session.flush()
            claim = Claim(item_id=item.id, position=0, source="body", text=claim_text, start=0,
                          end=len(claim_text))
            release = Release(title="Thông cáo báo chí về CPI năm 2023", url="https://gso.gov.vn/cpi-2023",
                              body=RELEASE_BODY, content_hash="r1", source="manual",
                              published_at=datetime(2024, 1, 4, 9, 0, tzinfo=UTC))
            session.add_all([claim, release])
            session.flush()
            start = RELEASE_BODY.index(STATEMENT_TEXT)
            statement = Statement(release_id=release.id, position=1, text=STATEMENT_TEXT, start=start,
                                  end=start + len(STATEMENT_TEXT))
            session.add(statement)
            session.flush()
            claim_span = span_of(claim_text, "5,2%") if "5,2%" in claim_text else None
            match = Match(claim_id=claim.id, statement_id=statement.id, release_id=release.id,
                          label="contradicts", score=0.87,
                          probabilities={"contradicts": 0.87, "supports": 0.05, "discusses": 0.08},
                          reasons=[{"kind": "figure", "text": "5,2% vs 3,25% for 2023 inflation",
                                    "claim_span": claim_span,
                                    "statement_span": span_of(STATEMENT_TEXT, "3,25%")}],
                          model_version="nli-test-1", status="new")
            session.add(match)
            session.flush()
            return Seeded(url, match.id, item.id, admin.id)
    finally:
        engine.dispose()


def make_test_app(tmp_path: Path, **config: object) -> Flask:
    url = f"sqlite:///{tmp_path / 'dashboard.sqlite3'}"
    settings = load_settings(database_url=url, data_dir=tmp_path, secret_key="test-secret-key")
    app = create_app(settings, {"TESTING": True, **config})
    return app


def csrf_token_from(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no csrf_token in the page"
    return found.group(1)


def login(client: FlaskClient, username: str, password: str, **kwargs: object):  # type: ignore[no-untyped-def]
    """Sign in through the form, with the page's CSRF token (works with CSRF on or off)."""
    page = client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       **kwargs)


_TEMPLATE: list[tuple[Path, Seeded]] = []  # one seeded database per test run, shared by all modules


@pytest.fixture(scope="session")
def dashboard_template_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """Migrate and seed once (argon2 hashing is slow on purpose); each test gets a copy of the file.

    Every test module imports this fixture, so pytest sees one definition per module; the cache above
    keeps it to a single build.
    """
    if not _TEMPLATE:
        path = tmp_path_factory.mktemp("dashboard-template") / "dashboard.sqlite3"
        url = f"sqlite:///{path}"
        migrate(url)
        _TEMPLATE.append((path, seed(url)))
    return _TEMPLATE[0]


@pytest.fixture
def seeded(dashboard_template_db: tuple[Path, Seeded], tmp_path: Path) -> Seeded:
    template, rows = dashboard_template_db
    target = tmp_path / "dashboard.sqlite3"
    shutil.copyfile(template, target)
    return Seeded(f"sqlite:///{target}", rows.match_id, rows.item_id, rows.admin_id)


@pytest.fixture
def db_url(seeded: Seeded) -> str:
    return seeded.url


@pytest.fixture
def app(tmp_path: Path, seeded: Seeded) -> Iterator[Flask]:
    """The app with CSRF checks on (as in production)."""
    app = make_test_app(tmp_path)
    yield app
    app.extensions["monitor"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin_client(client: FlaskClient) -> FlaskClient:
    response = login(client, *ADMIN)
    assert response.status_code == 302
    return client


@pytest.fixture
def session_factory(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()
