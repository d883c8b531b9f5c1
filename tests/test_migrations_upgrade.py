"""An existing database made by the first migration upgrades to the latest one without losing rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from monitor.storage.db import make_engine, make_session_factory, migrate, schema_is_current
from monitor.storage.tables import Feed, Item, Match, ReviewEvent, User
from tests.conftest import temporary_postgres_database

T = "'2024-01-02 03:04:05+00'"
ROWS_AT_0001 = [
    "INSERT INTO feeds (id, url, name, kind, interval_minutes, enabled, created_at, error_count, next_fetch_at) "
    f"VALUES (1, 'https://a.example/rss', 'A', 'news', 30, TRUE, {T}, 0, {T}), "
    f"(2, 'https://b.example/rss', 'B', 'news', 60, FALSE, {T}, 3, NULL), "
    f"(3, 'https://gov.example/rss', 'Gov', 'official', 30, TRUE, {T}, 0, NULL)",
    "INSERT INTO users (id, username, password_hash, role, active, created_at) "
    f"VALUES (1, 'admin', 'x', 'admin', TRUE, {T}), (2, 'rita', 'y', 'reviewer', TRUE, {T})",
    *[
        "INSERT INTO items (id, feed_id, guid, url, url_key, title, summary_text, content_text, content_html, "
        f"fetched_at, content_hash, checked_at) VALUES ({i}, {1 + i % 2}, 'g{i}', 'https://a.example/{i}', "
        f"'k{i}', 'Title {i}', 'Summary {i}', '', '', {T}, 'h{i}', {T if i < 4 else 'NULL'})"
        for i in range(1, 6)
    ],
    *[
        f'INSERT INTO claims (id, item_id, position, source, text, start, "end") '
        f"VALUES ({i}, {i}, 0, 'title', 'Title {i}', 0, 7)" for i in range(1, 6)
    ],
    "INSERT INTO releases (id, title, body, content_hash, source, retired, created_at) "
    f"VALUES (1, 'Release', 'We did 27 cases. We arrested 121.', 'rh', 'manual', FALSE, {T})",
    'INSERT INTO statements (id, release_id, position, text, start, "end") '
    "VALUES (1, 1, 0, 'We did 27 cases.', 0, 16), (2, 1, 1, 'We arrested 121.', 17, 33)",
    *[
        "INSERT INTO matches (id, claim_id, statement_id, release_id, label, score, probabilities, reasons, "
        f"model_version, status, reviewed_by_id, created_at) VALUES ({i}, {i}, {1 + i % 2}, 1, 'contradicts', "
        f"0.{9 - i}, '{{}}', '[]', 'm1', '{'confirmed' if i == 1 else 'new'}', {1 if i == 1 else 'NULL'}, {T})"
        for i in range(1, 4)
    ],
    "INSERT INTO review_events (id, match_id, user_id, action, from_status, to_status, created_at) "
    f"VALUES (1, 1, 1, 'confirm', 'new', 'confirmed', {T})",
]
COUNTS = {"feeds": 3, "users": 2, "items": 5, "claims": 5, "releases": 1, "statements": 2, "matches": 3,
          "review_events": 1}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    with temporary_postgres_database("monitor_migrate") as url:
        yield url


def test_upgrade_from_the_first_revision_keeps_every_row(empty_url: str) -> None:
    migrate(empty_url, "0001")
    engine = make_engine(empty_url)
    try:
        assert not schema_is_current(engine)
        with engine.begin() as conn:
            for statement in ROWS_AT_0001:
                conn.execute(text(statement))
            if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
                for table in COUNTS:
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                      f"(SELECT max(id) FROM {table}))"))
        migrate(empty_url)  # what `monitor init` does on an existing database
        assert schema_is_current(engine)
        with engine.connect() as conn:
            for table, expected in COUNTS.items():
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == expected, table
        # the old rows read back through today's mapping, new columns filled with their defaults
        factory = make_session_factory(engine)
        with factory() as session:
            feed = session.get(Feed, 3)
            assert feed is not None and feed.kind == "official" and feed.full_text is False
            assert session.get(Feed, 2).enabled is False
            match = session.get(Match, 1)
            assert match is not None and match.status == "confirmed" and match.reviewed_by.username == "admin"
            assert match.claim.item.feed.name == "B"
            assert session.scalar(select(ReviewEvent.action).where(ReviewEvent.match_id == 1)) == "confirm"
            assert [i.guid for i in session.scalars(select(Item).where(Item.checked_at.is_(None))
                                                    .order_by(Item.id))] == ["g4", "g5"]
            session.add(User(username="new", password_hash="z", role="viewer"))  # sequences still right
            session.commit()
    finally:
        engine.dispose()
