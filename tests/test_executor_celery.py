"""Celery workers (real Redis, real PostgreSQL) run refresh and check tasks; killed workers lose nothing and
duplicate nothing. Workers are subprocesses (``monitor worker``) on a queue of their own, so test runs that
share one Redis do not take each other's tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from monitor.config import Settings, load_settings
from monitor.runtime import Runtime, open_runtime
from monitor.storage.db import migrate, transaction
from monitor.storage.tables import Claim, Feed, FeedRun, Item, Match
from tests.conftest import PG_ADMIN_URL, rss, skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("MONITOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

RELEASE = """In 2019, the department investigated 27 specialized criminal cases and arrested 121 suspects.
The department also extradited 555 foreign criminals to their home countries."""


def feed_items(feed: int, count: int, *, body: bool = True) -> list[dict[str, str]]:
    """Distinct stories (own link, own text) with figures that contradict or agree with the release."""
    out = []
    for i in range(count):
        cases = 72 if i % 2 == 0 else 27
        out.append({"title": f"Outlet {feed} story {i}: police investigated {cases} specialized criminal cases",
                    "link": f"https://outlet{feed}.example.org/story/{i}", "guid": f"f{feed}-{i}",
                    "description": f"<p>Report {feed}-{i}: the cyber department investigated {cases} specialized "
                                   f"criminal cases in 2019 and arrested 121 suspects.</p>" if body else ""})
    return out


# -- services ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        skip_or_fail(f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}: {exc}); "
                     "set MONITOR_TEST_REDIS_URL to run the Celery tests")
    yield REDIS_URL


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of its own (workers connect to it from other processes)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({type(exc).__name__}); "
                     "set MONITOR_TEST_POSTGRES_URL to run these tests")
    name = f"monitor_celery_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class GatedFeedServer:
    """Serves RSS documents; a gated path holds its answer until the test opens the gate."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.gates: dict[str, threading.Event] = {}
        self.arrived: dict[str, threading.Event] = {}
        self.hits: dict[str, int] = {}
        self.active: dict[str, int] = {}
        self.peak = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with server._lock:
                    server.hits[self.path] = server.hits.get(self.path, 0) + 1
                    server.active["all"] = server.active.get("all", 0) + 1
                    server.peak = max(server.peak, server.active["all"])
                try:
                    if self.path in server.arrived:
                        server.arrived[self.path].set()
                    if self.path in server.gates:
                        server.gates[self.path].wait(60)
                    body = server.routes.get(self.path)
                    self.send_response(200 if body is not None else 404)
                    self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(body or b"")))
                    self.end_headers()
                    self.wfile.write(body or b"")
                finally:
                    with server._lock:
                        server.active["all"] -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, path: str, body: bytes, *, gated: bool = False) -> str:
        self.routes[path] = body
        if gated:
            self.gates[path] = threading.Event()
            self.arrived[path] = threading.Event()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feeds_server() -> Iterator[GatedFeedServer]:
    server = GatedFeedServer()
    yield server
    server.close()


