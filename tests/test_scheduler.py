"""The scheduler: one persistent job per feed, kept in step with the feeds table; jobs collect then check."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from monitor import scheduler as sched_module
from monitor.config import load_settings
from monitor.pipeline.collect import check_round
from monitor.pipeline.feeds import add_feed, set_enabled, update_feed
from monitor.runtime import open_runtime
from monitor.scheduler import (
    FEED_JOBSTORE,
    build_scheduler,
    collect_feed,
    feed_job_id,
    set_runtime,
    sync_feed_jobs,
)
from monitor.storage.db import migrate, transaction
from monitor.storage.tables import Feed, Item, Match, Release

ITEM = {"title": "Cyber police investigated 72 specialized criminal cases in 2019",
        "link": "https://news.example.org/a", "guid": "a",
        "description": "The ministry's cyber department investigated 72 specialized criminal cases last year."}
RELEASE = ("In 2019, the department investigated 27 specialized criminal cases and arrested 121 suspects.\n"
           "The department also extradited 555 foreign criminals to their home countries.")


@pytest.fixture
def sqlite_runtime(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'sched.sqlite3'}"
    migrate(url)
    settings = load_settings(data_dir=tmp_path / "var", database_url=url, fetch_allow_hosts=["127.0.0.1"],
                             secret_key="t", scheduler_tick_seconds=1)
    runtime = open_runtime(settings)
    yield runtime
    set_runtime(None)
    runtime.close()


def _add(runtime, url: str, **kw) -> int:
    with transaction(runtime.factory) as session:
        return add_feed(session, url, **kw).id


def _jobs(scheduler) -> dict[str, object]:
    return {job.id: job for job in scheduler.get_jobs(jobstore=FEED_JOBSTORE)}


def test_feed_jobs_persist_across_a_restart_and_follow_the_feeds_table(sqlite_runtime, tmp_path) -> None:
    rt = sqlite_runtime
    a = _add(rt, "http://127.0.0.1:9/a.xml", interval_minutes=30)
    b = _add(rt, "http://127.0.0.1:9/b.xml", interval_minutes=5)
    # first fetches planned an hour ahead: a new feed's job is otherwise due at once, and APScheduler runs due
    # jobs once more while a paused scheduler shuts down (moving their next run time) on a slow machine
    with transaction(rt.factory) as session:
        session.execute(update(Feed).values(next_fetch_at=datetime.now(UTC) + timedelta(hours=1)))
    first = build_scheduler(rt, blocking=False)
    first.start(paused=True)
    report = sync_feed_jobs(first, rt)
    assert sorted(report.added) == [a, b]
    jobs = _jobs(first)
    assert set(jobs) == {feed_job_id(a), feed_job_id(b)}
    job = jobs[feed_job_id(a)]
    assert job.trigger.interval == timedelta(minutes=30) and job.trigger.jitter == 180
    assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time == 1800
    assert job.func is collect_feed and job.args == (a,)
    planned = {jid: j.next_run_time for jid, j in jobs.items()}
    first.shutdown(wait=True)

    # a new process: the same jobs, with the same next run times, come back from the database
    second_rt = open_runtime(rt.settings)
    try:
        second = build_scheduler(second_rt, blocking=False)
        second.start(paused=True)
        restored = _jobs(second)
        assert {jid: j.next_run_time for jid, j in restored.items()} == planned
        assert not sync_feed_jobs(second, second_rt).changed
        c = _add(second_rt, "http://127.0.0.1:9/c.xml", interval_minutes=60)
        with transaction(second_rt.factory) as session:
            set_enabled(session, a, False)  # paused
            update_feed(session, b, interval_minutes=15)
        report = sync_feed_jobs(second, second_rt)
        assert (report.added, report.removed, report.rescheduled) == ([c], [a], [b])
        jobs = _jobs(second)
        assert set(jobs) == {feed_job_id(b), feed_job_id(c)}
        assert jobs[feed_job_id(b)].trigger.interval == timedelta(minutes=15)
        with transaction(second_rt.factory) as session:
            set_enabled(session, a, True)
            session.delete(session.get(Feed, c))
        report = sync_feed_jobs(second, second_rt)
        assert (report.added, report.removed) == ([a], [c])
        second.shutdown(wait=True)
    finally:
        second_rt.close()
    with rt.engine.connect() as conn:  # the job store is a table of the monitor's own database
        count = conn.exec_driver_sql("select count(*) from apscheduler_jobs").scalar()
    assert count == 2


def test_job_collects_then_checks_at_once(sqlite_runtime, feed_server, make_rss) -> None:
    from monitor.pipeline.releases import add_release

    rt = sqlite_runtime
    with transaction(rt.factory) as session:
        add_release(session, RELEASE, title="Review", url=None, published_at=None)
    feed_id = _add(rt, feed_server.serve("/n.xml", make_rss([ITEM])))
    set_runtime(rt)
    collect_feed(feed_id)
    with rt.factory() as session:
        item = session.scalar(select(Item))
        assert item is not None and item.checked_at is not None  # checked without another job
        assert session.scalar(select(func.count()).select_from(Match)) >= 1
        assert session.get(Feed, feed_id).last_fetched_at is not None
    # in backoff: the job skips the feed until its next fetch time
    requests = len(feed_server.requests)
    with transaction(rt.factory) as session:
        session.get(Feed, feed_id).next_fetch_at = datetime.now(UTC) + timedelta(hours=5)
    collect_feed(feed_id)
    assert len(feed_server.requests) == requests


def test_two_checks_at_once_do_not_double_insert(sqlite_runtime, feed_server, make_rss) -> None:
    from monitor.pipeline.collect import collect_round
    from monitor.pipeline.releases import add_release

    rt = sqlite_runtime
    with transaction(rt.factory) as session:
        add_release(session, RELEASE, title="Review", url=None, published_at=None)
    items = [dict(ITEM, guid=f"g{n}", link=f"https://news.example.org/{n}",
                  title=f"{ITEM['title']} ({n})") for n in range(20)]
    feed_id = _add(rt, feed_server.serve("/n.xml", make_rss(items)))
    collect_round(rt, [feed_id])
    rt.model  # load once, outside the race
    errors: list[BaseException] = []

    def run() -> None:
        try:
            check_round(rt)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with rt.factory() as session:
        total = session.scalar(select(func.count()).select_from(Match))
        distinct = session.scalar(select(func.count()).select_from(
            select(Match.claim_id, Match.statement_id).distinct().subquery()))
        assert total == distinct and total > 0
        assert session.scalar(select(func.count()).select_from(Item).where(Item.checked_at.is_(None))) == 0


def test_running_scheduler_collects_and_stops_cleanly(sqlite_runtime, feed_server, make_rss) -> None:
    rt = sqlite_runtime
    with transaction(rt.factory) as session:
        session.add(Release(title="r", body=RELEASE, content_hash="x" * 64))
    feed_id = _add(rt, feed_server.serve("/n.xml", make_rss([ITEM])), interval_minutes=1)
    scheduler = build_scheduler(rt, blocking=False)
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with rt.factory() as session:
                if session.scalar(select(Item.checked_at)) is not None:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the feed job did not collect and check within 60 s")
        assert scheduler.get_job(feed_job_id(feed_id), jobstore=FEED_JOBSTORE) is not None
    finally:
        scheduler.shutdown(wait=True)
    assert not scheduler.running
    assert sched_module.get_runtime() is rt
