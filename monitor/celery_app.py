"""The Celery application of production mode (``MONITOR_EXECUTOR=celery``): a Redis broker, JSON only.

Delivery guarantees: a task is acknowledged only after it returned (``task_acks_late``), so the work it
committed is never lost; a worker process that dies mid-task has its message put back
(``task_reject_on_worker_lost``; with Redis, a whole worker that dies has its unacknowledged messages
restored after ``task_visibility_timeout``). A task may therefore run twice: every task is idempotent (the
unique constraints on items and matches, the per-feed and check locks in :mod:`monitor.tasks`).
``worker_prefetch_multiplier=1`` keeps one waiting message per worker process, so a slow feed does not hold
others back.

Celery is imported only here and in :mod:`monitor.tasks`: the default inline mode needs neither it nor Redis.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from monitor.config import Settings

if TYPE_CHECKING:
    from celery import Celery

TASK_REFRESH = "monitor.refresh_feed"
TASK_CHECK = "monitor.check_items"


def key_prefix(settings: Settings) -> str:
    """Prefix of the monitor's own Redis keys (per-host slots, queued-feed markers, the pending-check flag):
    the queue name, so that several monitors can share one Redis."""
    return f"{settings.task_queue}:"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings of the monitor (exposed for tests and ``monitor doctor``)."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        # a message whose worker died is put back once the visibility timeout has passed; kombu sweeps for such
        # messages every unacked_restore_interval x unacked_restore_throttle seconds (100 s by default), so a
        # short visibility timeout would still wait ~100 s: sweep at most every 10 s, sooner for short timeouts
        "broker_transport_options": {"visibility_timeout": settings.task_visibility_timeout,
                                     "unacked_restore_interval": max(1, min(10, settings.task_visibility_timeout // 3)),
                                     "unacked_restore_throttle": 1},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": settings.task_queue,
        "task_create_missing_queues": True,
        "worker_send_task_events": False,
        "worker_hijack_root_logger": False,
        "enable_utc": True,
        "timezone": "UTC",
    }


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings``, with the monitor's tasks registered and the settings attached
    (``app.conf.monitor_settings``) for the worker processes."""
    from celery import Celery

    app = Celery("monitor", set_as_current=True)
    app.conf.update(celery_config(settings))
    app.conf.monitor_settings = settings
    import monitor.tasks  # noqa: F401  (registers the shared tasks on this app)

    return app


def redis_client(settings: Settings) -> Any:
    """A Redis client on the broker's database (None when the broker is not Redis)."""
    if not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
        return None
    import redis

    return redis.Redis.from_url(settings.broker_url, socket_connect_timeout=5, socket_timeout=10,
                                health_check_interval=30)


def start_worker(settings: Settings, *, concurrency: int | None = None, pool: str = "prefork",
                 loglevel: str = "INFO", hostname: str | None = None) -> None:
    """Run a Celery worker in the foreground (``monitor worker``) until it is stopped."""
    app = make_celery(settings)
    processes = concurrency or settings.worker_concurrency
    # numeric libraries in each task process get a share of the CPUs, not all of them each
    app.conf.monitor_worker_threads = max(1, (os.cpu_count() or 1) // processes)
    from monitor.tasks import preload_model

    preload_model(settings)  # before the fork: task processes share it and start at once
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={processes}",
            f"--pool={pool}", f"--queues={settings.task_queue}", "--without-gossip", "--without-mingle"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)