class Cluster:
    """The settings, runtime and worker processes of one test."""

    def __init__(self, tmp_path: Path, database_url: str, broker_url: str, **overrides: Any) -> None:
        self.queue = f"monitor-test-{uuid.uuid4().hex[:8]}"
        values = {"data_dir": tmp_path / "var", "database_url": database_url, "broker_url": broker_url,
                  "executor": "celery", "fetch_allow_hosts": ["127.0.0.1"], "secret_key": "x" * 40,
                  "task_queue": self.queue, "task_visibility_timeout": 3, "fetch_total_timeout": 15.0,
                  **overrides}
        self.settings: Settings = load_settings(**values)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        self.env.update({f"MONITOR_{k.upper()}": (",".join(v) if isinstance(v, list) else str(v))
                         for k, v in values.items()})
        self.env.update(MONITOR_CONFIG=str(tmp_path / "none.toml"), PYTHONPATH=str(ROOT))
        self.tmp_path = tmp_path
        self.runtime: Runtime = open_runtime(self.settings)
        self.workers: list[subprocess.Popen[bytes]] = []
        from monitor.celery_app import make_celery

        self.app = make_celery(self.settings)

    def start_worker(self, name: str, *, pool: str = "solo", concurrency: int = 1) -> subprocess.Popen[bytes]:
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "worker", "--pool", pool, "--concurrency",
                                 str(concurrency), "--hostname", f"{name}@{self.queue}", "--loglevel", "INFO"],
                                env=self.env, cwd=self.tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.workers.append(proc)
        self.wait_for(lambda: self._answers(f"{name}@{self.queue}") or proc.poll() is not None, 60,
                      f"worker {name} to start")
        assert proc.poll() is None, self.log(name)
        return proc

    def _answers(self, hostname: str) -> bool:
        replies = self.app.control.inspect(destination=[hostname], timeout=0.5).ping() or {}
        return hostname in replies

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    @staticmethod
    def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                self.kill(proc)
        try:
            import redis

            client = redis.Redis.from_url(self.settings.broker_url)
            client.delete(self.queue)
            for key in client.scan_iter(f"{self.queue}:*"):
                client.delete(key)
            client.close()
        except Exception:
            pass
        self.runtime.close()

    # database helpers

    def add_feeds(self, urls: list[str]) -> list[int]:
        with transaction(self.runtime.factory) as session:
            feeds = [Feed(url=u, name=f"feed {i}", kind="news", interval_minutes=30) for i, u in enumerate(urls)]
            session.add_all(feeds)
            session.flush()
            return [f.id for f in feeds]

    def add_release(self) -> None:
        from monitor.pipeline.releases import add_release

        with transaction(self.runtime.factory) as session:
            add_release(session, RELEASE, title="Review of 2019", published_at=None, source="manual")

    def count(self, column: Any, *where: Any) -> int:
        with self.runtime.factory() as session:
            return session.scalar(select(func.count(column)).where(*where)) or 0

    def assert_no_duplicates(self) -> None:
        with self.runtime.factory() as session:
            dup_items = session.execute(select(Item.feed_id, Item.guid).group_by(Item.feed_id, Item.guid)
                                        .having(func.count() > 1)).all()
            dup_claims = session.execute(select(Claim.item_id, Claim.source, Claim.text)
                                         .group_by(Claim.item_id, Claim.source, Claim.text)
                                         .having(func.count() > 1)).all()
            dup_matches = session.execute(select(Match.claim_id, Match.statement_id)
                                          .group_by(Match.claim_id, Match.statement_id)
                                          .having(func.count() > 1)).all()
        assert not dup_items and not dup_claims and not dup_matches, (dup_items, dup_claims, dup_matches)


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_url, redis_url, check_batch_size=10)
    yield c
    c.close()


# -- tests ---------------------------------------------------------------------------------------------------


def test_celery_settings_ack_late_json_only(cluster: Cluster) -> None:
    conf = cluster.app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.broker_transport_options["visibility_timeout"] == 3
    # abandoned messages are looked for every second with a 3 s timeout, not every 100 s (kombu's default)
    assert conf.broker_transport_options["unacked_restore_interval"] == 1
    assert conf.broker_transport_options["unacked_restore_throttle"] == 1


def test_workers_refresh_and_check_feeds_once_each(cluster: Cluster, feeds_server: GatedFeedServer) -> None:
    from monitor.executors import make_executor

    cluster.add_release()
    urls = [feeds_server.serve(f"/feed{i}.xml", rss(feed_items(i, 4), title=f"Outlet {i}")) for i in range(4)]
    ids = cluster.add_feeds(urls)
    cluster.start_worker("w1", pool="prefork", concurrency=2)
    executor = make_executor(cluster.runtime)
    assert executor.mode == "celery"
    first = executor.refresh_feeds(ids)
    again = executor.refresh_feeds(ids)  # still queued or running: not enqueued twice
    assert first.enqueued == 4
    assert again.enqueued + again.skipped == 4
    cluster.wait_for(lambda: cluster.count(Item.id, Item.checked_at.is_not(None)) == 16
                     and cluster.count(FeedRun.id) >= 4, 90, "16 items collected and checked")
    time.sleep(0.5)
    assert cluster.count(Item.id) == 16
    assert cluster.count(Match.id, Match.label == "contradicts") > 0, cluster.log("w1")
    cluster.assert_no_duplicates()
    assert all(feeds_server.hits[f"/feed{i}.xml"] >= 1 for i in range(4))


def test_a_task_delivered_twice_stores_nothing_twice(cluster: Cluster, feeds_server: GatedFeedServer) -> None:
    from monitor.celery_app import TASK_CHECK, TASK_REFRESH

    cluster.add_release()
    url = feeds_server.serve("/twice.xml", rss(feed_items(9, 6)))
    (feed_id,) = cluster.add_feeds([url])
    cluster.start_worker("w1", pool="prefork", concurrency=2)
    for _ in range(3):  # the same message delivered again (redelivery, or a scheduler enqueuing twice)
        cluster.app.send_task(TASK_REFRESH, args=[feed_id], queue=cluster.queue)
        cluster.app.send_task(TASK_CHECK, queue=cluster.queue)
    cluster.wait_for(lambda: cluster.count(FeedRun.id) == 3
                     and cluster.count(Item.id, Item.checked_at.is_(None)) == 0, 90, "three refreshes")
    time.sleep(1.0)  # let any late check finish
    assert cluster.count(Item.id) == 6
    cluster.assert_no_duplicates()
    assert cluster.count(Match.id) > 0


