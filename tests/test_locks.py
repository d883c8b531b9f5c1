"""The scheduler lock between processes: PostgreSQL advisory lock, SQLite file lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from monitor.locks import WAITING_MESSAGE, acquire_or_wait, lock_is_held, scheduler_lock, try_lock
from monitor.storage.db import make_engine

ROOT = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent("""
    import logging, sys, time
    from monitor.locks import acquire_or_wait
    from monitor.storage.db import make_engine
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    url, log_path, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
    engine = make_engine(url)
    held = acquire_or_wait(engine, "scheduler", poll_seconds=0.05)
    with open(log_path, "a") as out:
        out.write(f"start {time.time()!r}\\n"); out.flush()
        # the "job": every holder runs it once; it must never run in two processes at the same time
        time.sleep(hold)
        out.write(f"end {time.time()!r}\\n"); out.flush()
    held.release()
""")


def _spawn(url: str, log_path: Path, hold: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", HOLDER, url, str(log_path), str(hold)], env=env,
                            stderr=subprocess.PIPE, text=True)


def _intervals(path: Path) -> list[tuple[float, float]]:
    lines = path.read_text().split()
    starts = [float(v) for k, v in zip(lines[::2], lines[1::2], strict=True) if k == "start"]
    ends = [float(v) for k, v in zip(lines[::2], lines[1::2], strict=True) if k == "end"]
    return list(zip(starts, ends, strict=True))


def test_two_processes_never_hold_the_scheduler_lock_at_once(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "holders.log"
    first = _spawn(database_url, log_path, 1.5)
    deadline = time.monotonic() + 30  # start the second only once the first holds the lock (slow imports under load)
    while not (log_path.exists() and "start" in log_path.read_text()):
        assert time.monotonic() < deadline and first.poll() is None, "the first process never took the lock"
        time.sleep(0.05)
    second = _spawn(database_url, log_path, 0.3)
    _, err1 = first.communicate(timeout=60)
    _, err2 = second.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    spans = sorted(_intervals(log_path))
    assert len(spans) == 2  # each ran its job exactly once
    (s1, e1), (s2, e2) = spans
    assert e1 <= s2, f"both processes held the lock at once: {spans}"
    assert WAITING_MESSAGE in err1 + err2  # the later one said it was waiting


def test_a_killed_holder_releases_the_lock(database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "holders.log"
    holder = _spawn(database_url, log_path, 60)
    engine = make_engine(database_url)
    try:
        deadline = time.monotonic() + 20
        while not (log_path.exists() and "start" in log_path.read_text()):
            assert time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.05)
        assert try_lock(engine, "scheduler") is None
        assert lock_is_held(engine, "scheduler") is True
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        held = acquire_or_wait(engine, "scheduler", poll_seconds=0.05,
                               stop_event=_timeout_event(10))
        assert held is not None, "the lock of a killed process was never freed"
        assert held.still_held()
        held.release()
        assert not held.still_held()
        assert lock_is_held(engine, "scheduler") is False
    finally:
        if holder.poll() is None:
            holder.kill()
        engine.dispose()


def _timeout_event(seconds: float) -> threading.Event:
    event = threading.Event()
    timer = threading.Timer(seconds, event.set)
    timer.daemon = True
    timer.start()
    return event


def test_waiting_stops_when_asked(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(database_url)
    try:
        with scheduler_lock(engine) as held:
            assert held is not None
            stop = threading.Event()
            threading.Timer(0.3, stop.set).start()
            started = time.monotonic()
            with caplog.at_level("WARNING", logger="monitor.locks"):
                assert acquire_or_wait(engine, "scheduler", poll_seconds=0.05, stop_event=stop) is None
            assert time.monotonic() - started < 5
            assert WAITING_MESSAGE in caplog.text
            # other lock names are independent of the scheduler lock
            other = try_lock(engine, "check")
            assert other is not None
            other.release()
        again = try_lock(engine, "scheduler")
        assert again is not None
        again.release()
    finally:
        engine.dispose()


def test_sqlite_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'monitor.sqlite3'}")
    held = try_lock(engine, "scheduler")
    assert held is not None
    assert (tmp_path / "db" / "monitor.sqlite3.scheduler.lock").exists()
    assert try_lock(engine, "scheduler") is None  # also within one process (another open file)
    held.release()
    memory = make_engine("sqlite://")
    first = try_lock(memory, "scheduler")
    assert first is not None and try_lock(memory, "scheduler") is None
    first.release()
