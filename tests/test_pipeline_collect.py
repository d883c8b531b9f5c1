"""Collection against real local HTTP servers, on SQLite and PostgreSQL: validators, failures and backoff,
redirects, identity (duplicate/missing GUIDs, edits, the same story in two feeds), SSRF at the feed level,
run records, feed health JSON, politeness (per-host limit, unconditional refetch) and full-text extraction."""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

try:
    from tests.conftest_collectors import LocalServer, local_server, respond  # noqa: F401
except ImportError:  # tests/ is not a package
    from conftest_collectors import LocalServer, local_server, respond  # noqa: F401

from monitor.pipeline import refresh as refresh_module
from monitor.pipeline.collect import collect_round, interleave_by_host
from monitor.pipeline.feeds import add_feed, feed_to_dict, item_counts, list_feeds, update_feed
from monitor.pipeline.refresh import HostLimiter, refresh_feed
from monitor.pipeline.schedule import next_after_error
from monitor.storage.db import transaction
from monitor.storage.tables import Feed, FeedRun, Item, ItemVersion, Sighting

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
STORY = ("The ministry said the cyber department investigated 27 specialised criminal cases in 2019 and "
         "arrested 121 suspects.")


def _add(runtime, url, **kwargs) -> int:
    with transaction(runtime.factory) as session:
        return add_feed(session, url, **kwargs).id


def _feed(runtime, feed_id) -> Feed:
    with runtime.factory() as session:
        return session.get(Feed, feed_id)


def _runs(runtime, feed_id) -> list[FeedRun]:
    with runtime.factory() as session:
        return list(session.scalars(select(FeedRun).where(FeedRun.feed_id == feed_id).order_by(FeedRun.id)))


def _count(runtime, model=Item, *where) -> int:
    with runtime.factory() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _item(guid: str, title: str = "A story", link: str | None = None, text: str = "Text.") -> dict[str, str]:
    return {"title": title, "link": link or f"https://news.example.org/{guid}", "guid": guid, "description": text}


# -- validators -------------------------------------------------------------------------------------------


def test_etag_change_is_followed_and_runs_are_recorded(runtime, feed_server, make_rss) -> None:
    url = feed_server.serve("/a.xml", make_rss([_item("g1")]), headers={**RSS_TYPE, "ETag": '"v1"'})
    feed_id = _add(runtime, url)
    assert refresh_feed(runtime.factory, runtime.settings, feed_id, NOW).new == 1
    feed_server.routes["/a.xml"] = (304, {"ETag": '"v1"'}, b"")
    assert refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(minutes=30)).run_status \
        == "not_modified"
    feed_server.serve("/a.xml", make_rss([_item("g1"), _item("g2", "Another")]), headers={**RSS_TYPE, "ETag": '"v2"'})
    third = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=1))
    assert (third.new, third.unchanged) == (1, 1)
    assert feed_server.requests[-1][1].get("If-None-Match") == '"v1"'
    assert _feed(runtime, feed_id).etag == '"v2"'
    feed_server.routes["/a.xml"] = (304, {}, b"")
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=2))
    assert feed_server.requests[-1][1].get("If-None-Match") == '"v2"'
    runs = _runs(runtime, feed_id)
    assert [(r.status, r.http_status, r.new) for r in runs] == [
        ("ok", 200, 1), ("not_modified", 304, 0), ("ok", 200, 1), ("not_modified", 304, 0)]
    assert [r.started_at for r in runs][0] == NOW and all(r.duration_ms >= 0 for r in runs)


def test_validators_are_dropped_once_the_last_full_answer_is_a_day_old(runtime, feed_server, make_rss) -> None:
    url = feed_server.serve("/a.xml", make_rss([_item("g1")]), headers={**RSS_TYPE, "ETag": '"same"'})
    feed_id = _add(runtime, url)
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    feed_server.routes["/a.xml"] = (304, {"ETag": '"same"'}, b"")
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=23))
    assert feed_server.requests[-1][1].get("If-None-Match") == '"same"'
    # a server stuck on 304 would hide changes forever: after 24 h the request carries no validator
    feed_server.serve("/a.xml", make_rss([_item("g1"), _item("g9", "Hidden change")]),
                      headers={**RSS_TYPE, "ETag": '"same"'})
    late = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=25))
    assert "If-None-Match" not in feed_server.requests[-1][1] and late.new == 1


