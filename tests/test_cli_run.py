"""`monitor run`: scheduler and dashboard together; Ctrl-C stops cleanly and keeps what was fetched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from test_cli_end_to_end import ITEMS, monitor_cmd


def test_run_serves_collects_and_stops_on_ctrl_c(tmp_path: Path, feed_server, make_rss) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(MONITOR_DATA_DIR=str(tmp_path / "var"), MONITOR_FETCH_ALLOW_HOSTS="127.0.0.1",
               MONITOR_ADMIN_PASSWORD="correct horse battery", MONITOR_SCHEDULER_TICK_SECONDS="1",
               PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    url = feed_server.serve("/news.xml", make_rss(ITEMS))
    for args in (["init"], ["feeds", "add", url, "--interval", "1"]):
        subprocess.run([*monitor_cmd(), *args], env=env, cwd=tmp_path, check=True, capture_output=True)

    proc = subprocess.Popen([*monitor_cmd(), "-v", "run", "--port", "0"], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        dashboard = None
        deadline = time.monotonic() + 60
        while dashboard is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "monitor run exited before serving"
            if line.startswith("dashboard: "):
                dashboard = line.split(": ", 1)[1].strip()
        assert dashboard and dashboard.startswith("http://127.0.0.1:")
        assert httpx.get(dashboard + "healthz", timeout=10).status_code == 200
        login = httpx.get(dashboard, timeout=10, follow_redirects=False)
        assert login.status_code == 302 and "/login" in login.headers["location"]
        while time.monotonic() < deadline and not any(p == "/news.xml" for p, _ in feed_server.requests):
            time.sleep(0.2)  # the scheduler collects the feed on its first sync
        assert any(p == "/news.xml" for p, _ in feed_server.requests), "the scheduler never fetched the feed"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # show what the process was doing (its log and thread stacks)
            proc.send_signal(signal.SIGABRT)  # faulthandler (PYTHONFAULTHANDLER) prints every thread
            out, _ = proc.communicate(timeout=30)
            raise AssertionError(f"monitor run did not stop within 120 s of Ctrl-C:\n{out[-20000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopping" in out
    listed = subprocess.run([*monitor_cmd(), "feeds", "list", "--json"], env=env, cwd=tmp_path, check=True,
                            capture_output=True, text=True).stdout
    assert json.loads(listed)[0]["items"] == len(ITEMS)
