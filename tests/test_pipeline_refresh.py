"""refresh_feed against a real local HTTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from monitor.pipeline.feeds import add_feed, set_enabled
from monitor.pipeline.refresh import due_feed_ids, refresh_feed
from monitor.pipeline.schedule import next_after_error, next_after_success
from monitor.storage.db import transaction
from monitor.storage.tables import Feed, Item, Release

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ITEMS = [
    {"title": "First story", "link": "https://news.example.org/1?utm_source=x", "guid": "g1",
     "description": "One."},
    {"title": "Second story", "link": "https://news.example.org/2", "guid": "g2", "description": "Two."},
]


def _add(runtime, url, **kwargs) -> int:
    with transaction(runtime.factory) as session:
        return add_feed(session, url, **kwargs).id


def _count(runtime, model=Item) -> int:
    with runtime.factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_new_unchanged_updated_and_no_duplicates(runtime, feed_server, make_rss) -> None:
    url = feed_server.serve("/a.xml", make_rss(ITEMS), headers={
        "Content-Type": "application/rss+xml", "ETag": '"v1"'})
    feed_id = _add(runtime, url)
    first = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert (first.new, first.updated, first.unchanged, first.error) == (2, 0, 0, None)
    assert first.feed_name == "Test News"  # the feed's own title replaces the host name

    # 304 when the validator matches: nothing parsed, nothing stored twice
    feed_server.routes["/a.xml"] = (304, {"ETag": '"v1"'}, b"")
    second = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=1))
    assert (second.new, second.updated, second.error) == (0, 0, None)
    assert feed_server.requests[-1][1].get("If-None-Match") == '"v1"'

    changed = [dict(ITEMS[0], description="One, corrected."), ITEMS[1],
               {"title": "Third", "link": "https://news.example.org/3", "guid": "g3", "description": "3"}]
    feed_server.serve("/a.xml", make_rss(changed), headers={"Content-Type": "application/rss+xml"})
    third = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=2))
    assert (third.new, third.updated, third.unchanged) == (1, 1, 1)
    assert _count(runtime) == 3
    with runtime.factory() as session:
        item = session.scalar(select(Item).where(Item.guid == "g1"))
        assert item.url == "https://news.example.org/1"
        assert item.checked_at is None and "corrected" in item.summary_text


def test_same_story_from_two_feeds_is_stored_once(runtime, feed_server, make_rss) -> None:
    a = _add(runtime, feed_server.serve("/a.xml", make_rss(ITEMS)))
    b = _add(runtime, feed_server.serve("/b.xml", make_rss([dict(ITEMS[0], guid="other-guid")])))
    refresh_feed(runtime.factory, runtime.settings, a, NOW)
    result = refresh_feed(runtime.factory, runtime.settings, b, NOW)
    assert (result.new, result.duplicates) == (0, 1)
    assert _count(runtime) == 2


def test_failures_are_recorded_backed_off_and_do_not_lose_items(runtime, feed_server, make_rss) -> None:
    url = feed_server.serve("/a.xml", make_rss(ITEMS))
    feed_id = _add(runtime, url, interval_minutes=10)
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    feed_server.serve("/a.xml", b"<rss><channel><item><title>cut off", headers={"Content-Type": "text/xml"})
    failed = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert failed.error
    with runtime.factory() as session:
        feed = session.get(Feed, feed_id)
        assert feed.error_count == 1 and feed.last_error == failed.error and feed.enabled
        assert feed.next_fetch_at > NOW
    assert _count(runtime) == 2  # nothing already stored is lost
    feed_server.routes["/a.xml"] = (410, {}, b"gone")
    gone = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert "410" in gone.error
    with runtime.factory() as session:
        feed = session.get(Feed, feed_id)
        assert not feed.enabled and "410" in feed.disabled_reason
        assert due_feed_ids(session, NOW + timedelta(days=30)) == []
    with transaction(runtime.factory) as session:
        set_enabled(session, feed_id, True)
    with runtime.factory() as session:
        assert due_feed_ids(session, NOW) == [feed_id]


def test_blocked_address_is_an_error_on_the_feed(runtime, feed_server, make_rss) -> None:
    url = feed_server.serve("/a.xml", make_rss(ITEMS))
    settings = runtime.settings.model_copy(update={"fetch_allow_hosts": []})
    feed_id = _add(runtime, url)
    result = refresh_feed(runtime.factory, settings, feed_id, NOW)
    assert result.error and _count(runtime) == 0
    assert not feed_server.requests, "the guard must refuse before any request is sent"


def test_official_feed_items_become_releases(runtime, feed_server, make_rss) -> None:
    body = make_rss([{"title": "Year-end review", "link": "https://gov.example.org/r1", "guid": "r1",
                      "description": "In 2019 the department investigated 27 cases. It arrested 121 suspects."}])
    feed_id = _add(runtime, feed_server.serve("/gov.xml", body), kind="official")
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    with runtime.factory() as session:
        release = session.scalar(select(Release))
        assert release.title == "Year-end review" and release.source == "feed"
        assert [s.text for s in release.statements if "27 cases" in s.text]


def test_backoff_grows_with_jitter_and_respects_caps() -> None:
    rng = random.Random(1)
    waits = [(next_after_error(NOW, n, 10, 240, rng=rng) - NOW).total_seconds() for n in range(1, 8)]
    assert all(600 <= w <= 240 * 60 for w in waits)
    assert max(waits[4:]) > waits[0]
    assert (next_after_error(NOW, 1, 10, 240, retry_after=3600, rng=rng) - NOW).total_seconds() >= 3600
    assert next_after_success(NOW, 10, max_age=7200) == NOW + timedelta(hours=2)
    assert next_after_success(NOW, 10, max_age=60) == NOW + timedelta(minutes=10)
