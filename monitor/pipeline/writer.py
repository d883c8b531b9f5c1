"""``BatchWriter``: one thread that stores what the fetch threads hand it, several feeds per transaction.

A round's fetch threads used to store their own feed, one transaction each, queueing on the SQLite write
lock while holding a thread of the pool; with many threads the write lock then changed hands through the
GIL on every statement. Here one thread owns the writes: it takes every fetched feed waiting in its queue
(at most :data:`MAX_BATCH_FEEDS` feeds or :data:`MAX_BATCH_ITEMS` items) and stores them with one
``store`` call (:func:`~monitor.pipeline.refresh.store_batch`: one transaction, whole feeds). When the
fetches are slow, batches are small and each feed is stored as soon as it arrives; when the writer falls
behind, batches grow and it catches up. The queue is bounded, so fetch threads wait instead of piling up
parsed feeds in memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import TracebackType

from monitor.pipeline.refresh import Fetched, RefreshResult

log = logging.getLogger(__name__)

#: Feeds stored in one transaction at most.
MAX_BATCH_FEEDS = 64
#: Parsed items stored in one transaction at most (a batch always takes at least one feed).
MAX_BATCH_ITEMS = 5000
#: Fetched feeds waiting for the writer at most; a fetch thread handing in one more waits.
QUEUE_SIZE = 256

StoreFunction = Callable[[Sequence[Fetched]], list[RefreshResult]]


class BatchWriter:
    """Stores :class:`Fetched` feeds from any thread on one writer thread; ``submit`` returns a future."""

    def __init__(self, store: StoreFunction, *, max_feeds: int = MAX_BATCH_FEEDS,
                 max_items: int = MAX_BATCH_ITEMS, queue_size: int = QUEUE_SIZE) -> None:
        self._store = store
        self._max_feeds = max(1, max_feeds)
        self._max_items = max(1, max_items)
        self._queue: queue.Queue[tuple[Fetched, Future[RefreshResult]] | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="store", daemon=True)
        self._thread.start()
        self.batches = 0

    def submit(self, fetched: Fetched) -> Future[RefreshResult]:
        future: Future[RefreshResult] = Future()
        self._queue.put((fetched, future))
        return future

    def close(self) -> None:
        """Store everything submitted so far, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @staticmethod
    def _items(fetched: Fetched) -> int:
        return len(fetched.parsed.items) if fetched.parsed is not None else 0

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            items = self._items(first[0])
            while len(batch) < self._max_feeds and items < self._max_items:
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                if entry is None:
                    stopping = True
                    break
                batch.append(entry)
                items += self._items(entry[0])
            self._write(batch)

    def _write(self, batch: list[tuple[Fetched, Future[RefreshResult]]]) -> None:
        self.batches += 1
        try:
            results = self._store([fetched for fetched, _ in batch])
        except BaseException as exc:  # store_batch never raises; a bug must still reach the waiting caller
            log.exception("storing a batch of %d feeds failed", len(batch))
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)
