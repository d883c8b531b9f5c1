"""Celery tasks: ``monitor.refresh_feed(feed_id)`` and ``monitor.check_items()``.

Both only call the pipeline's use-case functions (:func:`monitor.pipeline.refresh.refresh_feed`,
:func:`monitor.pipeline.process.process_new_items`). What makes them safe to run on many workers:

* Idempotence. A refresh delivered twice stores nothing twice: items are unique per (feed, guid) and per
  canonical URL, and ``refresh_feed`` re-runs its store step on a uniqueness conflict (the second run sees
  the rows of the first as unchanged). Checking is serialised across all workers by the ``check`` lock
  (PostgreSQL advisory lock / SQLite file lock, released by the kernel or server if the worker dies), so two
  workers never judge the same unchecked items at once; a check asked for while another runs sets a Redis
  "pending" flag that the running one honours before it lets go of the lock.
* Acknowledgement after commit (``acks_late``); a task that fails on a transient error (database
  unreachable, Redis hiccup, a uniqueness race) is retried with exponential backoff and jitter.
* Per-host politeness across workers: :class:`RedisHostLimiter` (a Redis sorted-set semaphore per host whose
  slots expire, so a killed worker cannot hold one forever) is handed to ``refresh_feed`` as its limiter,
  and so is taken around every fetch, including full-text article fetches.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import shared_task
from celery.exceptions import Retry
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from monitor.celery_app import TASK_CHECK, TASK_REFRESH, key_prefix, redis_client
from monitor.config import Settings, load_settings
from monitor.errors import MonitorError
from monitor.pipeline.process import process_new_items
from monitor.pipeline.refresh import HOST_LIMITER, HostLimiter, refresh_feed
from monitor.runtime import Runtime, open_runtime
from monitor.storage.tables import Feed, utcnow

log = logging.getLogger(__name__)

#: Longest wait for a per-host slot of a full-text article fetch (then that article keeps the feed's text).
HOST_WAIT_SECONDS = 60.0
#: Longest wait for the feed host's slot before the task is put back with a delay (the host is busy).
HOST_FIRST_WAIT_SECONDS = 5.0
#: ``RefreshResult.error`` text of ``refresh_feed`` when the database itself failed (nothing stored).
_DATABASE_ERROR = "database error:"

try:  # redis is a dependency of celery[redis]; keep the module importable without it
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    TRANSIENT: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, IntegrityError,
                                                  RedisConnectionError, RedisTimeoutError)
except ImportError:  # pragma: no cover
    TRANSIENT = (OperationalError, InterfaceError, IntegrityError)


def queued_key(settings: Settings, feed_id: int) -> str:
    return f"{key_prefix(settings)}queued:{feed_id}"


def pending_check_key(settings: Settings) -> str:
    return f"{key_prefix(settings)}check:pending"


def backoff_seconds(retries: int, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter: up to base * 2**retries, capped."""
    return random.uniform(base / 2, min(cap, base * 2 ** retries))


# -- the worker process's runtime ---------------------------------------------------------------------------

_state_lock = threading.Lock()
_state: dict[str, Any] = {}


def _settings(task: Any) -> Settings:
    settings = getattr(task.app.conf, "monitor_settings", None)
    return settings if isinstance(settings, Settings) else load_settings()


_preloaded: dict[str, Any] = {}


def preload_model(settings: Settings) -> None:
    """Load the classifier in the worker's main process, before the pool forks (shared, copy-on-write).
    A model that does not load is reported by the first check task instead."""
    runtime = open_runtime(settings)
    try:
        _preloaded["model"] = runtime.model
    except Exception as exc:
        log.error("the classifier could not be preloaded: %s", exc)
    finally:
        runtime.close()


