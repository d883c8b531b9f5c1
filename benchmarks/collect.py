"""Collection benchmark: the monitor's collector against sequential ``feedparser.parse(url)``.

Serves N feeds (default 2,000, 50 items each) from threaded HTTP servers on 127.0.0.1 in a separate process
(so serving does not compete with the measured process for the GIL), spread over several ports that stand for
several hosts (the collector allows 2 fetches at once per host). Each response waits ``--latency`` ms first,
standing in for the network round trip of real sites (0 measures pure CPU). The mix per round:

* 70 % answer 200 with a full feed (ETag set),
* 20 % answer 304 (the monitor's database is pre-seeded with their ETag, the baseline sends it too),
* 10 % fail: 5 % HTTP 500, 3 % HTTP 404, 2 % an HTML page where a feed was expected.

The monitor collects one round into a temporary SQLite database (``collect_round`` over every feed); the
baseline parses a sample sequentially with ``feedparser.parse(url, etag=...)`` (it fetches itself, stores
nothing) and its feeds/s is extrapolated. Peak memory is the process's maximum RSS after each part
(``resource``), plus the peak RSS of the monitor's parse worker processes (sampled from /proc), and with
``--tracemalloc`` the Python-heap peak of the monitor's round as well (slower). CPU seconds (the monitor's
including its worker processes) are reported too: they do not depend on how busy the machine is, while
feeds/s does, and more so for the monitor (which wants every core) than for the sequential baseline.

    python benchmarks/collect.py                 # 2,000 feeds
    python benchmarks/collect.py --feeds 200     # quick run

Writes ``benchmarks/results/collect.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "collect.json"


def kind_of(n: int) -> str:
    slot = (n * 7919) % 100  # spread the kinds over the feed numbers deterministically
    if slot < 70:
        return "ok"
    if slot < 90:
        return "not_modified"
    if slot < 95:
        return "error500"
    if slot < 98:
        return "error404"
    return "html"


def feed_body(n: int, items: int) -> bytes:
    when = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    parts = []
    for i in range(items):
        text = (f"<p>Report {i} from outlet {n}: the provincial office said {i * 3 + n % 97} cases were "
                f"investigated and {i + 11} people were questioned, according to the statement.</p>"
                f"<p>Officials added that <a href=\"/more/{i}?utm_source=rss\">more details</a> would follow.</p>")
        parts.append(f"<item><title>Outlet {n} story {i}: officials report figures</title>"
                     f"<link>https://outlet{n}.example.org/news/{i}?utm_source=rss</link>"
                     f"<guid isPermaLink=\"false\">outlet-{n}-{i}</guid>"
                     f"<pubDate>{format_datetime(when - timedelta(minutes=i * 17), usegmt=True)}</pubDate>"
                     f"<description>{escape(text)}</description></item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Outlet {n}</title>'
            f"<link>https://outlet{n}.example.org/</link><description>News</description>{''.join(parts)}"
            "</channel></rss>").encode()


def etag_of(n: int) -> str:
    return f'"feed-{n}-v1"'


# -- the server process ----------------------------------------------------------------------------------


def serve(ports_out: multiprocessing.Queue, hosts: int, items: int, latency: float) -> None:  # pragma: no cover
    import threading

    cache: dict[int, bytes] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            if latency:
                time.sleep(latency)
            try:
                n = int(self.path.strip("/").split(".")[0].removeprefix("feed"))
            except ValueError:
                return self._send(404, b"no", "text/plain")
            kind = kind_of(n)
            if kind == "error500":
                return self._send(500, b"internal error", "text/plain")
            if kind == "error404":
                return self._send(404, b"not found", "text/plain")
            if kind == "html":
                return self._send(200, b"<html><body>Just a moment...</body></html>", "text/html")
            if kind == "not_modified" and self.headers.get("If-None-Match") == etag_of(n):
                return self._send(304, b"", None, {"ETag": etag_of(n)})
            with lock:
                body = cache.get(n)
                if body is None:
                    body = cache[n] = feed_body(n, items)
            return self._send(200, body, "application/rss+xml; charset=utf-8", {"ETag": etag_of(n)})

        def _send(self, status: int, body: bytes, ctype: str | None, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client closing its kept-alive connection is not news

    ports = []
    for _ in range(hosts):
        httpd = Server(("127.0.0.1", 0), Handler)
        httpd.request_queue_size = 256
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        ports.append(httpd.server_address[1])
    ports_out.put(ports)
    threading.Event().wait()


def feed_url(ports: list[int], n: int) -> str:
    return f"http://127.0.0.1:{ports[n % len(ports)]}/feed{n}.xml"


# -- the two contenders ------------------------------------------------------------------------------------


class ChildMemory:
    """Peak RSS (VmHWM) of this process's children other than ``exclude`` (the parse worker processes),
    sampled from /proc every half second while a round runs; 0 where /proc is missing."""

    def __init__(self, exclude: set[int]) -> None:
        import threading

        self.exclude = exclude
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = str(os.getpid())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in self.exclude:
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                self.peak_kb = max(self.peak_kb, int(fields["VmHWM"].split()[0]))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> "ChildMemory":
        if Path("/proc/self/status").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


def run_monitor(ports: list[int], feeds: int, workers: int, use_tracemalloc: bool,
                server_pid: int | None = None) -> dict[str, object]:
    from sqlalchemy import func, insert, select

    from monitor.config import load_settings
    from monitor.pipeline.collect import collect_round
    from monitor.runtime import open_runtime
    from monitor.storage.db import migrate
    from monitor.storage.tables import Feed, FeedRun, Item

    tmp = tempfile.mkdtemp(prefix="collect-bench-")
    url = f"sqlite:///{tmp}/bench.sqlite3"
    migrate(url)
    settings = load_settings(data_dir=Path(tmp) / "var", database_url=url, fetch_allow_hosts=["127.0.0.1"],
                             secret_key="bench", fetch_workers=workers, fetch_total_timeout=30.0)
    runtime = open_runtime(settings)
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        conn.execute(insert(Feed), [{
            "url": feed_url(ports, n), "name": f"feed {n}", "kind": "news", "interval_minutes": 30, "enabled": True,
            "error_count": 0, "full_text": False, "created_at": now,
            "etag": etag_of(n) if kind_of(n) == "not_modified" else None} for n in range(feeds)])
        ids = {u: i for i, u in conn.execute(select(Feed.id, Feed.url))}
        conn.execute(insert(FeedRun), [{  # a full fetch an hour ago: the validators are used
            "feed_id": ids[feed_url(ports, n)], "started_at": now - timedelta(hours=1), "duration_ms": 1,
            "status": "ok", "http_status": 200, "new": 0, "updated": 0} for n in range(feeds)
            if kind_of(n) == "not_modified"])
    order = [ids[feed_url(ports, n)] for n in range(feeds)]
    if use_tracemalloc:
        tracemalloc.start()
    cpu_before = os.times()
    with ChildMemory({server_pid} if server_pid else set()) as children:
        started = time.perf_counter()
        results = collect_round(runtime, order)
        elapsed = time.perf_counter() - started
    cpu_after = os.times()  # the parse worker processes have exited (and been waited for) by now
    cpu_self = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    cpu_children = (cpu_after.children_user - cpu_before.children_user) + (
        cpu_after.children_system - cpu_before.children_system)
    heap_peak = tracemalloc.get_traced_memory()[1] if use_tracemalloc else None
    if use_tracemalloc:
        tracemalloc.stop()
    with runtime.factory() as session:
        stored = session.scalar(select(func.count()).select_from(Item))
    runtime.close()
    outcome: dict[str, int] = {}
    for r in results:
        outcome[r.run_status] = outcome.get(r.run_status, 0) + 1
    return {"feeds": feeds, "seconds": elapsed, "feeds_per_s": feeds / elapsed, "items_stored": stored,
            "items_per_s": stored / elapsed, "outcomes": outcome, "workers": workers,
            "python_heap_peak_mb": heap_peak / 2**20 if heap_peak is not None else None,
            "cpu_seconds": cpu_self + cpu_children, "cpu_seconds_worker_processes": cpu_children,
            "cpu_ms_per_feed": (cpu_self + cpu_children) * 1000 / feeds,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "max_rss_worker_mb": children.peak_kb / 1024}  # the largest parse worker process


def run_baseline(ports: list[int], feeds: int, sample: int) -> dict[str, object]:
    import feedparser

    step = max(1, feeds // sample)
    chosen = list(range(0, feeds, step))[:sample]
    entries = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    for n in chosen:
        parsed = feedparser.parse(feed_url(ports, n), etag=etag_of(n) if kind_of(n) == "not_modified" else None,
                                  agent="collect-benchmark-baseline")
        entries += len(parsed.entries)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    per_s = len(chosen) / elapsed
    return {"feeds_sampled": len(chosen), "seconds": elapsed, "feeds_per_s": per_s, "items_parsed": entries,
            "cpu_seconds": cpu, "cpu_ms_per_feed": cpu * 1000 / len(chosen),
            "items_per_s": entries / elapsed, "extrapolated_seconds_for_all": feeds / per_s,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=32, help="server ports, each standing for one host")
    parser.add_argument("--latency", type=float, default=100.0, help="ms each response waits (network stand-in)")
    parser.add_argument("--workers", type=int, default=64, help="the monitor's fetch_workers")
    parser.add_argument("--sample", type=int, default=100, help="feeds the baseline parses")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak (slower)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(queue, args.hosts, args.items, args.latency / 1000), daemon=True)
    server.start()
    try:
        ports = queue.get(timeout=30)
        monitor = run_monitor(ports, args.feeds, args.workers, args.tracemalloc, server.pid)
        baseline = run_baseline(ports, args.feeds, min(args.sample, args.feeds))
    finally:
        server.terminate()
        server.join(5)
    ratio = monitor["feeds_per_s"] / baseline["feeds_per_s"]  # type: ignore[operator]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    # 1/5/15-minute load averages before and after: other work on the machine slows the monitor
                    # (it wants every core) more than the sequential, mostly waiting baseline
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "mix": {"200": 0.70, "304": 0.20, "500": 0.05, "404": 0.03, "html": 0.02},
        "monitor": monitor, "baseline": baseline, "ratio_feeds_per_s": ratio,
        "ratio_items_per_s": monitor["items_per_s"] / baseline["items_per_s"],  # type: ignore[operator]
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    rows = [("", "feeds", "seconds", "feeds/s", "items/s", "x baseline", "max RSS MB"),
            ("monitor collect_round", f"{monitor['feeds']}", f"{monitor['seconds']:.2f}",
             f"{monitor['feeds_per_s']:.1f}", f"{monitor['items_per_s']:.0f}", f"{ratio:.1f}",
             f"{monitor['max_rss_mb']:.0f}"),
            ("feedparser.parse(url) sequential", f"{baseline['feeds_sampled']} (sample)",
             f"{baseline['seconds']:.2f}", f"{baseline['feeds_per_s']:.1f}", f"{baseline['items_per_s']:.0f}", "1.0",
             f"{baseline['max_rss_mb']:.0f}")]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    print(f"monitor outcomes: {monitor['outcomes']}; items stored: {monitor['items_stored']}; "
          f"latency {args.latency:g} ms, {args.hosts} hosts, {args.workers} workers")
    print(f"CPU per feed: monitor {monitor['cpu_ms_per_feed']:.1f} ms (parse processes "
          f"{monitor['cpu_seconds_worker_processes']:.1f} of {monitor['cpu_seconds']:.1f} s, largest "
          f"{monitor['max_rss_worker_mb']:.0f} MB RSS), baseline {baseline['cpu_ms_per_feed']:.1f} ms; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other work on the machine slows both)")
    if monitor["python_heap_peak_mb"] is not None:
        print(f"monitor Python heap peak: {monitor['python_heap_peak_mb']:.1f} MB")
    print(f"written: {args.out}")
    return report


if __name__ == "__main__":
    main()
