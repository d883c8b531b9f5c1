"""Two `monitor scheduler` processes on one database: one runs the jobs, the other waits, then takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from test_cli_end_to_end import ITEMS, monitor_cmd


def _start(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*monitor_cmd(), "-v", "scheduler"], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_second_scheduler_waits_and_each_job_runs_once(database_url: str, tmp_path: Path, feed_server,
                                                       make_rss) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(MONITOR_DATA_DIR=str(tmp_path / "var"), MONITOR_DATABASE_URL=database_url,
               MONITOR_FETCH_ALLOW_HOSTS="127.0.0.1", MONITOR_ADMIN_PASSWORD="correct horse battery",
               MONITOR_SCHEDULER_TICK_SECONDS="1", PYTHONUNBUFFERED="1")
    url = feed_server.serve("/news.xml", make_rss(ITEMS))
    for args in (["init"], ["feeds", "add", url, "--interval", "60"]):
        subprocess.run([*monitor_cmd(), *args], env=env, cwd=tmp_path, check=True, capture_output=True)

    first = _start(env, tmp_path)
    time.sleep(3)  # let the first one take the lock
    second = _start(env, tmp_path)
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not feed_server.requests:
            time.sleep(0.2)
        time.sleep(8)  # both schedulers had every chance to run the feed's job
        fetches = [p for p, _ in feed_server.requests if p == "/news.xml"]
        assert len(fetches) == 1, f"the feed job ran {len(fetches)} times with two schedulers"
        assert second.poll() is None and first.poll() is None
        first_out = _stop(first)
        # the waiting scheduler takes over within its poll interval
        deadline = time.monotonic() + 30
        taken = False
        while time.monotonic() < deadline and not taken:
            line = second.stdout.readline()
            taken = "took the scheduler lock" in line
        assert taken, "the second scheduler never took over"
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                _stop(proc)
    assert "waiting" not in first_out