def worker_runtime(task: Any) -> Runtime:
    """One Runtime per worker process, made after the fork (engines must not cross a fork)."""
    with _state_lock:
        if _state.get("pid") != os.getpid():
            _state.clear()
            settings = _settings(task)
            threads = getattr(task.app.conf, "monitor_worker_threads", None)
            if threads:
                from threadpoolctl import threadpool_limits

                _state["threadpool_limits"] = threadpool_limits(limits=threads)
            runtime = open_runtime(settings)
            if "model" in _preloaded:
                runtime._model = _preloaded["model"]  # the Runtime still swaps in a newly promoted version
            _state.update(pid=os.getpid(), runtime=runtime, redis=redis_client(settings))
            limit_redis = _state["redis"]
            _state["limiter"] = (RedisHostLimiter(limit_redis, settings.host_concurrency,
                                                  settings.host_lock_seconds, prefix=key_prefix(settings))
                                 if limit_redis is not None else HOST_LIMITER)
        runtime: Runtime = _state["runtime"]
        return runtime


def _redis() -> Any:
    return _state.get("redis")


def _limiter() -> HostLimiter:
    limiter: HostLimiter = _state.get("limiter") or HOST_LIMITER
    return limiter


# -- per-host politeness across workers --------------------------------------------------------------------

_ACQUIRE = """
local key, now, expires, limit, token = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, expires, token)
  redis.call('PEXPIRE', key, math.ceil((expires - now) * 1000) + 1000)
  return 1
end
return 0
"""


class HostBusy(MonitorError):
    """No per-host slot came free in time; the task is retried later."""


