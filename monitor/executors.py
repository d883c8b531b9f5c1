"""Where the scheduler's work runs: in its own process (``inline``) or on Celery workers (``celery``).

The scheduler decides *what* is due; it then calls one of two methods of the executor that
:func:`make_executor` built from ``MONITOR_EXECUTOR``:

* ``executor.refresh_feeds(feed_ids)``: refresh these feeds; items they bring are checked afterwards.
* ``executor.check_items()``: check every item not yet checked.

``InlineExecutor`` calls the pipeline functions at once, in this process (a bounded thread pool and the
process-wide per-host limiter), and returns their results. ``CeleryExecutor`` only enqueues
``monitor.refresh_feed(feed_id)`` / ``monitor.check_items()`` on the broker and returns at once; a feed that
already waits in the queue is not enqueued a second time. Celery is imported only by ``CeleryExecutor``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from monitor.config import Settings
from monitor.pipeline.collect import check_round, collect_round
from monitor.pipeline.process import CheckResult
from monitor.pipeline.refresh import RefreshResult
from monitor.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Dispatch:
    """What an executor call did: run inline (``results``/``checked``) or enqueued (``enqueued``/``skipped``)."""

    mode: str
    results: list[RefreshResult] = field(default_factory=list)
    checked: CheckResult | None = None
    enqueued: int = 0
    skipped: int = 0  # already waiting in the queue

    @property
    def new_items(self) -> int:
        return sum(r.new + r.updated for r in self.results)


class Executor(Protocol):
    mode: str

    def refresh_feeds(self, feed_ids: Sequence[int], *, check: bool = True) -> Dispatch: ...

    def check_items(self) -> Dispatch: ...

    def close(self) -> None: ...


class InlineExecutor:
    """Runs refreshes and checks in this process (no broker): :func:`collect_round` and :func:`check_round`,
    whose check is serialised within the process and, by the ``check`` database lock, across processes."""

    mode = "inline"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def refresh_feeds(self, feed_ids: Sequence[int], *, check: bool = True) -> Dispatch:
        dispatch = Dispatch(self.mode, results=collect_round(self.runtime, list(dict.fromkeys(feed_ids))))
        if check and dispatch.new_items:
            dispatch.checked = check_round(self.runtime)
        return dispatch

    def check_items(self) -> Dispatch:
        return Dispatch(self.mode, checked=check_round(self.runtime))

    def close(self) -> None:
        pass


class CeleryExecutor:
    """Enqueues tasks for ``monitor worker`` processes (any number, on any machine)."""

    mode = "celery"

    def __init__(self, settings: Settings, app: Any = None) -> None:
        self.settings = settings
        self._app = app
        self._redis: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        with self._lock:
            if self._app is None:
                from monitor.celery_app import make_celery

                self._app = make_celery(self.settings)
            return self._app

    def _client(self) -> Any:
        if self._redis is None:
            from monitor.celery_app import redis_client

            self._redis = redis_client(self.settings)
        return self._redis

    def refresh_feeds(self, feed_ids: Sequence[int], *, check: bool = True) -> Dispatch:
        from monitor.celery_app import TASK_REFRESH
        from monitor.tasks import queued_key

        client = self._client()
        dispatch = Dispatch(self.mode)
        for feed_id in dict.fromkeys(feed_ids):
            # a feed still waiting in the queue is not enqueued again (the marker expires with the
            # visibility timeout, so a lost message cannot keep its feed out for longer than that)
            if client is not None and not client.set(queued_key(self.settings, feed_id), "1", nx=True,
                                                     ex=self.settings.task_visibility_timeout):
                dispatch.skipped += 1
                continue
            try:
                self.app.send_task(TASK_REFRESH, args=[int(feed_id)],
                                   kwargs={"enqueued_at": time.time(), "check": check})
            except Exception:
                if client is not None:
                    client.delete(queued_key(self.settings, feed_id))
                raise
            dispatch.enqueued += 1
        return dispatch

    def check_items(self) -> Dispatch:
        from monitor.celery_app import TASK_CHECK

        self.app.send_task(TASK_CHECK, kwargs={"requested_at": time.time()})
        return Dispatch(self.mode, enqueued=1)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()


def make_executor(runtime: Runtime) -> Executor:
    """The executor named by ``MONITOR_EXECUTOR`` (``inline`` by default)."""
    if runtime.settings.executor == "celery":
        return CeleryExecutor(runtime.settings)
    return InlineExecutor(runtime)
