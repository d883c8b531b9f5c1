"""A small in-process limiter of failed logins: at most N failures per key within a sliding window.

It lives in the memory of one process (waitress runs threads, not processes, so that is the whole app).
Restarting the process forgets it; that is acceptable for a brake on password guessing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable


class FailureLimiter:
    """Counts failures per key; ``blocked(key)`` is true once ``max_failures`` fell within ``window`` seconds."""

    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: Hashable, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def blocked(self, key: Hashable) -> bool:
        with self._lock:
            times = self._recent(key, self.clock())
            return times is not None and len(times) >= self.max_failures

    def retry_after(self, key: Hashable) -> int:
        """Seconds until the oldest counted failure leaves the window (0 when not blocked)."""
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if times is None or len(times) < self.max_failures:
                return 0
            return max(1, int(times[0] + self.window - now) + 1)

    def fail(self, key: Hashable) -> None:
        with self._lock:
            now = self.clock()
            if len(self._failures) >= self.max_keys:
                for old in list(self._failures):  # forget expired keys so memory stays bounded
                    self._recent(old, now)
                while len(self._failures) >= self.max_keys:  # still full: drop the oldest keys
                    del self._failures[next(iter(self._failures))]
            self._failures.setdefault(key, deque()).append(now)

    def reset(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)
