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
* The scheduler only decides what is due; the work goes to the executor (``MONITOR_EXECUTOR``): inline, the
  feed is refreshed in this process and its new items are checked at once; with Celery, a task is enqueued
  for the workers. A feed in backoff (or with ``Retry-After`` / ``max-age`` beyond the next tick) is skipped
  until its ``next_fetch_at``.
* Exactly one scheduler runs per database: :func:`run_scheduler` first takes the ``scheduler`` lock
  (PostgreSQL advisory lock, or a file lock beside the SQLite file); a second one waits instead of running
  every job twice.

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
from monitor.executors import Executor, make_executor
from monitor.locks import acquire_or_wait
from monitor.pipeline.collect import check_round, collect_round
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
_executor: Executor | None = None


def set_runtime(runtime: Runtime | None, scheduler: BaseScheduler | None = None,
                executor: Executor | None = None) -> None:
    """Register the process-wide runtime, scheduler and executor that job functions use."""
    global _runtime, _scheduler, _executor
    with _registry_lock:
        _runtime = runtime
        _scheduler = scheduler
        _executor = executor if executor is not None or runtime is None else make_executor(runtime)


def get_executor() -> Executor:
    if _executor is None:
        raise MonitorError("the scheduler executor is not set (start the scheduler with build_scheduler)")
    return _executor


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
        dispatch = get_executor().refresh_feeds([feed_id])
        for result in dispatch.results:
            if result.error:
                log.warning("feed %s (%s): %s", feed_id, result.feed_name, result.error)
        if dispatch.checked is not None:
            log.info("feed %s: %d new or updated items; %d checked, %d flagged", feed_id, dispatch.new_items,
                     dispatch.checked.items, dispatch.checked.flagged)
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
    new_feeds = [fid for fid in feeds if feed_job_id(fid) not in jobs]
    # a big import is spread over up to 30 s (50 ms per new feed) so its first fetches do not all start at once
    spread = min(30.0, 0.05 * len(new_feeds))
    for feed_id in sorted(new_feeds):
        interval, next_fetch_at = feeds[feed_id]
        first = now + timedelta(seconds=random.uniform(0, min(spread, interval * 60 / 10)))
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
    _add_background_jobs(scheduler, runtime)
    set_runtime(runtime, scheduler)
    return scheduler


def _watch_lock(held: object, scheduler: BaseScheduler, stop: threading.Event) -> None:
    """Stop the scheduler if its lock is lost (e.g. the PostgreSQL connection that held it dropped)."""
    while not stop.wait(30):
        if not held.still_held():  # type: ignore[attr-defined]
            log.error("the scheduler lock was lost; stopping so that another scheduler can take over")
            scheduler.shutdown(wait=False)
            return


def _add_background_jobs(scheduler: BaseScheduler, runtime: Runtime) -> None:
    """Alert delivery every minute, the daily digest and the nightly retraining (each never raises)."""
    from monitor.alerts.deliver import deliver_alerts_job
    from monitor.alerts.digest import daily_digest_job
    from monitor.pipeline.retrain import retrain_job

    settings = runtime.settings
    scheduler.add_job(deliver_alerts_job, "interval", seconds=60, args=[runtime], id="deliver-alerts",
                      name="deliver alerts", jobstore="default", replace_existing=True)
    scheduler.add_job(daily_digest_job, "cron", hour=settings.digest_hour, minute=0, args=[runtime],
                      id="daily-digest", name="daily digest", jobstore="default", replace_existing=True,
                      misfire_grace_time=3600)
    scheduler.add_job(retrain_job, "cron", hour=settings.retrain_hour, minute=0, args=[runtime], id="retrain",
                      name="nightly retraining", jobstore="default", replace_existing=True,
                      misfire_grace_time=3 * 3600)


def run_scheduler(runtime: Runtime, stop: threading.Event | None = None, *, blocking: bool = True,
                  poll_seconds: float = 5.0) -> BaseScheduler | None:
    """Take the scheduler lock (waiting while another scheduler holds it), then run the scheduler.

    Blocking: runs until Ctrl-C or ``stop``; running jobs finish before exit. Non-blocking: starts a
    background scheduler and returns it (the caller shuts it down), or None when stopped while waiting.
    """
    stop = stop or threading.Event()
    held = acquire_or_wait(runtime.engine, "scheduler", poll_seconds=poll_seconds, stop_event=stop)
    if held is None:
        return None
    scheduler = build_scheduler(runtime, blocking=blocking)
    watcher = threading.Thread(target=_watch_lock, args=(held, scheduler, stop), daemon=True,
                               name="scheduler-lock")
    if not blocking:
        scheduler.start()
        watcher.start()
        _release_on_shutdown(scheduler, held, stop)
        return scheduler
    watcher.start()
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        stop.set()
        held.release()
    return scheduler


def _release_on_shutdown(scheduler: BaseScheduler, held: object, stop: threading.Event) -> None:
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

    def release(_event: object) -> None:
        stop.set()
        held.release()  # type: ignore[attr-defined]

    scheduler.add_listener(release, EVENT_SCHEDULER_SHUTDOWN)
