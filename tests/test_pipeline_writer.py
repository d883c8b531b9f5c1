"""Batched storing: ``BatchWriter`` (one writer thread, several feeds per transaction) and ``store_batch``
(whole feeds or nothing; a failed batch stored again feed by feed, with nothing of it left behind)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from sqlalchemy import func, select

from monitor.collectors.feeds import parse_feed
from monitor.errors import FetchError
from monitor.pipeline import refresh as refresh_module
from monitor.pipeline.collect import collect_round
from monitor.pipeline.feeds import add_feed
from monitor.pipeline.refresh import Fetched, RefreshResult, load_states, store_batch
from monitor.pipeline.writer import BatchWriter
from monitor.records import FetchResult
from monitor.storage.db import transaction
from monitor.storage.tables import Feed, FeedRun, Item

try:
    from tests.conftest_collectors import local_server, respond  # noqa: F401
except ImportError:  # tests/ is not a package
    from conftest_collectors import local_server, respond  # noqa: F401

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}


def _fake(feed_id: int) -> Fetched:
    return Fetched(feed_id, None, NOW, 0.0)  # type: ignore[arg-type]  # the writer never reads the state


def test_writer_stores_whatever_is_waiting_in_one_batch_and_answers_each_caller() -> None:
    batches: list[list[int]] = []
    release = threading.Event()

    def store(batch):  # type: ignore[no-untyped-def]
        if not batches:
            release.wait(5)  # the first batch is slow: the next feeds queue up meanwhile
        batches.append([f.feed_id for f in batch])
        return [RefreshResult(f.feed_id, f"feed {f.feed_id}") for f in batch]

    with BatchWriter(store, max_feeds=4) as writer:
        futures = [writer.submit(_fake(1))]
        time.sleep(0.1)
        futures += [writer.submit(_fake(n)) for n in range(2, 8)]
        release.set()
    assert batches == [[1], [2, 3, 4, 5], [6, 7]]
    assert [f.result().feed_id for f in futures] == list(range(1, 8))


def test_a_store_error_reaches_every_caller_of_the_batch() -> None:
    def store(batch):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    with BatchWriter(store) as writer:
        future = writer.submit(_fake(1))
    assert isinstance(future.exception(), RuntimeError)


def _fetched(runtime, local_server, make_rss, n: int) -> Fetched:  # type: ignore[no-untyped-def]
    with transaction(runtime.factory) as session:
        feed_id = add_feed(session, local_server.url(f"/b{n}.xml")).id
    state = load_states(runtime.factory, [feed_id], NOW)[feed_id]
    body = make_rss([{"title": f"Story {n}-{i}", "link": f"https://news.example.org/{n}/{i}", "guid": f"{n}-{i}",
                      "description": f"Text {i} of feed {n}."} for i in range(3)])
    result = FetchResult(url=state.url, status=200, body=body, headers=RSS_TYPE, etag=f'"{n}"')
    return Fetched(feed_id, state, NOW, time.monotonic(), result=result, digest=f"{n:064d}",
                   parsed=parse_feed(body, RSS_TYPE, state.url))


def test_a_batch_is_one_transaction_and_a_failed_one_leaves_nothing_behind(runtime, local_server, make_rss,
                                                                          monkeypatch) -> None:
    batch = [_fetched(runtime, local_server, make_rss, n) for n in range(3)]
    real = refresh_module._store_items
    calls: list[int] = []

    def failing_once(session, feed, items, now):  # type: ignore[no-untyped-def]
        calls.append(feed.id)
        if len(calls) == 3:  # the last feed of the batch fails after two were written in its transaction
            raise RuntimeError("disk full")
        return real(session, feed, items, now)

    monkeypatch.setattr(refresh_module, "_store_items", failing_once)
    results = store_batch(runtime.factory, runtime.settings, batch)
    assert [r.new for r in results] == [3, 3, 3] and all(r.error is None for r in results)
    assert calls == [f.feed_id for f in batch] * 2  # the batch, then each feed on its own
    with runtime.factory() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 9
        # the rolled-back batch left no run record or feed state: one run per feed, from the second pass
        assert session.scalar(select(func.count()).select_from(FeedRun)) == 3
        assert {f.etag for f in session.scalars(select(Feed))} == {'"0"', '"1"', '"2"'}


def test_a_batch_stores_failures_and_successes_together(runtime, local_server, make_rss) -> None:
    good = _fetched(runtime, local_server, make_rss, 1)
    bad = _fetched(runtime, local_server, make_rss, 2)
    bad.result, bad.parsed = None, None
    bad.error = FetchError("HTTP 500 Internal Server Error", status=500)
    results = store_batch(runtime.factory, runtime.settings, [good, bad])
    assert (results[0].new, results[0].run_status) == (3, "ok")
    assert (results[1].error, results[1].run_status) == ("HTTP 500 Internal Server Error", "error")
    with runtime.factory() as session:
        assert session.get(Feed, bad.feed_id).error_count == 1
        assert [r.status for r in session.scalars(select(FeedRun).order_by(FeedRun.feed_id))] == ["ok", "error"]


def test_a_round_stores_many_feeds_per_transaction(runtime, local_server, make_rss, monkeypatch) -> None:
    batches: list[int] = []
    real = refresh_module.store_batch

    def counting(factory, settings, batch):  # type: ignore[no-untyped-def]
        batches.append(len(batch))
        return real(factory, settings, batch)

    monkeypatch.setattr("monitor.pipeline.collect.store_batch", counting)
    ids = []
    for n in range(12):
        local_server.route(f"/r{n}.xml", 200, make_rss([{"title": f"R {n}", "link": f"https://r.example/{n}",
                                                         "guid": f"r{n}", "description": "x"}]), RSS_TYPE)
        with transaction(runtime.factory) as session:
            ids.append(add_feed(session, local_server.url(f"/r{n}.xml")).id)
    results = collect_round(runtime, ids, NOW, processes=0)
    assert [r.feed_id for r in results] == ids and all(r.new == 1 for r in results)
    assert sum(batches) == 12


def test_big_rounds_freeze_the_objects_that_existed_before_them_and_unfreeze_after(monkeypatch) -> None:
    import gc

    from monitor.pipeline import collect as collect_module

    calls: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
    with collect_module._gc_frozen(1):  # a feed job: nothing to gain
        pass
    big = collect_module.PARALLEL_PARSE_MIN_FEEDS
    with collect_module._gc_frozen(big), collect_module._gc_frozen(big):  # two rounds at once
        assert calls == ["freeze"]
    assert calls == ["freeze", "unfreeze"]