# -- failures -----------------------------------------------------------------------------------------------


class _MaxJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def max_jitter(monkeypatch):
    monkeypatch.setattr(refresh_module, "next_after_error",
                        lambda *args, **kw: next_after_error(*args, **kw, rng=_MaxJitter()))


def test_http_500_backs_off_more_each_time_and_recovers(runtime, feed_server, make_rss, max_jitter) -> None:
    url = feed_server.serve("/a.xml", b"oops", status=500)
    feed_id = _add(runtime, url, interval_minutes=10)
    waits = []
    for attempt in range(1, 5):
        result = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
        feed = _feed(runtime, feed_id)
        assert result.error == "HTTP 500 Internal Server Error" and result.run_status == "error"
        assert feed.error_count == attempt and feed.last_error == result.error and feed.enabled
        waits.append((feed.next_fetch_at - NOW).total_seconds())
    assert waits == [600, 1200, 2400, 4800]
    assert [r.status for r in _runs(runtime, feed_id)] == ["error"] * 4
    feed_server.serve("/a.xml", make_rss([_item("g1")]))
    assert refresh_feed(runtime.factory, runtime.settings, feed_id, NOW).error is None
    feed = _feed(runtime, feed_id)
    assert feed.error_count == 0 and feed.last_error is None and feed.next_fetch_at == NOW + timedelta(minutes=10)


def test_timeout_is_an_error_with_growing_backoff_and_does_not_block_others(runtime, local_server, make_rss,
                                                                            max_jitter) -> None:
    def slow(handler):
        time.sleep(2)
        respond(handler, 200, make_rss([_item("late")]), RSS_TYPE)

    local_server.routes["/slow.xml"] = slow
    local_server.route("/fast.xml", 200, make_rss([_item("quick")]), RSS_TYPE)
    slow_id = _add(runtime, local_server.url("/slow.xml"), interval_minutes=5)
    fast_id = _add(runtime, local_server.url("/fast.xml"))
    runtime.settings = runtime.settings.model_copy(update={"fetch_total_timeout": 0.5, "fetch_read_timeout": 0.4})
    started = time.monotonic()
    results = collect_round(runtime, [slow_id, fast_id], NOW)
    assert time.monotonic() - started < 1.8
    assert "timed out" in results[0].error and results[1].new == 1
    collect_round(runtime, [slow_id], NOW)
    feed = _feed(runtime, slow_id)
    assert feed.error_count == 2 and (feed.next_fetch_at - NOW) == timedelta(minutes=10)


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_updates_the_feed_url(runtime, local_server, make_rss, code) -> None:
    local_server.route("/old.xml", code, b"", {"Location": "/new.xml"})
    local_server.route("/new.xml", 200, make_rss([_item("g1")]), RSS_TYPE)
    feed_id = _add(runtime, local_server.url("/old.xml"))
    assert refresh_feed(runtime.factory, runtime.settings, feed_id, NOW).new == 1
    assert _feed(runtime, feed_id).url == local_server.url("/new.xml")


def test_temporary_redirect_keeps_the_url_and_a_loop_is_an_error(runtime, local_server, make_rss) -> None:
    local_server.route("/tmp.xml", 302, b"", {"Location": "/new.xml"})
    local_server.route("/new.xml", 200, make_rss([_item("g1")]), RSS_TYPE)
    local_server.route("/loop.xml", 301, b"", {"Location": "/loop.xml"})
    tmp_id = _add(runtime, local_server.url("/tmp.xml"))
    loop_id = _add(runtime, local_server.url("/loop.xml"))
    refresh_feed(runtime.factory, runtime.settings, tmp_id, NOW)
    assert _feed(runtime, tmp_id).url == local_server.url("/tmp.xml")
    result = refresh_feed(runtime.factory, runtime.settings, loop_id, NOW)
    assert "too many redirects" in result.error
    feed = _feed(runtime, loop_id)
    assert feed.error_count == 1 and feed.url == local_server.url("/loop.xml")
    assert _runs(runtime, loop_id)[-1].error == result.error


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/feed",
                                    "http://[::1]/feed", "REDIRECT"])
