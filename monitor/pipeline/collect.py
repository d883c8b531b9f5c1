"""One collection round: refresh many feeds at once with a bounded pool and a per-host limit, then check.

Feeds are interleaved by host before they are handed to the pool, so workers are not all parked on the
per-host semaphore of one big site while other hosts wait. Checking is serialised in-process by
:data:`CHECK_LOCK`: two checks at once (a scheduler job and a CLI round, or two feed jobs) would judge the
same unchecked items twice.

Parsing (feedparser, HTML cleaning, language) is pure CPU and holds the GIL, so in a round of at least
:data:`PARALLEL_PARSE_MIN_FEEDS` feeds on a machine with more than one core it runs in a pool of worker
processes (one per core, started fresh for the round with ``spawn``): the threads fetch and hand each
fetched body to :class:`ParsePool`, then the parsed feed to the round's :class:`BatchWriter`. A parse that
raises in a worker raises the same error in the thread; a broken pool (a worker killed) falls back to
parsing in the thread.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import datetime

from monitor.collectors.feeds import parse_feed, prepare_worker
from monitor.collectors.http import Fetcher
from monitor.errors import MonitorError
from monitor.pipeline.process import CheckResult, process_new_items
from monitor.pipeline.refresh import (HostLimiter, RefreshResult, due_feed_ids, fetch_feed, host_limiter,
                                      load_states, store_batch)
from monitor.pipeline.writer import BatchWriter
from monitor.records import ParsedFeed
from monitor.runtime import Runtime
from monitor.storage.tables import utcnow

log = logging.getLogger(__name__)

#: Held while new items are checked; shared by every round and scheduler job of the process.
CHECK_LOCK = threading.Lock()
#: Smaller rounds parse in their threads: starting worker processes (~0.5 s) would cost more than it saves.
PARALLEL_PARSE_MIN_FEEDS = 32
#: At most this many parse processes, whatever the core count.
MAX_PARSE_PROCESSES = 8


def parse_processes(feeds: int) -> int:
    """Parse processes for a round of ``feeds`` feeds: one per usable core, none on one core or few feeds."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    if cores < 2 or feeds < PARALLEL_PARSE_MIN_FEEDS:
        return 0
    return min(cores, MAX_PARSE_PROCESSES)


class ParsePool:
    """``parse_feed`` run in worker processes; call it like ``parse_feed`` from any thread."""

    def __init__(self, processes: int) -> None:
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=prepare_worker)
        self._broken = False

    def __call__(self, body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
        if not self._broken:
            try:
                future = self._pool.submit(parse_feed, body, dict(headers), url)
            except (BrokenProcessPool, RuntimeError):  # broken, or already shut down
                self._fall_back()
            else:
                try:
                    return future.result()  # a ParseError raised in the worker is raised here
                except BrokenProcessPool:
                    self._fall_back()
        return parse_feed(body, headers, url)

    def _fall_back(self) -> None:
        if not self._broken:
            log.warning("parse worker processes unavailable; parsing in the collector process for this round")
        self._broken = True

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_FROZEN = [0]  # rounds running with the collector frozen (see _gc_frozen)
_FROZEN_LOCK = threading.Lock()


@contextmanager
def _gc_frozen(feeds: int) -> Iterator[None]:
    """During a round of at least :data:`PARALLEL_PARSE_MIN_FEEDS` feeds, keep the objects that existed
    before it (modules, the ORM's registries, the classifier) out of the garbage collector's passes
    (``gc.freeze``): they are not garbage, and scanning them again on every full collection took about a
    tenth of the collecting process's CPU. The first of concurrent rounds freezes, the last one unfreezes."""
    if feeds < PARALLEL_PARSE_MIN_FEEDS:
        yield
        return
    with _FROZEN_LOCK:
        _FROZEN[0] += 1
        if _FROZEN[0] == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _FROZEN_LOCK:
            _FROZEN[0] -= 1
            if _FROZEN[0] == 0:
                gc.unfreeze()


@contextmanager
def _parser(processes: int) -> Iterator[ParsePool | None]:
    if processes < 1:
        yield None
        return
    pool = ParsePool(processes)
    try:
        yield pool
    finally:
        pool.close()


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
                  limiter: HostLimiter | None = None, workers: int | None = None,
                  processes: int | None = None) -> list[RefreshResult]:
    """Refresh the given feeds (default: every due feed); results come back in the order given.

    The feeds' states are read in one query; a bounded thread pool fetches through one
    :class:`~monitor.collectors.http.Fetcher` (connections kept per host and vetted address) and hands bodies
    to the parse processes, and one :class:`BatchWriter` thread stores the fetched feeds, several per
    transaction.
    ``processes``: parse worker processes (default :func:`parse_processes`; 0 parses in the threads)."""
    now = now or utcnow()
    if feed_ids is None:
        with runtime.factory() as session:
            feed_ids = due_feed_ids(session, now)
    if not feed_ids:
        return []
    factory, settings = runtime.factory, runtime.settings
    states = load_states(factory, feed_ids, now)
    order = interleave_by_host([(fid, states[fid].url if fid in states else "") for fid in feed_ids])
    limiter = limiter or host_limiter(settings.host_concurrency)
    size = max(1, min(workers or settings.fetch_workers, len(order)))

    def fetch_one(feed_id: int, parse: ParsePool | None, writer: BatchWriter) -> Future[RefreshResult]:
        started = time.monotonic()
        state = states.get(feed_id)
        if state is None:
            raise MonitorError(f"feed {feed_id} does not exist")
        return writer.submit(fetch_feed(factory, settings, feed_id, state, now, started, limiter=limiter,
                                        parse=parse, client=fetcher))

    with _gc_frozen(len(order)), \
            _parser(parse_processes(len(order)) if processes is None else processes) as parse, \
            Fetcher(settings.user_agent) as fetcher, \
            BatchWriter(lambda batch: store_batch(factory, settings, batch)) as writer, \
            ThreadPoolExecutor(max_workers=size, thread_name_prefix="fetch") as pool:
        stored = dict(zip(order, pool.map(lambda fid: fetch_one(fid, parse, writer), order)))
    return [stored[fid].result() for fid in feed_ids]


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
                                     min_relevance=settings.flag_min_relevance,
                                     batch_size=settings.check_batch_size,
                                     now=now)
        finally:
            if held is not None:
                held.release()
