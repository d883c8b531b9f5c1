"""The scheduler process: APScheduler 3 with one job per feed, kept in step with the feeds table.

* Every enabled feed has a job ``feed-<id>`` (:func:`collect_feed`, args ``(feed_id,)`` only) on an interval
  trigger of the feed's ``interval_minutes`` with jitter, ``coalesce``, ``max_instances=1`` and a misfire grace
  time. Feed jobs live in a persistent ``SQLAlchemyJobStore`` in the monitor's own database (table
  ``apscheduler_jobs``, created by APScheduler itself, outside the Alembic migrations), so a restart keeps the
  schedule.
* A sync job (memory store, every ``scheduler_tick_seconds``) reconciles the jobs with the feeds table: new
  feeds get a job, removed or paused ones lose theirs, interval changes reschedule.
* Job functions are importable module-level functions with primitive arguments; they reach the process's
  :class:`Runtime` through :func:`get_runtime`, set by the entry point (:func:`build_scheduler`).
* After a feed's collection its new items are checked at once (``check_round``, serialised by
  ``CHECK_LOCK``). A feed in backoff (or with ``Retry-After`` / ``max-age`` beyond the next tick) is skipped
  until its ``next_fetch_at``.

Never inside a dashboard worker: ``monitor scheduler`` runs it alone, ``monitor run`` beside the WSGI server
in the same process but outside its request threads.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from monitor.errors import MonitorError
from monitor.pipeline.collect import check_round, collect_round
from monitor.pipeline.refresh import refresh_feed
from monitor.runtime import Runtime
from monitor.storage.tables import Feed, utcnow

log = logging.getLogger(__name__)

FEED_JOBSTORE = "feeds"
JOBS_TABLE = "apscheduler_jobs"
SYNC_JOB_ID = "sync-feeds"
JOB_PREFIX = "feed-"
MAX_JITTER_SECONDS = 300

_registry_lock = threading.Lock()
_runtime: Runtime | None = None
_scheduler: BaseScheduler | None = None


def set_runtime(runtime: Runtime | None, scheduler: BaseScheduler | None = None) -> None:
    """Register the process-wide runtime (and scheduler) that job functions use."""
    global _runtime, _scheduler
    with _registry_lock:
        _runtime = runtime
        _scheduler = scheduler


def get_runtime() -> Runtime:
    if _runtime is None:
        raise MonitorError("the scheduler runtime is not set (start the scheduler with build_scheduler)")
    return _runtime


def feed_job_id(feed_id: int) -> str:
    return f"{JOB_PREFIX}{feed_id}"


def jitter_seconds(interval_minutes: int) -> int:
    """Up to a tenth of the interval, at most five minutes, at least one second."""
    return max(1, min(MAX_JITTER_SECONDS, interval_minutes * 6))


def _skip_tolerance(interval_minutes: int) -> timedelta:
    # jitter is added to the trigger's fire times; the refresh's next_fetch_at is "last fetch + interval"
    return timedelta(seconds=max(120, interval_minutes * 15, jitter_seconds(interval_minutes) * 2))


# -- job functions (module level, primitive arguments: they are pickled by reference into the job store) ----


def collect_feed(feed_id: int) -> None:
    """Refresh one feed when due, then check its new items at once. Errors are logged, never raised."""
    runtime = get_runtime()
    try:
        now = utcnow()
        with runtime.factory() as session:
            feed = session.get(Feed, feed_id)
            if feed is None or not feed.enabled:
                return  # the sync job removes the job
            if feed.next_fetch_at is not None and feed.next_fetch_at - now > _skip_tolerance(feed.interval_minutes):
                log.debug("feed %s not due until %s (backoff or server hint)", feed_id, feed.next_fetch_at)
                return
        result = refresh_feed(runtime.factory, runtime.settings, feed_id, now)
        if result.error:
            log.warning("feed %s (%s): %s", feed_id, result.feed_name, result.error)
        if result.new or result.updated:
            checked = check_round(runtime)
            log.info("feed %s: %d new, %d updated; %d items checked, %d flagged", feed_id, result.new,
                     result.updated, checked.items, checked.flagged)
    except MonitorError as exc:
        log.error("feed job %s failed: %s", feed_id, exc)
    except Exception:  # keep the scheduler alive; the next run tries again
        log.exception("feed job %s failed", feed_id)


def sync_jobs() -> None:
    """Job function: reconcile feed jobs with the feeds table."""
    scheduler = _scheduler
    if scheduler is None:
        return
    try:
        report = sync_feed_jobs(scheduler, get_runtime())
        if report.changed:
            log.info("feed jobs: %d added, %d removed, %d rescheduled", len(report.added), len(report.removed),
                     len(report.rescheduled))
    except Exception:
        log.exception("syncing feed jobs failed")


@dataclass
class SyncReport:
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    rescheduled: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.rescheduled)


def _trigger(interval_minutes: int) -> IntervalTrigger:
    return IntervalTrigger(minutes=interval_minutes, jitter=jitter_seconds(interval_minutes), timezone=UTC)


def sync_feed_jobs(scheduler: BaseScheduler, runtime: Runtime, now: datetime | None = None) -> SyncReport:
    """Add a job for each enabled feed without one, remove jobs of removed or paused feeds, and reschedule
    jobs whose feed interval changed. Existing jobs keep their next run time (the schedule survives)."""
    now = now or datetime.now(UTC)
    with runtime.factory() as session:
        feeds = {fid: (interval, nxt) for fid, interval, nxt in session.execute(
            select(Feed.id, Feed.interval_minutes, Feed.next_fetch_at).where(Feed.enabled.is_(True)))}
    jobs = {job.id: job for job in scheduler.get_jobs(jobstore=FEED_JOBSTORE)}
    report = SyncReport()
    for job_id, job in jobs.items():
        feed_id = int(job_id.removeprefix(JOB_PREFIX)) if job_id.startswith(JOB_PREFIX) else None
        if feed_id is None or feed_id not in feeds:
            try:
                scheduler.remove_job(job_id, jobstore=FEED_JOBSTORE)
            except JobLookupError:
                pass
            if feed_id is not None:
                report.removed.append(feed_id)
            continue
        interval = feeds[feed_id][0]
        current = getattr(job.trigger, "interval", None)
        if current != timedelta(minutes=interval):
            scheduler.reschedule_job(job_id, jobstore=FEED_JOBSTORE, trigger=_trigger(interval))
            report.rescheduled.append(feed_id)
    for feed_id, (interval, next_fetch_at) in sorted(feeds.items()):
        if feed_job_id(feed_id) in jobs:
            continue
        first = now + timedelta(seconds=random.uniform(0, min(30.0, interval * 60 / 10)))  # spread a big import
        if next_fetch_at is not None and next_fetch_at > first:
            first = next_fetch_at
        scheduler.add_job(collect_feed, _trigger(interval), args=[feed_id], id=feed_job_id(feed_id),
                          name=f"collect feed {feed_id}", jobstore=FEED_JOBSTORE, next_run_time=first,
                          misfire_grace_time=max(300, interval * 60), coalesce=True, max_instances=1,
                          replace_existing=True)
        report.added.append(feed_id)
    return report


def tick(runtime: Runtime) -> None:
    """One round over every due feed, then a check (kept for callers that want a single round)."""
    try:
        results = collect_round(runtime)
        for result in results:
            if result.error:
                log.warning("feed %s (%s): %s", result.feed_id, result.feed_name, result.error)
        checked = check_round(runtime)
        if results or checked.items:
            log.info("round: %d feeds refreshed, %d items checked, %d flagged", len(results), checked.items,
                     checked.flagged)
    except MonitorError as exc:
        log.error("scheduled round failed: %s", exc)
    except Exception:
        log.exception("scheduled round failed")


def build_scheduler(runtime: Runtime, *, blocking: bool) -> BaseScheduler:
    """A scheduler with a persistent feed job store and the sync job (first run now); registers ``runtime``
    as the process-wide runtime of the job functions."""
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(
        timezone=UTC,
        jobstores={"default": MemoryJobStore(),
                   FEED_JOBSTORE: SQLAlchemyJobStore(engine=runtime.engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=runtime.settings.fetch_workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )
    scheduler.add_job(sync_jobs, "interval", seconds=runtime.settings.scheduler_tick_seconds, id=SYNC_JOB_ID,
                      name="sync feed jobs", jobstore="default", next_run_time=datetime.now(UTC),
                      replace_existing=True)
    set_runtime(runtime, scheduler)
    return scheduler


def run_scheduler(runtime: Runtime) -> None:
    """Run the scheduler in the foreground until Ctrl-C; running jobs finish before exit."""
    scheduler = build_scheduler(runtime, blocking=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
