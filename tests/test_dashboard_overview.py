"""The overview page: new flags today/this week, SVG charts with escaped labels, top outlets, precision."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import update

from dashboard.charts import line_chart, nice_max, stacked_bars
from dashboard_fixtures import VIEWER, login
from dashboard_rows import add_match
from monitor.queries import (
    count_flags,
    flags_per_day,
    precision_by_model,
    precision_by_week,
    top_contradicting_outlets,
)
from monitor.storage.db import make_engine, make_session_factory, transaction
from monitor.storage.tables import Match, utcnow

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _today() -> datetime:
    return datetime.combine(utcnow().date(), time.min, tzinfo=UTC)


@pytest.fixture
def backend_factory(database_url):
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_aggregates_group_in_sql_on_each_backend(backend_factory):
    now = utcnow()
    today = _today()
    with transaction(backend_factory) as s:
        add_match(s, feed="A", release="R1", created_at=now)
        add_match(s, feed="A", release="R1", created_at=now)
        add_match(s, feed="B", release="R2", created_at=today - timedelta(days=2), status="dismissed")
        add_match(s, feed="B", release="R2", created_at=now, label="supports")
        add_match(s, feed="C", release="R1", created_at=today - timedelta(days=60))
        week = datetime(2024, 5, 8, 10, tzinfo=UTC)  # a Wednesday; its week starts on Monday 6 May
        for status, version in (("confirmed", "v1"), ("confirmed", "v1"), ("dismissed", "v1"),
                                ("confirmed", "v2")):
            add_match(s, feed="D", created_at=LONG_AGO, status=status, reviewed_at=week, model_version=version)
        add_match(s, feed="D", created_at=LONG_AGO, status="confirmed", reviewed_at=week + timedelta(days=7),
                  model_version="v2")
    with backend_factory() as s:
        assert count_flags(s, today) == 2
        assert count_flags(s, today - timedelta(days=2)) == 3
        per_feed = {(d, name): n for d, _, name, n in flags_per_day(s, today - timedelta(days=29), "feed")}
        assert per_feed == {(today.date(), "A"): 2, (today.date() - timedelta(days=2), "B"): 1}
        per_release = {(d, name): n for d, _, name, n in flags_per_day(s, today - timedelta(days=29), "release")}
        assert per_release == {(today.date(), "R1"): 2, (today.date() - timedelta(days=2), "R2"): 1}
        top = [(name, n, c) for _, name, n, c in top_contradicting_outlets(s)]
        assert top[0] == ("D", 4, 4) and ("B", 1, 0) not in top  # dismissed flags do not count
        assert ("A", 2, 0) in top and ("C", 1, 0) in top
        assert precision_by_week(s) == [(date(2024, 5, 6), 3, 1), (date(2024, 5, 13), 1, 0)]
        assert precision_by_model(s) == [("m", 0, 1), ("v1", 2, 1), ("v2", 2, 0)]


def test_overview_page_counts_and_svg(admin_client, seeded, session_factory):
    now = utcnow()
    with transaction(session_factory) as s:
        s.execute(update(Match).values(created_at=LONG_AGO))  # the fixture's match is not "new today"
        add_match(s, feed="<script>alert(1)</script>", release="R & <D>", created_at=now)
        add_match(s, feed="<script>alert(1)</script>", created_at=now)
        add_match(s, feed="Old", created_at=now - timedelta(days=40))
        add_match(s, feed="Rev", created_at=LONG_AGO, status="confirmed", reviewed_at=now, model_version="m-9")
        add_match(s, feed="Rev", created_at=LONG_AGO, status="dismissed", reviewed_at=now, model_version="m-9")
    response = admin_client.get("/overview")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'id="new-today">2<', html)
    assert re.search(r'id="new-week">2<', html)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 3
    feed_svg = svgs[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in feed_svg and "<script>" not in feed_svg
    assert "R &amp; &lt;D&gt;" in svgs[1]
    assert "day (UTC)" in feed_svg and "flags" in feed_svg and "<rect" in feed_svg
    assert "<script>alert" not in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']
    assert "style=" not in html
    outlets = html.split('id="top-outlets"')[1].split("</table>")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a></td><td class=\"num\">2<" in outlets
    models = html.split('id="precision-models"')[1].split("</table>")[0]
    # merged with the live precision table: flags, confirmed, dismissed, precision, confirmed share
    assert ("<code>m-9</code></td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">1</td>"
            "<td class=\"num\">50%</td><td class=\"num\">50%</td>") in models
    assert "polyline" in svgs[2] or "<circle" in svgs[2]
    assert 'href="/overview"' in html  # in the nav


def test_overview_for_viewer_and_empty_database(client, seeded, session_factory):
    login(client, *VIEWER)
    with transaction(session_factory) as s:
        s.execute(update(Match).values(created_at=LONG_AGO))
    html = client.get("/overview").get_data(as_text=True)
    assert re.search(r'id="new-today">0<', html)
    assert "No flags in the last 30 days." in html and "No reviews yet." in html


def test_overview_needs_login(client):
    response = client.get("/overview")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_chart_helpers_escape_and_scale():
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(3)]
    svg = str(stacked_bars(days, [('"><img src=x>', [1, 0, 3]), ("Other", [0, 2, 0])], title="T <1>"))
    assert "<img" not in svg and "&#34;&gt;&lt;img src=x&gt;" in svg and "T &lt;1&gt;" in svg
    assert svg.count("<rect") == 3 + 2  # three bars with data, two legend swatches
    line = str(line_chart([("a", 0.5), ("b", None), ("c", 1.0)], title="P", y_label="y <", x_label="x"))
    assert "y &lt;" in line and line.count("<circle") == 2
    assert [nice_max(v) for v in (0, 1, 3, 7, 11, 230)] == [1, 1, 5, 10, 20, 500]


def test_overview_live_precision_per_release_outlet_and_model(admin_client, seeded, session_factory):
    with transaction(session_factory) as s:
        for status in ("confirmed", "confirmed", "dismissed", "new"):
            add_match(s, feed="Live <Outlet>", release="Live release", status=status, model_version="v-live")
        add_match(s, feed="Live <Outlet>", release="Live release", status="withdrawn", model_version="v-live")
        add_match(s, feed="Live <Outlet>", release="Live release", label="supports", status="confirmed")
    html = admin_client.get("/overview").get_data(as_text=True)
    row = ('</a></td><td class="num">4</td><td class="num">2</td><td class="num">1</td>'
           '<td class="num">67%</td><td class="num">50%</td>')
    releases = html.split('id="live-releases"')[1].split("</table>")[0]
    assert f">Live release{row}" in releases
    outlets = html.split('id="live-outlets"')[1].split("</table>")[0]
    assert f">Live &lt;Outlet&gt;{row}" in outlets and "<Outlet>" not in outlets
    assert re.search(r'href="/\?feed=\d+&amp;status=all">Live', outlets)
    models = html.split('id="precision-models"')[1].split("</table>")[0]
    assert "<code>v-live</code>" + row.removeprefix("</a>") in models
    # the fixture's open flag: no decision yet, so no precision
    assert ('<code>nli-test-1</code></td><td class="num">1</td><td class="num">0</td><td class="num">0</td>'
            '<td class="num">—</td><td class="num">0%</td>') in models
    assert html.count('id="precision-models"') == 1  # one per-model-version table, not two