class RedisHostLimiter(HostLimiter):
    """At most ``limit`` fetches at once per host across every worker on every machine.

    Each holder adds a token to the host's sorted set scored by its expiry; expired tokens (a worker killed
    while fetching) are dropped before counting, so a slot is never lost for longer than ``ttl`` seconds."""

    def __init__(self, client: Any, limit: int, ttl: float, *, prefix: str = "monitor:",
                 wait: float = HOST_WAIT_SECONDS, poll: float = 0.05) -> None:
        super().__init__(limit)
        self.prefix = prefix
        self.client = client
        self.ttl = ttl
        self.wait = wait
        self.poll = poll
        self._script = client.register_script(_ACQUIRE)

    def key(self, host: str) -> str:
        return f"{self.prefix}host:{host}"

    def try_acquire(self, host: str, token: str) -> bool:
        now = time.time()
        return bool(self._script(keys=[self.key(host)], args=[now, now + self.ttl, self.limit, token]))

    def release(self, host: str, token: str) -> None:
        self.client.zrem(self.key(host), token)

    def acquire(self, host: str, wait: float | None = None) -> str | None:
        """A slot token for ``host``, waiting up to ``wait`` seconds (default: ``self.wait``); None if busy."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        delay = self.poll
        while not self.try_acquire(host, token):
            if time.monotonic() >= deadline:
                return None
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 1.0)
        with self._lock:
            self._active[host] = self._active.get(host, 0) + 1
            self.peak[host] = max(self.peak.get(host, 0), self._active[host])
        return token

    def give_back(self, host: str, token: str) -> None:
        with self._lock:
            self._active[host] = self._active.get(host, 1) - 1
        try:
            self.release(host, token)
        except Exception:  # the slot expires on its own
            log.warning("could not release the fetch slot of %s", host, exc_info=True)

    @contextmanager
    def hold(self, url: str) -> Iterator[None]:
        host = self.host_of(url)
        token = self.acquire(host)
        if token is None:
            raise HostBusy(f"{host} is busy: {self.limit} fetches already running against it")
        try:
            yield
        finally:
            self.give_back(host, token)


class HeldHostLimiter(HostLimiter):
    """The limiter handed to ``refresh_feed`` by a task that already holds a slot of the feed's host: fetches
    against that host use the held slot, fetches against other hosts (full-text articles) take their own."""

    def __init__(self, base: HostLimiter, host: str) -> None:
        super().__init__(base.limit)
        self.base = base
        self.host = host

    @contextmanager
    def hold(self, url: str) -> Iterator[None]:
        if self.host_of(url) == self.host:
            yield
        else:
            with self.base.hold(url):
                yield


# -- tasks ---------------------------------------------------------------------------------------------------


def _retry(task: Any, exc: BaseException) -> Retry:
    settings = _settings(task)
    countdown = backoff_seconds(task.request.retries)
    log.warning("%s %s: transient error (%s: %s); retry %d/%d in %.0f s", task.name, task.request.args,
                type(exc).__name__, exc, task.request.retries + 1, settings.task_max_retries, countdown)
    return task.retry(exc=exc, countdown=countdown, max_retries=settings.task_max_retries)


@shared_task(bind=True, name=TASK_REFRESH, acks_late=True, reject_on_worker_lost=True)
def refresh_feed_task(self: Any, feed_id: int, enqueued_at: float | None = None, check: bool = True
                      ) -> dict[str, Any]:
    """Refresh one feed; when it brought new or changed items, ask for a check."""
    runtime = worker_runtime(self)
    started = time.time()
    client = _redis()
    limiter = _limiter()
    try:
        if client is not None:
            client.delete(queued_key(runtime.settings, feed_id))
        with runtime.factory() as session:
            url = session.scalar(select(Feed.url).where(Feed.id == feed_id))
        if url is None:
            log.info("refresh of feed %s skipped: the feed no longer exists", feed_id)
            return {"feed_id": feed_id, "skipped": "the feed no longer exists"}
        if isinstance(limiter, RedisHostLimiter):
            # take the host's slot before touching the feed: a busy host puts the task back, not a failure
            host = limiter.host_of(url)
            token = limiter.acquire(host, wait=HOST_FIRST_WAIT_SECONDS)
            if token is None:
                raise self.retry(countdown=backoff_seconds(self.request.retries, base=2.0, cap=60.0),
                                 max_retries=None)
            try:
                result = refresh_feed(runtime.factory, runtime.settings, feed_id, utcnow(),
                                      limiter=HeldHostLimiter(limiter, host))
            finally:
                limiter.give_back(host, token)
        else:
            result = refresh_feed(runtime.factory, runtime.settings, feed_id, utcnow(), limiter=limiter)
    except Retry:
        raise
    except TRANSIENT as exc:
        raise _retry(self, exc) from exc
    except MonitorError as exc:  # the feed was removed meanwhile: nothing to do
        log.info("refresh of feed %s skipped: %s", feed_id, exc)
        return {"feed_id": feed_id, "skipped": str(exc)}
    if result.error and result.error.startswith(_DATABASE_ERROR):
        raise _retry(self, OperationalError(result.error, None, Exception(result.error)))
    if check and (result.new or result.updated):
        self.app.send_task(TASK_CHECK, kwargs={"requested_at": time.time()})
    return {"feed_id": feed_id, "new": result.new, "updated": result.updated, "error": result.error,
            "queue_seconds": round(started - enqueued_at, 3) if enqueued_at else None}


@shared_task(bind=True, name=TASK_CHECK, acks_late=True, reject_on_worker_lost=True)
def check_items_task(self: Any, requested_at: float | None = None) -> dict[str, Any]:
    """Check every unchecked item, one worker at a time (others leave a "pending" flag and return)."""
    from monitor.locks import try_lock

    runtime = worker_runtime(self)
    client = _redis()
    settings = runtime.settings
    totals = {"items": 0, "claims": 0, "matches": 0, "flagged": 0}
    try:
        if client is not None:
            client.set(pending_check_key(settings), "1")
        while True:
            held = try_lock(runtime.engine, "check")
            if held is None:
                return {**totals, "skipped": "another worker is checking; it will check again"}
            try:
                while client is None or client.getdel(pending_check_key(settings)) is not None:
                    result = process_new_items(runtime.factory, runtime.model, top_k=settings.check_top_k,
                                               threshold=settings.flag_threshold,
                                               unexplained_threshold=settings.flag_threshold_unexplained,
                                               min_relevance=settings.flag_min_relevance,
                                               batch_size=settings.check_batch_size)
                    for key in totals:
                        totals[key] += getattr(result, key)
                    if client is None:
                        break
            finally:
                held.release()
            if client is None or not client.exists(pending_check_key(settings)):
                return totals
    except TRANSIENT as exc:
        if client is not None:
            try:
                client.set(pending_check_key(settings), "1")
            except Exception:
                log.debug("could not set the pending-check flag", exc_info=True)
        raise _retry(self, exc) from exc
