"""Scale benchmark: one collection round of N locally served feeds, collected and checked

* on Celery with 1, 2 and 4 worker processes (``monitor worker --pool solo``) against PostgreSQL and Redis,
* and inline (one process, no broker) on SQLite, in the same run.

Reported per configuration: feeds/s, items/s, queue latency (enqueue -> the task starts the feed's fetch),
and the end-to-end delay from an item's appearance on its feed (the round's start: every item is new) to its
flag (``matches.created_at`` of its first contradiction) in the database. Printed as a table and written to
``benchmarks/results/scale.json``.

    python benchmarks/scale.py                      # 10,000 feeds (long: the classifier dominates)
    python benchmarks/scale.py --feeds 200 --workers 1,2

Needs PostgreSQL (``MONITOR_TEST_POSTGRES_URL``, default postgres@127.0.0.1:5432/test) and Redis
(``--broker``, default redis://127.0.0.1:6379/15); a fresh database and queue are made for each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from monitor.config import Settings, load_settings  # noqa: E402
from monitor.runtime import open_runtime  # noqa: E402
from monitor.storage.db import migrate, transaction  # noqa: E402
from monitor.storage.tables import Claim, Feed, FeedRun, Item, Match  # noqa: E402

PG_ADMIN_URL = os.environ.get("MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RELEASE = """In 2019, the department investigated 27 specialized criminal cases and arrested 121 suspects.
The department also extradited 555 foreign criminals to their home countries."""


def feed_document(feed: int, items: int) -> bytes:
    from xml.sax.saxutils import escape

    parts = []
    for i in range(items):
        cases = 72 if i % 2 == 0 else 27
        title = f"Outlet {feed} story {i}: police investigated {cases} specialized criminal cases"
        body = (f"<p>Report {feed}-{i}: the cyber department investigated {cases} specialized criminal cases "
                "in 2019 and arrested 121 suspects.</p>")
        parts.append(f"<item><title>{escape(title)}</title><link>https://outlet{feed}.example.org/{i}</link>"
                     f"<guid isPermaLink=\"false\">f{feed}-{i}</guid><description>{escape(body)}</description>"
                     "</item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Outlet {feed}</title>'
            f"<link>https://outlet{feed}.example.org/</link><description>d</description>{''.join(parts)}"
            "</channel></rss>").encode()


class Servers:
    """``hosts`` HTTP servers on 127.0.0.1 (one port = one host for the per-host limit) serving every feed."""

    def __init__(self, hosts: int, items: int) -> None:
        self.items = items
        self.cache: dict[int, bytes] = {}
        bench = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                try:
                    feed = int(self.path.rsplit("/", 1)[-1].removesuffix(".xml"))
                except ValueError:
                    self.send_error(404)
                    return
                body = bench.cache.get(feed) or bench.cache.setdefault(feed, feed_document(feed, bench.items))
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpds = []
        for _ in range(hosts):
            httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            httpd.daemon_threads = True
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            self.httpds.append(httpd)

    def url(self, feed: int) -> str:
        port = self.httpds[feed % len(self.httpds)].server_address[1]
        return f"http://127.0.0.1:{port}/feed/{feed}.xml"

    def close(self) -> None:
        for httpd in self.httpds:
            httpd.shutdown()
            httpd.server_close()


def prepare(settings: Settings, servers: Servers, feeds: int) -> list[int]:
    from monitor.pipeline.releases import add_release

    migrate(settings.resolved_database_url)
    runtime = open_runtime(settings)
    try:
        with transaction(runtime.factory) as session:
            add_release(session, RELEASE, title="Review of 2019", published_at=None)
            session.execute(insert(Feed), [{"url": servers.url(n), "name": f"Outlet {n}", "kind": "news",
                                            "interval_minutes": 30, "enabled": True, "error_count": 0,
                                            "full_text": False} for n in range(feeds)])
        with runtime.factory() as session:
            return list(session.scalars(select(Feed.id).order_by(Feed.id)))
    finally:
        runtime.close()


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
            "max": round(ordered[-1], 3)}


def measure(settings: Settings, started: datetime, enqueued: dict[int, float] | None) -> dict[str, Any]:
    """Throughput and delays of the round that began at ``started``, read back from the database."""
    runtime = open_runtime(settings)
    try:
        with runtime.factory() as session:
            runs = session.execute(select(FeedRun.feed_id, FeedRun.started_at, FeedRun.duration_ms,
                                          FeedRun.status)).all()
            items = session.execute(select(Item.id, Item.checked_at)).all()
            flags = session.execute(select(Claim.item_id, func.min(Match.created_at))
                                    .join(Claim, Claim.id == Match.claim_id)
                                    .where(Match.label == "contradicts").group_by(Claim.item_id)).all()
    finally:
        runtime.close()
    t0 = started.timestamp()
    fetched_end = max((r.started_at.timestamp() + r.duration_ms / 1000 for r in runs), default=t0)
    checked_end = max((c.timestamp() for _, c in items if c), default=fetched_end)
    queue = ([r.started_at.timestamp() - enqueued[r.feed_id] for r in runs if r.feed_id in enqueued]
             if enqueued is not None else [r.started_at.timestamp() - t0 for r in runs])
    delays = [flagged.timestamp() - t0 for _, flagged in flags if flagged]
    return {
        "feeds_fetched": len(runs), "feed_errors": sum(1 for r in runs if r.status == "error"),
        "items": len(items), "items_flagged": len(flags),
        "collect_seconds": round(fetched_end - t0, 3), "round_seconds": round(checked_end - t0, 3),
        "feeds_per_second": round(len(runs) / max(fetched_end - t0, 1e-6), 2),
        "items_per_second": round(len(items) / max(checked_end - t0, 1e-6), 2),
        "queue_latency_seconds": percentiles(queue),
        "appearance_to_flag_seconds": percentiles(delays),
    }


def wait_round(settings: Settings, feeds: int, timeout: float) -> None:
    engine = create_engine(settings.resolved_database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                runs = conn.execute(text("SELECT count(*) FROM feed_runs")).scalar()
                unchecked = conn.execute(text("SELECT count(*) FROM items WHERE checked_at IS NULL")).scalar()
            if runs >= feeds and unchecked == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"round unfinished after {timeout:.0f} s: {runs}/{feeds} feeds, "
                                   f"{unchecked} items unchecked")
            time.sleep(0.25)
    finally:
        engine.dispose()


def run_celery(workers: int, args: argparse.Namespace, servers: Servers, workdir: Path) -> dict[str, Any]:
    from monitor.executors import CeleryExecutor

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    queue = f"monitor-bench-{uuid.uuid4().hex[:8]}"
    values = {"database_url": url, "broker_url": args.broker, "executor": "celery", "task_queue": queue,
              "data_dir": workdir / f"celery{workers}", "fetch_allow_hosts": ["127.0.0.1"],
              "host_concurrency": args.host_concurrency, "secret_key": "b" * 40,
              "check_batch_size": args.check_batch}
    settings = load_settings(**values)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ids = prepare(settings, servers, args.feeds)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env.update({f"MONITOR_{k.upper()}": ",".join(v) if isinstance(v, list) else str(v) for k, v in values.items()})
        env.update(MONITOR_CONFIG=str(workdir / "none.toml"), PYTHONPATH=str(ROOT))
        for n in range(workers):
            log = open(workdir / f"worker-{workers}-{n}.log", "wb")  # noqa: SIM115
            procs.append(subprocess.Popen([sys.executable, "-m", "monitor", "worker", "--pool", "solo",
                                           "--hostname", f"w{n}@{queue}", "--loglevel", "WARNING"],
                                          env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        executor = CeleryExecutor(settings)
        expected = {f"w{n}@{queue}" for n in range(workers)}
        deadline = time.monotonic() + 120
        while set(executor.app.control.inspect(timeout=1.0).ping() or {}) < expected:
            if time.monotonic() > deadline:
                raise TimeoutError("workers did not start")
        started = datetime.now(UTC)
        enqueued: dict[int, float] = {}
        t = time.monotonic()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            executor.refresh_feeds(chunk)
            now = time.time()
            enqueued.update((fid, now) for fid in chunk)
        enqueue_seconds = time.monotonic() - t
        wait_round(settings, args.feeds, args.timeout)
        result = measure(settings, started, enqueued)
        result.update(mode="celery", workers=workers, database="postgresql",
                      enqueue_seconds=round(enqueue_seconds, 3))
        executor.close()
        return result
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        try:
            import redis

            client = redis.Redis.from_url(args.broker)
            client.delete(queue)
            for key in client.scan_iter(f"{queue}:*"):
                client.delete(key)
        except Exception:
            pass


def run_inline(args: argparse.Namespace, servers: Servers, workdir: Path) -> dict[str, Any]:
    from monitor.executors import InlineExecutor

    settings = load_settings(data_dir=workdir / "inline", fetch_allow_hosts=["127.0.0.1"], secret_key="b" * 40,
                             check_batch_size=args.check_batch)
    ids = prepare(settings, servers, args.feeds)
    runtime = open_runtime(settings)
    try:
        runtime.model  # loaded before the clock starts, as a running scheduler has it
        executor = InlineExecutor(runtime)
        started = datetime.now(UTC)
        clock = time.monotonic()
        executor.refresh_feeds(ids, check=False)
        collect_seconds = time.monotonic() - clock
        executor.check_items()
    finally:
        runtime.close()
    result = measure(settings, started, None)
    # inline FeedRun rows carry the round's logical start time, so the fetch phase is timed here instead
    result.update(mode="inline", workers=1, database="sqlite", enqueue_seconds=None,
                  collect_seconds=round(collect_seconds, 3),
                  feeds_per_second=round(result["feeds_fetched"] / max(collect_seconds, 1e-6), 2))
    return result


def table(results: list[dict[str, Any]]) -> str:
    head = (f"{'mode':<7} {'workers':>7} {'db':<10} {'feeds':>6} {'items':>6} {'feeds/s':>8} {'items/s':>8} "
            f"{'queue p50/p95 s':>16} {'flag p50/p95 s':>16} {'round s':>8}")
    lines = [head, "-" * len(head)]
    for r in results:
        q, f = r["queue_latency_seconds"], r["appearance_to_flag_seconds"]
        lines.append(f"{r['mode']:<7} {r['workers']:>7} {r['database']:<10} {r['feeds_fetched']:>6} "
                     f"{r['items']:>6} {r['feeds_per_second']:>8} {r['items_per_second']:>8} "
                     f"{str(q['p50']) + '/' + str(q['p95']):>16} {str(f['p50']) + '/' + str(f['p95']):>16} "
                     f"{r['round_seconds']:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--items-per-feed", type=int, default=2)
    parser.add_argument("--workers", default="1,2,4", help="Celery worker process counts to compare.")
    parser.add_argument("--hosts", type=int, default=50, help="Local servers (distinct hosts) serving feeds.")
    parser.add_argument("--host-concurrency", type=int, default=2)
    parser.add_argument("--check-batch", type=int, default=50, help="Items per check transaction.")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--no-inline", action="store_true", help="Leave out the inline SQLite round.")
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args(argv)
    servers = Servers(args.hosts, args.items_per_feed)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
            workdir = Path(tmp)
            for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
                print(f"celery, {workers} worker process(es), {args.feeds} feeds ...", file=sys.stderr)
                results.append(run_celery(workers, args, servers, workdir))
            if not args.no_inline:
                print(f"inline on SQLite, {args.feeds} feeds ...", file=sys.stderr)
                results.append(run_inline(args, servers, workdir))
    finally:
        servers.close()
    print(table(results))
    report = {"feeds": args.feeds, "items_per_feed": args.items_per_feed, "hosts": args.hosts,
              "host_concurrency": args.host_concurrency, "cpus": os.cpu_count(),
              "python": platform.python_version(), "ran_at": datetime.now(UTC).isoformat(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