def test_a_worker_killed_mid_task_loses_nothing(cluster: Cluster, feeds_server: GatedFeedServer) -> None:
    from monitor.executors import make_executor

    cluster.add_release()
    urls = [feeds_server.serve("/slow.xml", rss(feed_items(1, 5)), gated=True),
            feeds_server.serve("/fast.xml", rss(feed_items(2, 5)))]
    slow, fast = cluster.add_feeds(urls)
    doomed = cluster.start_worker("doomed", pool="solo")
    make_executor(cluster.runtime).refresh_feeds([slow, fast])
    assert feeds_server.arrived["/slow.xml"].wait(30), cluster.log("doomed")
    cluster.kill(doomed)  # SIGKILL while the task is fetching: nothing committed, message not acknowledged
    feeds_server.gates["/slow.xml"].set()
    assert cluster.count(FeedRun.id, FeedRun.feed_id == slow) == 0
    # Redis makes an unacknowledged message visible again once the visibility timeout has passed; a starting
    # worker sweeps for such messages, so the rescuer starts after that (kombu 5.7's periodic sweep runs only
    # every unacked_restore_interval seconds, and not at all in a solo worker's loop)
    time.sleep(cluster.settings.task_visibility_timeout + 1)
    cluster.start_worker("rescuer", pool="solo")
    cluster.wait_for(lambda: cluster.count(Item.id, Item.checked_at.is_not(None)) == 10, 90,
                     "the unacknowledged task to be redelivered and finished")
    time.sleep(0.5)
    assert cluster.count(Item.id) == 10
    assert cluster.count(FeedRun.id, FeedRun.feed_id == slow) == 1
    assert feeds_server.hits["/slow.xml"] == 2  # fetched again after the redelivery
    cluster.assert_no_duplicates()


def test_a_worker_process_killed_during_a_check_is_replaced_and_checks_once(
        cluster: Cluster, feeds_server: GatedFeedServer) -> None:
    """Kill the pool child running a check after some batches committed: the parent puts the message
    back (reject_on_worker_lost), a new child finishes; no item is judged twice."""
    from monitor.celery_app import TASK_CHECK
    from monitor.pipeline.refresh import refresh_feed

    cluster.add_release()
    urls = [feeds_server.serve(f"/bulk{i}.xml", rss(feed_items(100 + i, 20, body=False))) for i in range(4)]
    for feed_id in cluster.add_feeds(urls):
        refresh_feed(cluster.runtime.factory, cluster.settings, feed_id)
    total = cluster.count(Item.id)
    assert total == 80
    worker = cluster.start_worker("w1", pool="prefork", concurrency=1)
    cluster.app.send_task(TASK_CHECK, queue=cluster.queue)
    cluster.wait_for(lambda: cluster.count(Item.id, Item.checked_at.is_not(None)) > 0, 90,
                     "the first batch to commit")
    children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True).stdout.split()
    assert children, "no pool process found"
    checked_before = cluster.count(Item.id, Item.checked_at.is_not(None))
    for pid in children:
        os.kill(int(pid), signal.SIGKILL)
    cluster.wait_for(lambda: cluster.count(Item.id, Item.checked_at.is_(None)) == 0, 120,
                     "the check to be redelivered and finished")
    assert worker.poll() is None  # the worker itself lives on with a new pool process
    assert cluster.count(Item.id) == total
    cluster.assert_no_duplicates()
    # nothing judged twice: one claim set per item, at most top_k matches per claim
    with cluster.runtime.factory() as session:
        per_claim = select(func.count(Match.id).label("n")).group_by(Match.claim_id).subquery()
        worst = session.scalar(select(func.max(per_claim.c.n)))
    assert worst is None or worst <= cluster.settings.check_top_k
    print(f"killed after {checked_before}/{total} items checked")


def test_per_host_slots_are_shared_across_workers(redis_url: str) -> None:
    import redis

    from monitor.tasks import RedisHostLimiter

    client = redis.Redis.from_url(redis_url)
    prefix = f"monitor-test-{uuid.uuid4().hex[:8]}:"
    a = RedisHostLimiter(client, 1, ttl=1.0, prefix=prefix, wait=0.2)
    b = RedisHostLimiter(client, 1, ttl=1.0, prefix=prefix, wait=0.2)  # another worker
    try:
        token = a.acquire("example.org")
        assert token is not None
        assert b.acquire("example.org") is None  # busy across "workers"
        assert b.acquire("other.example") is not None  # other hosts are independent
        time.sleep(1.1)  # a holder that died: its slot expires
        late = b.acquire("example.org", wait=0.5)
        assert late is not None
        b.give_back("example.org", late)
        with a.hold("https://example.org/feed.xml"):
            assert b.acquire("example.org", wait=0.1) is None
        assert b.acquire("example.org", wait=0.1) is not None
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()
