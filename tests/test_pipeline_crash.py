"""Crash test: a collector process SIGKILLed in the middle of a round loses no committed item and, after a
restart and another round, duplicates none (each feed's items are one transaction; unique keys hold)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from monitor.config import load_settings
from monitor.pipeline.collect import collect_round
from monitor.pipeline.feeds import add_feed
from monitor.runtime import open_runtime
from monitor.storage.db import migrate, transaction
from monitor.storage.tables import Feed, FeedRun, Item

FEEDS, ITEMS = 40, 25
ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys
from monitor.config import load_settings
from monitor.pipeline.collect import collect_round
from monitor.runtime import open_runtime
settings = load_settings(data_dir=sys.argv[2], database_url=sys.argv[1], fetch_allow_hosts=["127.0.0.1"],
                         secret_key="t", fetch_workers=4)
runtime = open_runtime(settings)
from sqlalchemy import select
from monitor.storage.tables import Feed
with runtime.factory() as session:
    ids = list(session.scalars(select(Feed.id).order_by(Feed.id)))
print("ready", flush=True)
while True:
    collect_round(runtime, ids)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_mid_round_loses_and_duplicates_nothing(tmp_path, local_server, make_rss) -> None:
    url = f"sqlite:///{tmp_path / 'crash.sqlite3'}"
    migrate(url)
    settings = load_settings(data_dir=tmp_path / "var", database_url=url, fetch_allow_hosts=["127.0.0.1"],
                             secret_key="t", fetch_workers=4)

    def slow_feed(n: int):
        body = make_rss([{"title": f"Feed {n} story {i}", "link": f"https://n{n}.example.org/{i}",
                          "guid": f"{n}-{i}", "description": f"Text {i} of feed {n}."} for i in range(ITEMS)])

        def route(handler) -> None:
            time.sleep(0.15)
            respond(handler, 200, body, {"Content-Type": "application/rss+xml"})
        return route

    runtime = open_runtime(settings)
    with transaction(runtime.factory) as session:
        for n in range(FEEDS):
            local_server.routes[f"/f{n}.xml"] = slow_feed(n)
            add_feed(session, local_server.url(f"/f{n}.xml"))
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, str(tmp_path / "var")], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    probe = create_engine(url)
    committed: set[tuple[int, str]] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with probe.connect() as conn:
                count = conn.execute(text("select count(*) from items")).scalar()
            if FEEDS * ITEMS // 4 <= count < FEEDS * ITEMS * 3 // 4:
                break
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            time.sleep(0.02)
        else:
            pytest.fail("the child never reached the middle of a round")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        with probe.connect() as conn:
            committed = {(f, g) for f, g in conn.execute(text("select feed_id, guid from items"))}
            assert conn.execute(text("pragma integrity_check")).scalar() == "ok"
    finally:
        if child.poll() is None:
            child.kill()
        probe.dispose()
    assert 0 < len(committed) < FEEDS * ITEMS
    per_feed: dict[int, int] = {}
    for feed_id, _ in committed:
        per_feed[feed_id] = per_feed.get(feed_id, 0) + 1
    assert set(per_feed.values()) == {ITEMS}, "a feed's items are committed all together or not at all"

    # restart: another process (a fresh runtime) runs a round over every feed
    runtime.close()
    runtime = open_runtime(settings)
    try:
        with runtime.factory() as session:
            ids = list(session.scalars(select(Feed.id).order_by(Feed.id)))
        results = collect_round(runtime, ids)
        assert all(r.error is None for r in results)
        with runtime.factory() as session:
            rows = {(f, g) for f, g in session.execute(select(Item.feed_id, Item.guid))}
            total = session.scalar(select(func.count()).select_from(Item))
            keys = session.scalar(select(func.count(func.distinct(Item.url_key))))
            runs = session.scalar(select(func.count()).select_from(FeedRun))
        assert committed <= rows, "an item committed before the kill was lost"
        assert total == len(rows) == keys == FEEDS * ITEMS
        assert sum(r.new for r in results) == FEEDS * ITEMS - len(committed)
        assert runs >= FEEDS
    finally:
        runtime.close()


try:
    from tests.conftest_collectors import local_server, respond  # noqa: E402,F401
except ImportError:
    from conftest_collectors import local_server, respond  # noqa: E402,F401
