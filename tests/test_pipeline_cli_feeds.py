"""The feed commands of the console script: health JSON, OPML import/export, pause/resume, --full-text."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from tests.test_cli_end_to_end import cli  # noqa: F401  (fixture)
except ImportError:  # tests/ is not a package
    from test_cli_end_to_end import cli  # noqa: F401

OPML = b"""<?xml version="1.0"?><opml version="2.0"><head><title>t</title></head><body>
<outline text="Folder"><outline text="One" type="rss" xmlUrl="%(one)s"/></outline>
<outline text="Gov" type="rss" xmlUrl="https://gov.example.org/rss" category="official"/>
<outline text="broken" type="rss" xmlUrl="ftp://nope.example/x"/>
</body></opml>"""


def test_feed_commands(cli, feed_server, make_rss, tmp_path: Path) -> None:
    cli("init")
    ok = feed_server.serve("/one.xml", make_rss([{"title": "A", "link": "https://n.example/a", "guid": "a"},
                                                 {"title": "B", "link": "https://n.example/b", "guid": "b"}]))
    (tmp_path / "in.opml").write_bytes(OPML % {b"one": ok.encode()})
    out = cli("feeds", "import-opml", str(tmp_path / "in.opml")).stdout
    assert "added 2 feeds" in out and "1 invalid" in out
    assert "skipped 2" in cli("feeds", "import-opml", str(tmp_path / "in.opml")).stdout
    bad = feed_server.serve("/bad.xml", b"x", status=500)
    assert "(full text)" in cli("feeds", "add", bad, "--full-text").stdout

    listed = json.loads(cli("feeds", "list", "--json").stdout)
    assert [row["status"] for row in listed] == ["new", "new", "new"]
    assert cli("feeds", "pause", "2").returncode == 0
    fetched = cli("fetch")
    assert fetched.returncode == 0 and "error: HTTP 500" in fetched.stdout  # a failing feed is not a failed round
    rows = {row["id"]: row for row in json.loads(cli("feeds", "list", "--json").stdout)}
    for row in rows.values():
        for key in ("id", "url", "name", "kind", "status", "last_fetched_at", "last_error", "consecutive_failures",
                    "next_fetch_at", "items"):
            assert key in row
    assert (rows[1]["status"], rows[1]["items"], rows[1]["last_error"]) == ("ok", 2, None)
    assert rows[2]["status"] == "disabled" and rows[2]["kind"] == "official" and rows[2]["last_fetched_at"] is None
    assert (rows[3]["status"], rows[3]["consecutive_failures"], rows[3]["full_text"]) == ("error", 1, True)
    assert "HTTP 500" in rows[3]["last_error"] and rows[3]["next_fetch_at"]
    cli("feeds", "resume", "2")
    assert json.loads(cli("feeds", "list", "--json").stdout)[1]["status"] == "new"
    assert "2 items" in cli("feeds", "list").stdout

    exported = cli("feeds", "export-opml").stdout
    assert ok in exported and 'category="official"' in exported
    assert "wrote 3 feeds" in cli("feeds", "export-opml", str(tmp_path / "out.opml")).stdout
    assert (tmp_path / "out.opml").read_bytes().startswith(b"<?xml")
    for args in (["feeds", "import-opml"], ["feeds", "export-opml"], ["feeds", "pause"], ["feeds", "resume"]):
        assert "Usage:" in cli(*args, "--help").stdout
