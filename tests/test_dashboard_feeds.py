"""Feeds page: health in plain words, items per day, add/edit/pause/resume/remove, OPML import and export."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dashboard_fixtures import ADMIN, REVIEWER, VIEWER, csrf_token_from, login, make_test_app
from monitor.pipeline.feeds import items_per_day, parse_opml
from monitor.storage.tables import Feed, Item

SEEDED_FEED_URL = "https://news.example.vn/rss"


def _token(client, path="/feeds"):  # type: ignore[no-untyped-def]
    return csrf_token_from(client.get(path).get_data(as_text=True))


def _feed(session_factory, url=SEEDED_FEED_URL):  # type: ignore[no-untyped-def]
    with session_factory() as s:
        return s.scalar(select(Feed).where(Feed.url == url))


def test_viewer_reads_feeds_but_cannot_manage(client, session_factory):
    login(client, *VIEWER)
    page = client.get("/feeds")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Báo Ví Dụ" in html and "Never fetched yet." in html and "news" in html
    assert 'action="/feeds/add"' not in html and "Pause" not in html
    token = csrf_token_from(html)
    response = client.post("/feeds/add", data={"csrf_token": token, "url": "https://x.example/rss",
                                               "kind": "news", "interval_minutes": "30"})
    assert response.status_code == 403
    assert _feed(session_factory, "https://x.example/rss") is None
    feed_id = _feed(session_factory).id
    assert client.post(f"/feeds/{feed_id}/pause", data={"csrf_token": token}).status_code == 403


def test_add_feed_validation_errors_are_shown_in_the_form(admin_client, session_factory):
    token = _token(admin_client)
    bad_scheme = admin_client.post("/feeds/add", data={"csrf_token": token, "url": "ftp://files.example/feed",
                                                       "kind": "news", "interval_minutes": "30"})
    html = bad_scheme.get_data(as_text=True)
    assert bad_scheme.status_code == 400
    assert "Feed URL must start with http:// or https://" in html
    assert 'value="ftp://files.example/feed"' in html  # what was typed stays in the form
    assert 'aria-invalid="true"' in html

    missing = admin_client.post("/feeds/add", data={"csrf_token": token, "url": "", "kind": "news",
                                                    "interval_minutes": "0"})
    html = missing.get_data(as_text=True)
    assert missing.status_code == 400
    assert "Enter the feed&#39;s URL." in html or "Enter the feed's URL." in html
    assert "whole number of minutes" in html or "Choose between 1 and" in html

    duplicate = admin_client.post("/feeds/add", data={"csrf_token": token, "url": SEEDED_FEED_URL,
                                                      "kind": "news", "interval_minutes": "30"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)
    with session_factory() as s:
        assert len(s.scalars(select(Feed)).all()) == 1


def test_reviewer_adds_feed(client, session_factory):
    login(client, *REVIEWER)
    response = client.post("/feeds/add", data={"csrf_token": _token(client), "url": "https://gov.example/news.xml",
                                               "name": "Ministry", "kind": "official", "interval_minutes": "45"})
    assert response.status_code == 302
    feed = _feed(session_factory, "https://gov.example/news.xml")
    assert (feed.name, feed.kind, feed.interval_minutes, feed.enabled) == ("Ministry", "official", 45, True)
    assert "Ministry" in client.get("/feeds").get_data(as_text=True)


def test_pause_then_resume_clears_failures(admin_client, session_factory):
    feed_id = _feed(session_factory).id
    with session_factory() as s:
        feed = s.get(Feed, feed_id)
        feed.error_count, feed.last_error, feed.last_status = 4, "HTTP 503 Service Unavailable", 503
        feed.last_fetched_at = datetime.now(UTC) - timedelta(minutes=20)
        feed.last_error_at = feed.last_fetched_at
        feed.next_fetch_at = datetime.now(UTC) + timedelta(hours=3)
        feed.warnings = ["the feed declares no encoding"]
        s.commit()
    html = admin_client.get("/feeds").get_data(as_text=True)
    assert "4 failures in a row." in html and "HTTP 503 Service Unavailable" in html
    assert "(HTTP 503)" in html and "Parser warning: the feed declares no encoding" in html
    assert "Next fetch " in html and "UTC (in 3 hours)." in html and "failing" in html  # locale-formatted time

    token = _token(admin_client)
    assert admin_client.post(f"/feeds/{feed_id}/pause", data={"csrf_token": token}).status_code == 302
    feed = _feed(session_factory)
    assert feed.enabled is False and feed.error_count == 4
    assert "Paused by staff." in admin_client.get("/feeds").get_data(as_text=True)

    assert admin_client.post(f"/feeds/{feed_id}/resume", data={"csrf_token": token}).status_code == 302
    feed = _feed(session_factory)
    assert feed.enabled is True and feed.error_count == 0 and feed.next_fetch_at is None
    assert feed.disabled_reason is None
    html = admin_client.get("/feeds").get_data(as_text=True)
    assert "failures in a row" not in html and "Next fetch: on the next scheduler run." in html


def test_pause_needs_csrf_token(admin_client, session_factory):
    feed_id = _feed(session_factory).id
    assert admin_client.post(f"/feeds/{feed_id}/pause").status_code == 400
    assert _feed(session_factory).enabled is True


def test_items_per_day_counts_last_seven_days_in_one_query(admin_client, session_factory):
    now = datetime.now(UTC)
    feed_id = _feed(session_factory).id
    with session_factory() as s:
        for i, age in enumerate([timedelta(0), timedelta(0), timedelta(days=2), timedelta(days=9)]):
            s.add(Item(feed_id=feed_id, guid=f"extra-{i}", title=f"t{i}", content_hash=f"x{i}",
                       fetched_at=now - age))
        s.commit()
        counts = items_per_day(s, 7, now)
    # the seeded item was fetched "now" too (default fetched_at)
    assert counts[feed_id][-1] == 3 and counts[feed_id][-3] == 1 and sum(counts[feed_id]) == 4
    html = admin_client.get("/feeds").get_data(as_text=True)
    assert "4 in 7 days" in html


def test_edit_name_and_interval(admin_client, session_factory):
    feed_id = _feed(session_factory).id
    page = admin_client.get(f"/feeds/{feed_id}/edit")
    assert page.status_code == 200 and 'value="Báo Ví Dụ"' in page.get_data(as_text=True)
    token = csrf_token_from(page.get_data(as_text=True))
    bad = admin_client.post(f"/feeds/{feed_id}/edit", data={"csrf_token": token, "name": "X", "kind": "news",
                                                           "interval_minutes": "99999"})
    assert bad.status_code == 400 and "Choose between 1 and" in bad.get_data(as_text=True)
    ok = admin_client.post(f"/feeds/{feed_id}/edit", data={"csrf_token": token, "name": "Renamed outlet",
                                                          "kind": "news", "interval_minutes": "15"})
    assert ok.status_code == 302
    feed = _feed(session_factory)
    assert (feed.name, feed.interval_minutes) == ("Renamed outlet", 15)


def test_remove_asks_first_then_deletes(admin_client, session_factory):
    feed_id = _feed(session_factory).id
    confirm = admin_client.get(f"/feeds/{feed_id}/remove")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Remove “Báo Ví Dụ”?" in html and "1 collected item" in html
    assert _feed(session_factory) is not None  # GET changes nothing
    response = admin_client.post(f"/feeds/{feed_id}/remove", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 302
    assert _feed(session_factory) is None


OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Vietnam">
      <outline type="rss" text="VnExpress" title="VnExpress" xmlUrl="https://vnexpress.example/rss/tin-moi-nhat.rss"/>
      <outline type="rss" text="Government" xmlUrl="https://chinhphu.example/rss" category="/official"/>
    </outline>
    <outline type="rss" text="Already here" xmlUrl="https://news.example.vn/rss"/>
    <outline type="rss" text="Bad one" xmlUrl="javascript:alert(1)"/>
  </body>
</opml>
"""


