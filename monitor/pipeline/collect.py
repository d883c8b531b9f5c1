"""One collection round: refresh many feeds at once with a bounded pool and a per-host limit, then check.

Feeds are interleaved by host before they are handed to the pool, so workers are not all parked on the
per-host semaphore of one big site while other hosts wait. Checking is serialised in-process by
:data:`CHECK_LOCK`: two checks at once (a scheduler job and a CLI round, or two feed jobs) would judge the
same unchecked items twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import select

from monitor.pipeline.process import CheckResult, process_new_items
from monitor.pipeline.refresh import HostLimiter, RefreshResult, due_feed_ids, host_limiter, refresh_feed
from monitor.runtime import Runtime
from monitor.storage.tables import Feed, utcnow

#: Held while new items are checked; shared by every round and scheduler job of the process.
CHECK_LOCK = threading.Lock()


def interleave_by_host(feeds: Sequence[tuple[int, str]]) -> list[int]:
    """Feed ids reordered round-robin over their hosts (order within a host kept)."""
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for feed_id, url in feeds:
        groups.setdefault(HostLimiter.host_of(url), []).append(feed_id)
    ordered: list[int] = []
    queues = [list(reversed(ids)) for ids in groups.values()]
    while queues:
        for queue in queues:
            ordered.append(queue.pop())
        queues = [q for q in queues if q]
    return ordered


def collect_round(runtime: Runtime, feed_ids: Sequence[int] | None = None, now: datetime | None = None, *,
                  limiter: HostLimiter | None = None, workers: int | None = None) -> list[RefreshResult]:
    """Refresh the given feeds (default: every due feed); results come back in the order given."""
    now = now or utcnow()
    if feed_ids is None:
        with runtime.factory() as session:
            feed_ids = due_feed_ids(session, now)
    if not feed_ids:
        return []
    with runtime.factory() as session:
        urls: dict[int, str] = {}
        for start in range(0, len(feed_ids), 1000):
            chunk = list(feed_ids[start:start + 1000])
            urls.update((fid, url) for fid, url in session.execute(select(Feed.id, Feed.url)
                                                                    .where(Feed.id.in_(chunk))))
    order = interleave_by_host([(fid, urls.get(fid, "")) for fid in feed_ids])
    limiter = limiter or host_limiter(runtime.settings.host_concurrency)
    size = max(1, min(workers or runtime.settings.fetch_workers, len(order)))
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="fetch") as pool:
        results = dict(zip(order, pool.map(
            lambda fid: refresh_feed(runtime.factory, runtime.settings, fid, now, limiter=limiter), order)))
    return [results[fid] for fid in feed_ids]


def check_round(runtime: Runtime, now: datetime | None = None) -> CheckResult:
    """Check every item not yet checked with the current classifier.

    One check at a time: within the process by :data:`CHECK_LOCK`, across processes on the same database
    (a scheduler and a ``monitor check``, or Celery workers) by the ``check`` database lock.
    """
    from monitor.locks import acquire_or_wait

    settings = runtime.settings
    with CHECK_LOCK:
        held = acquire_or_wait(runtime.engine, "check", poll_seconds=0.5)
        try:
            return process_new_items(runtime.factory, runtime.model, top_k=settings.check_top_k,
                                     threshold=settings.flag_threshold,
                                     unexplained_threshold=settings.flag_threshold_unexplained,
                                     batch_size=settings.check_batch_size,
                                     now=now)
        finally:
            if held is not None:
                held.release()
