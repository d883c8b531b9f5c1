"""Dashboard benchmark: the review queue and a match page on a big SQLite database, over real HTTP.

A database of ``--items`` items (default 1,000,000; one claim and one match per ``--items / --matches`` items,
default 100,000 matches) is generated with ``INSERT ... SELECT`` over recursive CTEs, after Alembic has made the
schema. The dashboard (``create_app(settings)``) is served by waitress in a subprocess on 127.0.0.1, an httpx
client signs in through the login form (CSRF token and all), and each page is requested ``--requests`` times:

* ``queue, first page``     ``/`` (the default filters: new contradictions)
* ``queue, page 500``       ``/?status=all&label=all&before=...`` (the cursor of page 500 computed in SQL)
* ``queue, search``         ``/?status=all&label=supports&q=<a word in ~1 % of claims>``
* ``match page``            ``/matches/<id>`` (claim and statement, neighbours, other outlets, audit trail)

Baseline and new are measured in the same run on the same rows: the database is generated at migration 0006
(before the search index and the indexes of 0007), measured, then upgraded to head and measured again. The table
gives p50/p95 of both, the ratio of the p95s, and pass/fail against the 150 ms target (of the new p95).
Written to ``benchmarks/results/dashboard.json``.

    python benchmarks/dashboard.py                     # 1,000,000 items, 100,000 matches
    python benchmarks/dashboard.py --items 100000      # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 150.0
PAGE_SIZE = 50  # dashboard QUEUE_PAGE_SIZE
SEARCH_WORD = "thủy điện"  # Vietnamese ("hydropower"), in 1 % of claims
ADMIN = ("bench-admin", "bench-password-1")
FEEDS = 50
RELEASES = 20
STATEMENTS_PER_RELEASE = 10

SEQ = "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n}) "
TIME = "strftime('%Y-%m-%d %H:%M:%S', 1704067200 + {x}, 'unixepoch') || '.000000'"
EN_WORDS = ("inflation", "budget", "police", "rainfall", "exports", "tuition", "hospital", "election", "traffic",
            "housing")
VI_WORDS = ("lạm phát", "ngân sách", "công an", "lượng mưa", "xuất khẩu", "học phí", "bệnh viện", "bầu cử",
            "giao thông", "nhà ở")
EN_PARA = ("Officials said on Monday that the figures published last week were preliminary and that the final "
           "numbers would follow after the audit. Analysts at several banks questioned the method, pointing to "
           "the change of base year and to the missing regional data. The ministry did not answer questions about "
           "the revision, but a spokesperson said the report would be updated before the end of the quarter. ")
VI_PARA = ("Các quan chức cho biết hôm thứ Hai rằng số liệu công bố tuần trước chỉ là sơ bộ và con số cuối cùng sẽ "
           "được đưa ra sau đợt kiểm toán. Nhiều chuyên gia ngân hàng đặt câu hỏi về phương pháp tính, chỉ ra việc "
           "thay đổi năm gốc và thiếu dữ liệu vùng. Bộ chưa trả lời câu hỏi về việc điều chỉnh, nhưng người phát "
           "ngôn cho biết báo cáo sẽ được cập nhật trước cuối quý. ")


def _case(expr: str, values: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN {n} THEN '{v}'" for n, v in enumerate(values))
    return f"(CASE {expr} {whens} END)"


def fill(path: Path, items: int, matches: int) -> dict[str, float]:
    """Generate the rows straight in SQL (one statement per table). Returns seconds per step."""
    every = max(1, items // matches)
    timings: dict[str, float] = {}
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")
    vi = "(i % 3 = 0)"  # a third of the feeds are Vietnamese
    steps = {
        "feeds": SEQ.format(n=FEEDS) + "INSERT INTO feeds (url, name, kind, interval_minutes, enabled, created_at, "
        "error_count, full_text) SELECT 'https://outlet' || i || '.example/rss', CASE WHEN " + vi
        + " THEN 'Báo Ví Dụ ' || i ELSE 'Outlet ' || i END, 'news', 30, 1, " + TIME.format(x="0") + ", 0, 0 FROM seq",
        "releases": SEQ.format(n=RELEASES) + "INSERT INTO releases (title, url, language, published_at, body, "
        "content_hash, source, retired, created_at) SELECT 'Official release ' || i, 'https://gov.example/r/' || i, "
        "'en', " + TIME.format(x="i * 86400") + ", 'Body of release ' || i, 'rh' || i, 'manual', 0, "
        + TIME.format(x="i * 86400") + " FROM seq",
        "statements": SEQ.format(n=RELEASES * STATEMENTS_PER_RELEASE) + "INSERT INTO statements (release_id, "
        "position, text, start, \"end\") SELECT 1 + (i - 1) / " + str(STATEMENTS_PER_RELEASE) + ", i, "
        "printf('In 2019 the department investigated 27 specialized criminal cases and arrested %d suspects.', "
        "100 + i), 0, 90 FROM seq",
        # items: the feed's language; title ~70, summary ~250, content ~600 characters
        "items": SEQ.format(n=items) + "INSERT INTO items (feed_id, guid, url, url_key, title, summary_text, "
        "content_text, content_html, language, published_at, fetched_at, content_hash, story_key, checked_at) "
        "SELECT 1 + i % " + str(FEEDS) + ", 'g' || i, 'https://news.example/' || i, 'k' || i, "
        "CASE WHEN " + vi.replace("i %", "(1 + i % " + str(FEEDS) + ") %") + " THEN printf('Tin %d: %s tăng %d%% "
        "so với cùng kỳ năm trước', i, " + _case("i % 10", VI_WORDS) + ", i % 90) ELSE printf('Story %d: %s up "
        "%d%% on the same period last year', i, " + _case("i % 10", EN_WORDS) + ", i % 90) END, "
        "CASE WHEN " + vi.replace("i %", "(1 + i % " + str(FEEDS) + ") %") + " THEN substr('" + VI_PARA + "', 1 + i % 40, 250) "
        "ELSE substr('" + EN_PARA + "', 1 + i % 40, 250) END, "
        "CASE WHEN " + vi.replace("i %", "(1 + i % " + str(FEEDS) + ") %") + " THEN substr('" + VI_PARA + VI_PARA
        + "', 1 + i % 80, 600) ELSE substr('" + EN_PARA + EN_PARA + "', 1 + i % 80, 600) END, '', "
        "CASE WHEN " + vi.replace("i %", "(1 + i % " + str(FEEDS) + ") %") + " THEN 'vi' ELSE 'en' END, "
        + TIME.format(x="i * 30") + ", " + TIME.format(x="i * 30 + 60") + ", 'h' || i, 's' || i, "
        + TIME.format(x="i * 30 + 120") + " FROM seq",
        # one claim for every ``every``-th item; the search word in 1 % of them
        "claims": "INSERT INTO claims (item_id, position, source, text, start, \"end\") "
        "SELECT id, 0, 'body', CASE WHEN language = 'vi' THEN printf('Công an đã điều tra %d vụ án chuyên biệt "
        "trong năm 2019%s, theo báo cáo %d.', CASE WHEN id % 2 THEN 27 ELSE 72 END, CASE WHEN (id / " + str(every)
        + ") % 100 = 7 THEN ' tại nhà máy " + SEARCH_WORD + "' ELSE '' END, id) ELSE printf('Police investigated "
        "%d specialized criminal cases in 2019%s, report %d says.', CASE WHEN id % 2 THEN 27 ELSE 72 END, "
        "CASE WHEN (id / " + str(every) + ") % 100 = 7 THEN ' at the " + SEARCH_WORD + " plant' ELSE '' END, id) "
        "END, 0, 0 FROM items WHERE id % " + str(every) + " = 0 ORDER BY id",
        "claims_end": "UPDATE claims SET \"end\" = length(text)",
        # one match per claim; labels and statuses mixed (hashes of the id, independent of the search word)
        "matches": "INSERT INTO matches (claim_id, statement_id, release_id, label, score, probabilities, reasons, "
        "model_version, status, uncertainty, created_at) SELECT c.id, s.id, s.release_id, "
        "CASE WHEN ((c.id / 3) * 7919) % 10 < 4 THEN 'contradicts' WHEN ((c.id / 3) * 7919) % 10 < 7 THEN 'supports' "
        "ELSE 'discusses' END, ((c.id * 2654435761) % 100003) / 100003.0, "
        "'{\"contradicts\": 0.6, \"supports\": 0.3, \"discusses\": 0.1}', "
        "json_array(json_object('kind', 'figure', 'text', '27 vs 72 cases', "
        "'claim_span', json_array(instr(c.text, CASE WHEN c.id % 2 THEN '27' ELSE '72' END) - 1, "
        "instr(c.text, CASE WHEN c.id % 2 THEN '27' ELSE '72' END) + 1), 'statement_span', json_array(40, 42))), "
        "'bench-1', CASE ((c.id / 11) * 13) % 10 WHEN 0 THEN 'confirmed' WHEN 1 THEN 'dismissed' WHEN 2 THEN "
        "'escalated' WHEN 3 THEN 'resolved' ELSE 'new' END, ((c.id * 31) % 1000) / 1000.0, "
        + TIME.format(x="c.id * 40") + " FROM claims c JOIN statements s ON s.id = 1 + c.id % "
        + str(RELEASES * STATEMENTS_PER_RELEASE),
    }
    for name, sql in steps.items():
        start = time.perf_counter()
        con.execute(sql)
        con.commit()
        timings[name] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    con.execute("ANALYZE")
    con.commit()
    timings["analyze"] = round(time.perf_counter() - start, 1)
    con.close()
    return timings


def make_admin(url: str) -> None:
    from monitor.accounts import create_user
    from monitor.storage.db import make_engine, make_session_factory, transaction

    engine = make_engine(url)
    with transaction(make_session_factory(engine)) as session:
        create_user(session, *ADMIN, role="admin")
    engine.dispose()


def serve(url: str, data_dir: str) -> None:
    """(In the subprocess) serve the dashboard with waitress on a free port; print the port."""
    from waitress import create_server

    from dashboard import create_app
    from monitor.config import load_settings

    settings = load_settings(database_url=url, data_dir=Path(data_dir), secret_key="bench-secret-key",
                             session_cookie_secure=False)
    app = create_app(settings)
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    print(server.effective_port, flush=True)  # type: ignore[union-attr]
    server.run()


class Server:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", url, str(data_dir)],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.proc.stdout.readline() if self.proc.stdout else ""  # type: ignore[union-attr]
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"the dashboard did not start: {line!r}")
        self.base = f"http://127.0.0.1:{int(line)}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def sign_in(base: str) -> Any:
    import httpx

    client = httpx.Client(base_url=base, timeout=120)
    page = client.get("/login").text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page)
    assert token, "no CSRF token on the login form"
    response = client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1],
                                           "csrf_token": token.group(1)})
    assert response.status_code == 302, f"sign-in failed: {response.status_code}"
    return client


def targets(path: Path) -> dict[str, list[str]]:
    """The URLs of each measured page (the match page cycles through a few new contradictions)."""
    con = sqlite3.connect(path)
    offset = PAGE_SIZE * 499 - 1  # the last row of page 499: page 500 starts after it
    row = con.execute("SELECT score, id FROM matches ORDER BY score DESC, id DESC LIMIT 1 OFFSET ?",
                      (offset,)).fetchone()
    ids = [r[0] for r in con.execute("SELECT id FROM matches WHERE status = 'new' AND label = 'contradicts' "
                                     "ORDER BY id LIMIT 20")]
    con.close()
    if row is None:
        raise SystemExit(f"fewer than {offset + 1} matches: page 500 does not exist; use more --items")
    from urllib.parse import quote

    return {
        "queue, first page": ["/"],
        "queue, page 500": [f"/?status=all&label=all&before={row[0]!r}:{row[1]}"],
        "queue, search + label": [f"/?status=all&label=supports&q={quote(SEARCH_WORD)}"],
        "match page": [f"/matches/{i}" for i in ids],
    }


def measure(client: Any, urls: list[str], requests: int, budget_s: float) -> dict[str, Any]:
    for url in urls[:2]:  # warm up (connections, caches)
        assert client.get(url).status_code == 200, url
    times: list[float] = []
    started = time.perf_counter()
    rows = None
    for n in range(requests):
        url = urls[n % len(urls)]
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        rows = response.text.count("<tr data-href=")
        if time.perf_counter() - started > budget_s and len(times) >= 5:
            break
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {"n": len(times), "p50_ms": round(statistics.median(times), 1), "p95_ms": round(p95, 1),
            "max_ms": round(times[-1], 1), "rows_on_page": rows, "url": urls[0]}


def run_phase(url: str, path: Path, data_dir: Path, requests: int, budget_s: float) -> dict[str, Any]:
    server = Server(url, data_dir)
    try:
        client = sign_in(server.base)
        return {name: measure(client, urls, requests, budget_s) for name, urls in targets(path).items()}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--matches", type=int, default=None, help="default: items / 10")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page (new)")
    parser.add_argument("--baseline-requests", type=int, default=20)
    parser.add_argument("--baseline-budget", type=float, default=60.0, help="seconds per baseline page at most")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "dashboard.json")
    parser.add_argument("--keep", type=Path, default=None, help="keep the database in this folder")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return

    from alembic.script import ScriptDirectory

    from monitor.storage.db import alembic_config, migrate

    matches = args.matches or args.items // 10
    folder = args.keep or Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dashboard.sqlite3"
    if path.exists():
        path.unlink()
    url = f"sqlite:///{path}"
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    t0 = time.perf_counter()
    migrate(url, "0006")
    timings = fill(path, args.items, matches)
    make_admin(url)
    timings["total_fill"] = round(time.perf_counter() - t0, 1)
    counts = {t: sqlite3.connect(path).execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("items", "claims", "matches")}
    print(f"generated {counts} in {timings['total_fill']} s; steps {timings}", flush=True)

    print("baseline (schema at 0006: no search index, no 0007 indexes) ...", flush=True)
    baseline = run_phase(url, path, folder, args.baseline_requests, args.baseline_budget)
    t0 = time.perf_counter()
    migrate(url, "head")
    timings["migrate_0007"] = round(time.perf_counter() - t0, 1)
    print(f"upgraded to {head} in {timings['migrate_0007']} s; measuring ...", flush=True)
    new = run_phase(url, path, folder, args.requests, 120.0)

    header = (f"{'page':<24} {'base p50':>9} {'base p95':>9} {'new p50':>8} {'new p95':>8} {'p95 ratio':>9} "
              f"{'target':>7} {'result':>6}")
    print(f"\n{counts['items']:,} items, {counts['matches']:,} matches, SQLite, waitress over HTTP (ms)")
    print(header)
    print("-" * len(header))
    rows = []
    for name in new:
        b, n = baseline[name], new[name]
        ratio = round(b["p95_ms"] / n["p95_ms"], 1) if n["p95_ms"] else None
        ok = n["p95_ms"] < TARGET_MS
        rows.append({"page": name, "baseline": b, "new": n, "p95_ratio": ratio, "pass": ok})
        print(f"{name:<24} {b['p50_ms']:>9.1f} {b['p95_ms']:>9.1f} {n['p50_ms']:>8.1f} {n['p95_ms']:>8.1f} "
              f"{(str(ratio) + 'x') if ratio else '-':>9} {TARGET_MS:>7.0f} {'pass' if ok else 'FAIL':>6}")
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "cpus": os.cpu_count(), "platform": platform.platform()},
        "items": counts["items"], "claims": counts["claims"], "matches": counts["matches"],
        "target_p95_ms": TARGET_MS, "search_word": SEARCH_WORD, "timings_s": timings,
        "baseline": "same run, same rows, schema at 0006 (before the search index and the 0007 indexes)",
        "results": rows, "all_pass": all(r["pass"] for r in rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten to {args.out}")
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