def _upload(client, data: bytes, name: str = "feeds.opml"):  # type: ignore[no-untyped-def]
    return client.post("/feeds/import", data={"csrf_token": _token(client), "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_opml_import_reports_added_skipped_invalid_and_export_round_trips(admin_client, session_factory):
    response = _upload(admin_client, OPML)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "2 added · 1 skipped (already present) · 1 invalid" in html
    assert "Bad one: feed URL must start with http:// or https://" in html
    with session_factory() as s:
        feeds = {f.url: f for f in s.scalars(select(Feed))}
    assert feeds["https://chinhphu.example/rss"].kind == "official"
    assert feeds["https://chinhphu.example/rss"].name == "Government"
    assert feeds["https://vnexpress.example/rss/tin-moi-nhat.rss"].kind == "news"
    assert len(feeds) == 3

    export = admin_client.get("/feeds.opml")
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("text/x-opml")
    assert "attachment" in export.headers["Content-Disposition"]
    outlines, invalid = parse_opml(export.data)
    assert invalid == []
    assert {(o.url, o.title, o.kind) for o in outlines} == {(f.url, f.name, f.kind) for f in feeds.values()}

    again = _upload(admin_client, export.data)
    assert "0 added · 3 skipped (already present) · 0 invalid" in again.get_data(as_text=True)


def test_opml_export_is_readable_by_viewers(client):
    login(client, *VIEWER)
    response = client.get("/feeds.opml")
    assert response.status_code == 200 and b'xmlUrl="https://news.example.vn/rss"' in response.data


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<opml version="2.0"><head/><body><outline text="&lol9;" xmlUrl="https://evil.example/rss"/></body></opml>
"""


def test_hostile_opml_is_refused_with_a_message(admin_client, session_factory):
    response = _upload(admin_client, BILLION_LAUGHS)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The OPML file was refused" in html and "entit" in html
    assert _feed(session_factory, "https://evil.example/rss") is None


def test_malformed_and_non_opml_files_are_refused(admin_client):
    broken = _upload(admin_client, b"<opml><body><outline")
    assert broken.status_code == 400 and "not well-formed XML" in broken.get_data(as_text=True)
    rss = _upload(admin_client, b"<rss><channel/></rss>")
    assert rss.status_code == 400 and "not OPML" in rss.get_data(as_text=True)
    nothing = admin_client.post("/feeds/import", data={"csrf_token": _token(admin_client)},
                                content_type="multipart/form-data")
    assert nothing.status_code == 400 and "Choose an OPML file." in nothing.get_data(as_text=True)


def test_opml_size_limit_has_a_clear_message(tmp_path, seeded):
    app = make_test_app(tmp_path, OPML_MAX_BYTES=2048)
    client = app.test_client()
    login(client, *ADMIN)
    big = OPML.replace(b"<body>", b"<body>" + b"<!--" + b"x" * 4096 + b"-->")
    response = _upload(client, big)
    assert response.status_code == 400 and "larger than the 2 KB limit" in response.get_data(as_text=True)
    app.extensions["monitor"].engine.dispose()


def test_items_per_day_and_opml_import_on_each_backend(database_url):
    """The GROUP BY on a UTC day and the OPML import behave the same on SQLite and PostgreSQL."""
    from monitor.pipeline.feeds import add_feed, import_opml
    from monitor.storage.db import make_engine, make_session_factory

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as s:
            feed = add_feed(s, "https://a.example/rss", name="A")
            now = datetime(2024, 5, 10, 0, 30, tzinfo=UTC)
            for i, when in enumerate([now, now - timedelta(minutes=45), now - timedelta(days=6),
                                      now - timedelta(days=6, hours=1)]):
                s.add(Item(feed_id=feed.id, guid=f"g{i}", title="t", content_hash=f"h{i}", fetched_at=when))
            s.flush()
            # 00:30 today; 23:45 yesterday (another UTC day); 00:30 six days ago (the first day); 23:30 the
            # day before that (outside the window)
            assert items_per_day(s, 7, now)[feed.id] == [1, 0, 0, 0, 0, 1, 1]
            report = import_opml(s, OPML)
            assert (len(report.added), len(report.skipped), len(report.invalid)) == (3, 0, 1)
            s.rollback()
    finally:
        engine.dispose()