def test_ssrf_attempts_become_feed_errors(runtime, local_server, target) -> None:
    if target == "REDIRECT":  # an allowed host redirecting to a private one
        local_server.route("/hop.xml", 301, b"", {"Location": "http://10.0.0.7/internal"})
        target = local_server.url("/hop.xml")
    feed_id = _add(runtime, target)
    result = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert "not allowed" in result.error
    feed = _feed(runtime, feed_id)
    assert feed.error_count == 1 and feed.url == target and _count(runtime) == 0


# -- identity ---------------------------------------------------------------------------------------------


def test_duplicate_and_missing_guids(runtime, feed_server) -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
<item><guid isPermaLink="false">dup</guid><title>First</title><link>https://news.example.org/1</link></item>
<item><guid isPermaLink="false">dup</guid><title>Second with the same guid</title><link>https://news.example.org/2</link></item>
<item><title>No guid, a link</title><link>https://news.example.org/3?utm_source=x</link></item>
<item><title>No guid, no link</title><description>Only text here.</description></item>
</channel></rss>"""
    feed_id = _add(runtime, feed_server.serve("/a.xml", body))
    first = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert first.new == 3 and first.run_status == "warning"  # the repeated id is reported on the feed
    with runtime.factory() as session:
        guids = sorted(session.scalars(select(Item.guid)))
    assert guids[0] == "dup" and "https://news.example.org/3" in guids and any(g.startswith("sha256:") for g in guids)
    feed_server.serve("/a.xml", body + b" ")  # a new body, the same entries
    again = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=1))
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3) and _count(runtime) == 3
    assert _feed(runtime, feed_id).warnings


def test_edited_item_keeps_its_previous_text_and_is_checked_again(runtime, feed_server, make_rss) -> None:
    feed_id = _add(runtime, feed_server.serve("/a.xml", make_rss([_item("g1", "Figures", text="27 cases.")])))
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    with transaction(runtime.factory) as session:
        session.scalar(select(Item)).checked_at = NOW
    feed_server.serve("/a.xml", make_rss([_item("g1", "Figures (corrected)", text="72 cases.")]))
    assert refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=1)).updated == 1
    feed_server.serve("/a.xml", make_rss([_item("g1", "Figures (corrected again)", text="27 cases.")]))
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=2))
    with runtime.factory() as session:
        item = session.scalar(select(Item))
        versions = list(session.scalars(select(ItemVersion).where(ItemVersion.item_id == item.id)
                                        .order_by(ItemVersion.id)))
        assert item.title == "Figures (corrected again)" and item.checked_at is None
        assert [(v.title, v.summary_text) for v in versions] == [("Figures", "27 cases."),
                                                                 ("Figures (corrected)", "72 cases.")]
        assert versions[0].recorded_at == NOW + timedelta(hours=1)
    assert [r.updated for r in _runs(runtime, feed_id)] == [0, 1, 1]


def test_same_story_in_two_feeds_is_one_item_with_a_sighting(runtime, feed_server, make_rss) -> None:
    a = _add(runtime, feed_server.serve("/a.xml", make_rss([_item("a1", "Cyber police report", text=STORY),
                                                            _item("a2", "Unrelated", text="Weather.")])))
    # feed b: the same URL under another guid, and the same title + text under another URL
    b_items = [_item("b1", "Cyber police report", "https://news.example.org/a1?utm_medium=rss", STORY),
               _item("b2", "  cyber POLICE report ", "https://other.example.com/copy", STORY.upper()),
               _item("b3", "Own story", text="Only here.")]
    b = _add(runtime, feed_server.serve("/b.xml", make_rss(b_items)))
    c = _add(runtime, feed_server.serve("/c.xml", make_rss([_item("c1", "Cyber police report",
                                                                  "https://third.example.net/x", STORY)])))
    refresh_feed(runtime.factory, runtime.settings, a, NOW)
    rb = refresh_feed(runtime.factory, runtime.settings, b, NOW)
    rc = refresh_feed(runtime.factory, runtime.settings, c, NOW)
    assert (rb.new, rb.duplicates, rb.sightings) == (1, 2, 1)  # one sighting per (story, feed)
    assert (rc.new, rc.duplicates, rc.sightings) == (0, 1, 1)  # matched on title + text alone
    assert _count(runtime) == 3
    with runtime.factory() as session:
        story = session.scalar(select(Item).where(Item.guid == "a1"))
        sightings = {(s.feed_id, s.guid) for s in session.scalars(select(Sighting).where(Sighting.item_id == story.id))}
        assert sightings == {(b, "b1"), (c, "c1")}
        assert story.story_key
    feed_server.serve("/b.xml", make_rss(b_items) + b"\n")
    again = refresh_feed(runtime.factory, runtime.settings, b, NOW + timedelta(hours=1))
    assert (again.new, again.sightings) == (0, 0) and _count(runtime, Sighting) == 2


def test_short_generic_titles_from_two_outlets_stay_separate(runtime, feed_server, make_rss) -> None:
    a = _add(runtime, feed_server.serve("/a.xml", make_rss([_item("a", "Daily briefing", text="")])))
    b = _add(runtime, feed_server.serve("/b.xml", make_rss([_item("b", "Daily briefing", text="")])))
    refresh_feed(runtime.factory, runtime.settings, a, NOW)
    assert refresh_feed(runtime.factory, runtime.settings, b, NOW).new == 1
    assert _count(runtime, Sighting) == 0


def test_dates_are_clamped_flagged_and_text_is_stored_without_nul(runtime, feed_server) -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
        {"id": "future", "url": "https://x.example/f", "title": "From the future\u0000",
         "content_text": "Nul \u0000 byte", "date_published": "2099-01-01T00:00:00Z"},
        {"id": "none", "url": "https://x.example/n", "title": "No date"},
        {"id": "bad", "url": "https://x.example/b", "title": "Bad date", "date_published": "yesterday-ish"},
        {"id": "ok", "url": "https://x.example/o", "title": "Fine", "date_published": "2025-12-30T10:00:00+07:00"},
    ]}).encode()
    feed_id = _add(runtime, feed_server.serve("/j.json", body, headers={"Content-Type": "application/feed+json"}))
    assert refresh_feed(runtime.factory, runtime.settings, feed_id, NOW).new == 4
    with runtime.factory() as session:
        items = {i.guid: i for i in session.scalars(select(Item))}
    assert (items["future"].published_at, items["future"].date_flag) == (NOW, "future")
    assert items["future"].published_raw == "2099-01-01T00:00:00Z"
    assert "\x00" not in items["future"].title + items["future"].content_text
    assert (items["none"].published_at, items["none"].date_flag, items["none"].published_raw) == (NOW, "missing", None)
    assert (items["bad"].date_flag, items["bad"].published_raw) == ("impossible", "yesterday-ish")
    assert items["ok"].published_at == datetime(2025, 12, 30, 3, 0, tzinfo=UTC) and items["ok"].date_flag is None
    assert items["ok"].language is None  # too little text to guess


# -- health -----------------------------------------------------------------------------------------------


def test_feed_health_dict(runtime, feed_server, make_rss) -> None:
    ok = _add(runtime, feed_server.serve("/ok.xml", make_rss([_item("1"), _item("2", "Two")])))
    bad = _add(runtime, feed_server.serve("/bad.xml", b"no", status=500))
    new = _add(runtime, feed_server.serve("/new.xml", make_rss([])))
    paused = _add(runtime, feed_server.serve("/paused.xml", make_rss([])))
    warn = _add(runtime, feed_server.serve("/warn.xml", make_rss([_item("w")]).replace(b"Test News", b"T&nbsp;N")))
    with transaction(runtime.factory) as session:
        session.get(Feed, paused).enabled = False
    collect_round(runtime, [ok, bad, warn], NOW)
    with runtime.factory() as session:
        counts = item_counts(session)
        rows = {f.id: feed_to_dict(f, items=counts.get(f.id, 0)) for f in list_feeds(session)}
        assert feed_to_dict(session.get(Feed, ok)) == rows[ok]  # counted on demand without the map
    for row in rows.values():
        for key in ("id", "url", "name", "kind", "status", "last_fetched_at", "last_error", "consecutive_failures",
                    "next_fetch_at", "items", "error_count", "enabled"):
            assert key in row
    assert {k: rows[k]["status"] for k in rows} == {ok: "ok", bad: "error", new: "new", paused: "disabled",
                                                     warn: "warning"}
    assert rows[ok]["items"] == 2 and rows[ok]["last_error"] is None and rows[ok]["last_fetched_at"]
    assert rows[bad]["consecutive_failures"] == 1 and rows[bad]["last_error"] == "HTTP 500 Internal Server Error"
    assert rows[new]["last_fetched_at"] is None and rows[new]["items"] == 0
    json.dumps(list(rows.values()))


# -- politeness ---------------------------------------------------------------------------------------------


def test_per_host_limit_holds_while_other_hosts_proceed(runtime, local_server, make_rss) -> None:
    active, peak, lock = [0], [0], threading.Lock()

    def slow(handler):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.15)
        with lock:
            active[0] -= 1
        respond(handler, 200, make_rss([_item(handler.path)]), RSS_TYPE)

    ids = []
    for n in range(8):
        local_server.routes[f"/f{n}.xml"] = slow
        ids.append(_add(runtime, local_server.url(f"/f{n}.xml")))
    limiter = HostLimiter(2)
    results = collect_round(runtime, ids, NOW, limiter=limiter, workers=8)
    assert [r.feed_id for r in results] == ids and all(r.new == 1 for r in results)
    assert peak[0] == 2 and max(limiter.peak.values()) == 2


def test_interleave_by_host() -> None:
    feeds = [(1, "http://a/1"), (2, "http://a/2"), (3, "http://a/3"), (4, "https://b/1"), (5, "http://c:81/x")]
    assert interleave_by_host(feeds) == [1, 4, 5, 2, 3]


# -- full text ----------------------------------------------------------------------------------------------


ARTICLE = ("<html><head><title>x</title></head><body><nav>Home | World | Sport</nav><article><h1>Cyber report</h1>"
           + "".join(f"<p>Paragraph {n}: the department investigated 27 specialised criminal cases and arrested "
                     f"121 suspects during the year, officials said in a statement.</p>" for n in range(6))
           + "</article><footer>Copyright</footer></body></html>").encode()


def test_full_text_feed_stores_the_article_and_a_failure_is_a_warning(runtime, local_server, make_rss) -> None:
    local_server.route("/article", 200, ARTICLE, {"Content-Type": "text/html; charset=utf-8"})
    items = [_item("ok", "Cyber report", local_server.url("/article"), "Short summary."),
             _item("gone", "Missing page", local_server.url("/missing"), "Kept summary.")]
    local_server.route("/feed.xml", 200, make_rss(items), RSS_TYPE)
    feed_id = _add(runtime, local_server.url("/feed.xml"), full_text=True)
    result = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert result.new == 2 and result.run_status == "warning"
    assert "full text unavailable for 1 item" in result.warnings[0] and "404" in result.warnings[0]
    with runtime.factory() as session:
        got = {i.guid: i for i in session.scalars(select(Item))}
    assert "Paragraph 5" in got["ok"].content_text and "Copyright" not in got["ok"].content_text
    assert got["ok"].content_html.startswith("<p>") and got["gone"].summary_text == "Kept summary."
    # the next fetch of the same feed body does not refetch articles nor see the item as edited
    local_server.route("/feed.xml", 200, make_rss(items) + b" ", RSS_TYPE)
    requests_before = len(local_server.requests)
    again = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW + timedelta(hours=1))
    assert (again.updated, again.unchanged) == (0, 2) and len(local_server.requests) == requests_before + 1


def test_full_text_links_go_through_the_guard(runtime, local_server, make_rss) -> None:
    items = [_item("meta", "Cloud metadata", "http://169.254.169.254/latest/meta-data/", "Summary.")]
    local_server.route("/feed.xml", 200, make_rss(items), RSS_TYPE)
    feed_id = _add(runtime, local_server.url("/feed.xml"), full_text=True)
    result = refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert result.new == 1 and "not allowed" in result.warnings[0]


def test_interval_change_is_respected(runtime, feed_server, make_rss) -> None:
    feed_id = _add(runtime, feed_server.serve("/a.xml", make_rss([_item("1")])), interval_minutes=30)
    with transaction(runtime.factory) as session:
        update_feed(session, feed_id, interval_minutes=90)
    refresh_feed(runtime.factory, runtime.settings, feed_id, NOW)
    assert _feed(runtime, feed_id).next_fetch_at == NOW + timedelta(minutes=90)


def test_flag_threshold_asks_more_of_a_contradiction_without_concrete_evidence() -> None:
    from monitor.pipeline.process import decide_label, has_evidence

    probs = {"contradicts": 0.7, "supports": 0.2, "discusses": 0.06, "unrelated": 0.04}
    assert decide_label("contradicts", 0.7, probs, 0.5) == ("contradicts", 0.7)
    assert decide_label("contradicts", 0.7, probs, 0.5, evidence=False, unexplained_threshold=0.8) == (
        "supports", 0.2)
    assert decide_label("contradicts", 0.9, probs, 0.5, evidence=False, unexplained_threshold=0.8)[0] == (
        "contradicts")
    assert has_evidence([{"kind": "similarity"}, {"kind": "figure"}])
    assert not has_evidence([{"kind": "similarity"}])


def test_no_flag_against_a_statement_the_claim_does_not_talk_about() -> None:
    """A denial matched to a release's dateline ("Hanoi, 30 December 2019.") was flagged at 0.98 in the demo."""
    from monitor.pipeline.process import decide_label

    probs = {"contradicts": 0.98, "supports": 0.01, "discusses": 0.005, "unrelated": 0.005}
    assert decide_label("contradicts", 0.98, probs, 0.5, relevance=0.07, min_relevance=0.1) == ("supports", 0.01)
    assert decide_label("contradicts", 0.98, probs, 0.5, relevance=0.37, min_relevance=0.1) == ("contradicts", 0.98)
    assert decide_label("supports", 0.9, probs, 0.5, relevance=0.01, min_relevance=0.1) == ("supports", 0.9)
    assert decide_label("contradicts", 0.98, probs, 0.5) == ("contradicts", 0.98)  # no relevance given: as before


