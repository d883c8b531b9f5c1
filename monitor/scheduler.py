"""The scheduler process: APScheduler runs one tick job that collects due feeds and checks new items.

The job only calls pipeline functions. It never runs inside a dashboard worker: ``monitor scheduler`` runs it
alone, ``monitor run`` runs it beside the WSGI server in the same process but outside its request threads.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from monitor.errors import MonitorError
from monitor.pipeline.collect import check_round, collect_round
from monitor.runtime import Runtime

log = logging.getLogger(__name__)


def tick(runtime: Runtime) -> None:
    """One scheduled round: refresh due feeds, then check what is new. Errors are logged, never raised."""
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
    except Exception:  # keep the scheduler alive; the next tick tries again
        log.exception("scheduled round failed")


def build_scheduler(runtime: Runtime, *, blocking: bool) -> BaseScheduler:
    """A scheduler with the tick job, first run now; coalesced so a slow round is never run twice at once."""
    cls = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = cls(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
    scheduler.add_job(tick, "interval", seconds=runtime.settings.scheduler_tick_seconds, args=[runtime],
                      id="tick", name="collect and check", next_run_time=datetime.now(UTC))
    return scheduler


def run_scheduler(runtime: Runtime) -> None:
    """Run the scheduler in the foreground until Ctrl-C; a round in progress finishes before exit."""
    scheduler = build_scheduler(runtime, blocking=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
