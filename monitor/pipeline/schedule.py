"""When to fetch a feed next: pure functions of the feed state and ``now`` (no I/O)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta


def next_after_success(now: datetime, interval_minutes: int, max_age: float | None = None) -> datetime:
    """The next fetch after a success; ``Cache-Control: max-age`` is a lower bound on the wait."""
    wait = timedelta(minutes=interval_minutes)
    if max_age is not None and max_age > wait.total_seconds():
        wait = timedelta(seconds=min(max_age, 7 * 24 * 3600))
    return now + wait


def next_after_error(now: datetime, error_count: int, interval_minutes: int, cap_minutes: int,
                     retry_after: float | None = None, rng: random.Random | None = None) -> datetime:
    """Exponential backoff with full jitter on top of the normal interval, capped; ``Retry-After`` is a floor."""
    rng = rng or random.Random()
    base = interval_minutes * 60.0
    backoff = min(cap_minutes * 60.0, base * (2 ** max(0, error_count - 1)))
    wait = base + rng.uniform(0, max(0.0, backoff - base))
    if retry_after is not None:
        wait = max(wait, min(retry_after, cap_minutes * 60.0))
    return now + timedelta(seconds=wait)