# -- parsing in worker processes ---------------------------------------------------------------------------


def test_a_round_parsed_in_worker_processes_stores_the_same_as_one_parsed_in_threads(runtime, local_server,
                                                                                    make_rss) -> None:
    from monitor.pipeline.collect import ParsePool, parse_processes

    assert parse_processes(1) == 0  # a single feed never starts processes
    for n in range(3):
        local_server.route(f"/p{n}.xml", 200, make_rss([_item(f"p{n}-{i}", f"Story {n} {i}") for i in range(3)]),
                           RSS_TYPE)
    local_server.route("/page.xml", 200, b"<html><body>Just a moment...</body></html>", {"Content-Type": "text/html"})
    local_server.route("/cut.xml", 200, make_rss([_item("cut")])[:-40], RSS_TYPE)
    ids = [_add(runtime, local_server.url(p)) for p in ("/p0.xml", "/p1.xml", "/p2.xml", "/page.xml", "/cut.xml")]
    results = collect_round(runtime, ids, NOW, processes=2)
    assert [r.new for r in results[:3]] == [3, 3, 3]
    assert "not a feed" in results[3].error and "not well-formed" in results[4].error
    assert _count(runtime, Item, Item.feed_id == ids[4]) == 0
    with runtime.factory() as session:
        texts = sorted(session.scalars(select(Item.title).where(Item.feed_id.in_(ids[:3]))))
    assert texts == sorted(f"Story {n} {i}" for n in range(3) for i in range(3))

    pool = ParsePool(1)  # a pool whose worker is gone parses in the calling thread instead
    try:
        pool._pool.shutdown(wait=True)
        pool._broken = False
        body = make_rss([_item("solo")])
        try:
            parsed = pool(body, RSS_TYPE, "https://news.example.org/feed.xml")
        except RuntimeError:
            pytest.fail("a closed or broken pool must fall back to parsing in the thread")
        assert [i.guid for i in parsed.items] == ["solo"]
    finally:
        pool.close()
