"""One collection round: refresh many feeds at once with a bounded pool, then check the new items."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from monitor.pipeline.process import CheckResult, process_new_items
from monitor.pipeline.refresh import RefreshResult, due_feed_ids, refresh_feed
from monitor.runtime import Runtime
from monitor.storage.tables import utcnow


def collect_round(runtime: Runtime, feed_ids: Sequence[int] | None = None,
                  now: datetime | None = None) -> list[RefreshResult]:
    """Refresh the given feeds (default: every due feed); results come back in feed order."""
    now = now or utcnow()
    if feed_ids is None:
        with runtime.factory() as session:
            feed_ids = due_feed_ids(session, now)
    if not feed_ids:
        return []
    workers = max(1, min(runtime.settings.fetch_workers, len(feed_ids)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return list(pool.map(lambda fid: refresh_feed(runtime.factory, runtime.settings, fid, now), feed_ids))


def check_round(runtime: Runtime, now: datetime | None = None) -> CheckResult:
    """Check every item not yet checked with the current classifier."""
    settings = runtime.settings
    return process_new_items(runtime.factory, runtime.model, top_k=settings.check_top_k,
                             threshold=settings.flag_threshold, now=now)
