"""Locks between processes that share one database: exactly one scheduler, one check at a time.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock(namespace, key)``) held on a dedicated
  connection for as long as the holder lives. A process that dies (even by SIGKILL) loses its connection and
  so its lock; nothing stale is left behind.
* SQLite: an exclusive ``fcntl.flock`` on a file beside the database (``<database file>.<name>.lock``), which
  the kernel also releases when the process dies. SQLite is one machine, so a file lock is enough.

:func:`acquire_or_wait` is what a scheduler calls at start: a second scheduler started by mistake waits
(polling, logging "another scheduler holds the lock; waiting") instead of running every job twice, and takes
over when the first one stops. :func:`scheduler_lock` is the same as a context manager.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

#: First half of every advisory lock key of the monitor ("MONI"); the second half names the lock.
ADVISORY_NAMESPACE = 0x4D4F4E49
#: Well-known lock names and their advisory keys (other names get a CRC32-derived key).
KEYS = {"scheduler": 1, "check": 2}
WAITING_MESSAGE = "another scheduler holds the lock; waiting"

# in-memory SQLite has no file to lock: a process-local lock stands in (one process can use that database)
_memory_locks: dict[str, threading.Lock] = {}
_memory_guard = threading.Lock()


def advisory_key(name: str) -> int:
    """The second half of the advisory key of lock ``name`` (a signed 32-bit integer)."""
    if name in KEYS:
        return KEYS[name]
    value = zlib.crc32(name.encode()) & 0x7FFFFFFF
    return value if value > max(KEYS.values()) else value + 1000


def lock_file(engine: Engine, name: str) -> Path | None:
    """The lock file of ``name`` for a file-based SQLite database (None for in-memory databases)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    path = Path(database).resolve()
    return path.with_name(f"{path.name}.{name}.lock")


@dataclass
class HeldLock:
    """A lock this process holds until :meth:`release` (or until the process ends)."""

    name: str
    backend: str
    _conn: Connection | None = field(default=None, repr=False)
    _fd: int | None = field(default=None, repr=False)
    _memory: threading.Lock | None = field(default=None, repr=False)
    released: bool = False

    def still_held(self) -> bool:
        """False when the lock was lost (on PostgreSQL: the connection that held it is gone)."""
        if self.released:
            return False
        if self._conn is None:
            return True
        try:
            return bool(self._conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND classid = :ns AND objid = :key AND objsubid = 2 AND granted"),
                {"ns": ADVISORY_NAMESPACE, "key": advisory_key(self.name)}).scalar())
        except Exception:
            return False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"),
                                   {"ns": ADVISORY_NAMESPACE, "key": advisory_key(self.name)})
            except Exception:  # the connection is gone: so is the lock
                log.debug("advisory unlock of %s failed", self.name, exc_info=True)
            finally:
                try:
                    self._conn.close()
                except Exception:
                    log.debug("closing the lock connection failed", exc_info=True)
        if self._fd is not None:
            import fcntl

            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
        if self._memory is not None:
            self._memory.release()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def try_lock(engine: Engine, name: str = "scheduler") -> HeldLock | None:
    """Take lock ``name`` without waiting; None when another process (or connection) holds it."""
    backend = engine.dialect.name
    if backend == "postgresql":
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"),
                               {"ns": ADVISORY_NAMESPACE, "key": advisory_key(name)}).scalar()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return None
        return HeldLock(name, backend, _conn=conn)
    if backend == "sqlite":
        path = lock_file(engine, name)
        if path is None:
            with _memory_guard:
                memory = _memory_locks.setdefault(f"{engine.url}:{name}", threading.Lock())
            return HeldLock(name, backend, _memory=memory) if memory.acquire(blocking=False) else None
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return HeldLock(name, backend, _fd=fd)
    raise NotImplementedError(f"no inter-process lock for the {backend} database backend")


def acquire_or_wait(engine: Engine, name: str = "scheduler", *, poll_seconds: float = 5.0,
                    stop_event: threading.Event | None = None, log_every: float = 300.0) -> HeldLock | None:
    """Take lock ``name``, waiting (polling every ``poll_seconds``) while another process holds it.

    Returns the held lock, or None when ``stop_event`` was set while waiting. A database that cannot be
    reached while waiting is logged and retried, not raised (it may be restarting)."""
    stop_event = stop_event or threading.Event()
    waiting_since: float | None = None
    last_log = 0.0
    while not stop_event.is_set():
        try:
            held = try_lock(engine, name)
        except Exception as exc:
            if waiting_since is None:
                raise
            log.warning("cannot reach the database to take the %s lock (%s); retrying", name, exc)
            held = None
        if held is not None:
            if waiting_since is not None:
                log.warning("took the %s lock after waiting %.0f s", name, time.monotonic() - waiting_since)
            return held
        now = time.monotonic()
        if waiting_since is None:
            waiting_since = now
        if now - last_log >= log_every or last_log == 0.0:
            last_log = now
            log.warning(WAITING_MESSAGE if name == "scheduler" else f"another process holds the {name} lock; "
                        "waiting")
        stop_event.wait(poll_seconds)
    return None


@contextmanager
def scheduler_lock(engine: Engine, *, poll_seconds: float = 5.0,
                   stop_event: threading.Event | None = None) -> Iterator[HeldLock | None]:
    """Hold the scheduler lock for the body (waiting for it first); yields None if stopped while waiting."""
    held = acquire_or_wait(engine, "scheduler", poll_seconds=poll_seconds, stop_event=stop_event)
    try:
        yield held
    finally:
        if held is not None:
            held.release()


def lock_is_held(engine: Engine, name: str = "scheduler") -> bool | None:
    """Whether some process holds lock ``name`` (this one excluded on SQLite); None when it cannot be told."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            count = conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns AND objid = :key "
                "AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database())"),
                {"ns": ADVISORY_NAMESPACE, "key": advisory_key(name)}).scalar()
        return bool(count)
    if engine.dialect.name == "sqlite":
        if lock_file(engine, name) is None:
            return None
        held = try_lock(engine, name)
        if held is None:
            return True
        held.release()
        return False
    return None
