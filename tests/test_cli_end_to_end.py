"""The whole path through the console script, as subprocesses on a temporary database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RELEASE = """# Ministry of Public Security reviews the Department of Cyber Security and Hi-tech Crime Prevention in 2019

In 2019, the department investigated 27 specialized criminal cases and arrested 121 suspects.
The department also extradited 555 foreign criminals to their home countries.
"""

ITEMS = [
    {"title": "Cyber police investigated 72 specialized criminal cases in 2019",
     "link": "https://news.example.org/a?utm_source=rss", "guid": "a",
     "description": "<p>The ministry's cyber department investigated 72 specialized criminal cases last year.</p>"},
    {"title": "Cyber crime department reports 27 cases and 121 arrests for 2019",
     "link": "https://news.example.org/b", "guid": "b",
     "description": "<p>The department investigated 27 specialized criminal cases in 2019 and arrested "
                    "121 suspects, the ministry said.</p>"},
]


def monitor_cmd() -> list[str]:
    script = shutil.which("monitor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "monitor"]


@pytest.fixture
def cli(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(MONITOR_DATA_DIR=str(tmp_path / "var"), MONITOR_FETCH_ALLOW_HOSTS="127.0.0.1",
               MONITOR_ADMIN_PASSWORD="correct horse battery")

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*monitor_cmd(), *args], env=env, cwd=tmp_path, input=stdin, text=True,
                              capture_output=True, timeout=300)
        if ok:
            assert proc.returncode == 0, f"monitor {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run


def test_feed_to_flag_through_the_cli(cli, feed_server, make_rss, tmp_path: Path) -> None:
    url = feed_server.serve("/news.xml", make_rss(ITEMS))
    release_file = tmp_path / "release.md"
    release_file.write_text(RELEASE, encoding="utf-8")

    assert "database ready" in cli("init").stdout
    assert "added release 1" in cli("releases", "add", str(release_file), "--published", "2019-12-30").stdout
    assert "added news feed 1" in cli("feeds", "add", url, "--name", "Local News").stdout

    fetched = cli("fetch").stdout
    assert "new 2, updated 0, unchanged 0, error: none" in fetched
    checked = cli("check").stdout
    assert "flagged" in checked

    matches = json.loads(cli("matches", "list", "--json").stdout)
    flagged = [m for m in matches if m["label"] == "contradicts"]
    assert flagged, matches
    by_guid = {m["item"]["guid"] for m in flagged}
    assert "a" in by_guid, "the item with the wrong figure must be flagged"
    assert "b" not in by_guid, "the faithful report must not be flagged"
    wrong = next(m for m in flagged if m["item"]["guid"] == "a")
    for key in ("id", "label", "score", "status", "claim", "statement", "item", "release", "reasons"):
        assert key in wrong
    assert wrong["item"]["url"] == "https://news.example.org/a"  # tracking parameters stripped
    assert wrong["item"]["feed"] == "Local News"
    assert wrong["release"]["id"] == 1
    figure = [r for r in wrong["reasons"] if r["kind"] == "figure"]
    assert figure and "27" in figure[0]["text"] and "72" in figure[0]["text"]

    # a second round finds nothing new and flags nothing twice
    assert "new 0, updated 0, unchanged" in cli("fetch").stdout
    cli("check")
    again = json.loads(cli("matches", "list", "--json", "--label", "contradicts").stdout)
    assert sorted(m["id"] for m in again) == sorted(m["id"] for m in flagged)


def test_bad_input_gives_plain_errors(cli, feed_server, tmp_path: Path) -> None:
    cli("init")
    bad = cli("feeds", "add", "ftp://example.org/feed", ok=False)
    assert bad.returncode != 0 and "must start with" in bad.stderr
    url = feed_server.serve("/page", b"<html><body>Just a moment...</body></html>", headers={
        "Content-Type": "text/html"})
    cli("feeds", "add", url)
    fetched = cli("fetch")
    assert "error:" in fetched.stdout and "not a feed" in fetched.stdout
    listed = json.loads(cli("feeds", "list", "--json").stdout)
    assert listed[0]["error_count"] == 1 and "not a feed" in listed[0]["last_error"]
    missing = cli("releases", "add", str(tmp_path / "nope.txt"), ok=False)
    assert "cannot read" in missing.stderr or "does not exist" in missing.stderr


def test_release_from_stdin_and_every_command_has_help(cli) -> None:
    cli("init")
    out = cli("releases", "add", "-", "--title", "Thông cáo", "--language", "vi",
              stdin="Năm 2019, Cục đã điều tra 27 vụ án chuyên đề, bắt giữ 121 đối tượng.").stdout
    assert "Thông cáo" in out
    listed = json.loads(cli("releases", "list", "--json").stdout)
    assert listed[0]["language"] == "vi" and listed[0]["statements"] >= 1
    for args in (["init"], ["releases", "add"], ["releases", "list"], ["feeds", "add"], ["feeds", "list"],
                 ["feeds", "remove"], ["fetch"], ["check"], ["matches", "list"], ["run"], ["scheduler"],
                 ["dashboard"], ["users", "add"], ["demo"]):
        assert "Usage:" in cli(*args, "--help").stdout


def test_demo_flags_the_wrong_figures_and_the_denials_and_nothing_else(cli, tmp_path: Path) -> None:
    """`monitor demo --no-serve`: the bundled model on the demo release and feed, as the README's first command."""
    import sqlite3

    out = cli("demo", "--no-serve").stdout
    assert "flagged as contradictions" in out
    db = sqlite3.connect(tmp_path / "var" / "monitor.sqlite3")
    flags = db.execute("select c.text, s.text from matches m join claims c on c.id = m.claim_id "
                       "join statements s on s.id = m.statement_id where m.label = 'contradicts'").fetchall()
    claims = {c for c, _ in flags}
    assert any("72" in c and "vụ án" in c for c in claims) and any("72 specialized" in c for c in claims)
    assert any("deny extraditing 555" in c for c in claims)
    for claim, statement in flags:
        # every flag pairs a claim with a statement about the same thing: a figure, or the extraditions
        assert ("72" in claim and "27" in statement) or ("555" in claim and "555" in statement), (claim, statement)
    assert not any("27 cases and 121 arrests" in c for c in claims)  # the faithful report
