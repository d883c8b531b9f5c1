"""The review queue: filters in the URL and keyset pagination."""

from __future__ import annotations

from monitor.storage.db import transaction
from monitor.storage.tables import Claim, Match, Statement


def _add_matches(session_factory, scores, label="contradicts", status="new"):
    with transaction(session_factory) as session:
        template = session.get(Match, 1)
        statement = session.get(Statement, template.statement_id)
        ids = []
        for n, score in enumerate(scores):
            claim = Claim(item_id=session.get(Claim, template.claim_id).item_id, position=100 + n + len(ids),
                          source="body", text=f"claim {label} {status} {score}", start=0, end=10)
            session.add(claim)
            session.flush()
            match = Match(claim_id=claim.id, statement_id=statement.id, release_id=statement.release_id,
                          label=label, score=score, reasons=[], model_version="m", status=status)
            session.add(match)
            session.flush()
            ids.append(match.id)
        return ids


def test_filters_default_to_new_contradictions(admin_client, seeded, session_factory):
    _add_matches(session_factory, [0.6], label="supports")
    _add_matches(session_factory, [0.7], status="dismissed")
    html = admin_client.get("/").get_data(as_text=True)
    assert "5,2%" in html
    assert "claim supports" not in html and "claim contradicts dismissed" not in html
    html = admin_client.get("/?status=dismissed&label=contradicts").get_data(as_text=True)
    assert "claim contradicts dismissed 0.7" in html and "5,2%" not in html
    html = admin_client.get("/?status=all&label=all").get_data(as_text=True)
    assert "claim supports new 0.6" in html and "claim contradicts dismissed 0.7" in html and "5,2%" in html
    # unknown values fall back to the defaults
    assert "5,2%" in admin_client.get("/?status=<b>&label=zzz").get_data(as_text=True)


def test_keyset_pagination(app, admin_client, seeded, session_factory):
    app.config["QUEUE_PAGE_SIZE"] = 2
    _add_matches(session_factory, [0.95, 0.9, 0.5])
    first = admin_client.get("/").get_data(as_text=True)
    assert "claim contradicts new 0.95" in first and "claim contradicts new 0.9<" in first
    assert 'rel="next"' in first
    next_href = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert "before=0.9%3A" in next_href or "before=0.9:" in next_href
    second = admin_client.get(next_href).get_data(as_text=True)
    assert "5,2%" in second and "claim contradicts new 0.5" in second  # 0.87 then 0.5
    assert "claim contradicts new 0.95" not in second
    assert 'rel="next"' not in second
    assert "First page" in second


def test_bad_before_is_400(admin_client):
    for value in ("x", "0.5", "nan:1", "inf:2", "0.5:abc", "0.5:-1"):
        assert admin_client.get(f"/?before={value}").status_code == 400, value


# --- combined filters, search and keyset pagination -------------------------------------------------------

import re  # noqa: E402
from datetime import UTC, date, datetime, timedelta  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import select  # noqa: E402

from dashboard_fixtures import ADMIN, REVIEWER, VIEWER, csrf_token_from, login  # noqa: E402
from dashboard_rows import add_match, add_user, get_feed, get_statement  # noqa: E402
from monitor.queries import MatchFilter, list_matches, neighbours  # noqa: E402
from monitor.storage.db import make_engine, make_session_factory  # noqa: E402
from monitor.storage.tables import ReviewEvent, User  # noqa: E402

T0 = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def backend_factory(database_url):
    """A session factory on each backend (SQLite and, when reachable, PostgreSQL), schema migrated."""
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def _ids(session, flt, **kwargs):
    return [m.id for m in list_matches(session, flt, **kwargs)]


def test_filters_combine_on_each_backend(backend_factory):
    with transaction(backend_factory) as s:
        me = add_user(s, "me-user")
        target = add_match(s, claim="Inflation hit 9%", feed="Outlet A", language="vi", score=0.9,
                           created_at=T0, published_at=T0 - timedelta(days=2), assignee_id=me.id)
        others = [
            add_match(s, claim="Inflation hit 9%", feed="Outlet B", language="vi", score=0.9, created_at=T0),
            add_match(s, claim="Inflation hit 9%", feed="Outlet A", language="en", score=0.9, created_at=T0),
            add_match(s, claim="Inflation hit 9%", feed="Outlet A", language="vi", score=0.4, created_at=T0),
            add_match(s, claim="Inflation hit 9%", feed="Outlet A", language="vi", score=0.9,
                      created_at=T0 - timedelta(days=30)),
            add_match(s, claim="Inflation hit 9%", feed="Outlet A", language="vi", score=0.9, created_at=T0,
                      release="Release B"),
            add_match(s, claim="Unrelated text", feed="Outlet A", language="vi", score=0.9, created_at=T0),
            add_match(s, claim="Inflation hit 9%", feed="Outlet A", language="vi", score=0.9, created_at=T0,
                      status="dismissed"),
            add_match(s, claim="Inflation hit 9%", feed="Outlet A", language="vi", score=0.9, created_at=T0,
                      label="supports"),
        ]
        feed_a = get_feed(s, "Outlet A").id
        release_a = get_statement(s, "Release A").release_id
        ids = {"target": target.id, "others": [m.id for m in others], "me": me.id}
    full = MatchFilter(status="new", label="contradicts", feed_id=feed_a, release_id=release_a, language="VI",
                       min_score=0.5, date_from=date(2024, 3, 1), date_to=date(2024, 3, 10), q="inflation",
                       assignee_id=ids["me"])
    with backend_factory() as s:
        assert _ids(s, full) == [ids["target"]]
        # without the assignee filter every "other" that differs in another way is still excluded
        loose = MatchFilter(**{**full.__dict__, "assignee_id": None})
        assert _ids(s, loose) == [ids["target"]]
        # each single filter on its own lets more through
        assert len(_ids(s, MatchFilter(q="INFLATION"))) == 8
        assert len(_ids(s, MatchFilter(language="vi"))) == 8
        assert _ids(s, MatchFilter(unassigned=True, status="dismissed")) == [ids["others"][6]]
        # date range on the item's publication day
        assert _ids(s, MatchFilter(date_field="published", date_from=date(2024, 3, 8),
                                   date_to=date(2024, 3, 8))) == [ids["target"]]


def test_search_is_case_insensitive_unicode_and_escapes_wildcards(backend_factory):
    with transaction(backend_factory) as s:
        title_hit = add_match(s, claim="Phiên tòa hôm nay", title="Xét xử VỤ ÁN tham nhũng lớn")
        text_hit = add_match(s, claim="x", text="Toà án mở lại vụ án năm 2020.")
        claim_hit = add_match(s, claim="Vụ Án được đưa ra xét xử")
        miss = add_match(s, claim="vu an khong dau")
        percent = add_match(s, claim="Growth of 50% this year")
        underscore = add_match(s, claim="file_name here")
        ids = (title_hit.id, text_hit.id, claim_hit.id, miss.id, percent.id, underscore.id)
    with backend_factory() as s:
        assert sorted(_ids(s, MatchFilter(q="vụ án"))) == sorted(ids[:3])
        assert sorted(_ids(s, MatchFilter(q="VỤ ÁN"))) == sorted(ids[:3])
        assert _ids(s, MatchFilter(q="50%")) == [ids[4]]
        assert _ids(s, MatchFilter(q="%")) == [ids[4]]  # a literal percent sign, not "anything"
        assert _ids(s, MatchFilter(q="h_s")) == []  # "_" is literal too (else it would match "this")
        assert _ids(s, MatchFilter(q="file_name")) == [ids[5]]


def test_keyset_pages_with_filters_cover_everything_once(backend_factory):
    with transaction(backend_factory) as s:
        wanted = [add_match(s, claim=f"wanted {n}", language="vi", score=[0.9, 0.8, 0.8, 0.8, 0.3][n]).id
                  for n in range(5)]
        for n in range(4):
            add_match(s, claim=f"noise {n}", language="en", score=0.8)
    flt = MatchFilter(language="vi", q="wanted")
    seen = []
    before = None
    with backend_factory() as s:
        while True:
            page = list_matches(s, flt, limit=2, before=before)
            if not page:
                break
            seen += [m.id for m in page]
            before = (page[-1].score, page[-1].id)
        assert seen == [wanted[0], wanted[3], wanted[2], wanted[1], wanted[4]]  # score desc, then newest
        assert neighbours(s, flt, 0.8, wanted[2]) == (wanted[3], wanted[1])
        assert neighbours(s, flt, 0.9, wanted[0]) == (None, wanted[3])


def _next_href(html):
    found = re.search(r'<a href="([^"]+)" rel="next">Next page', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_queue_url_filters_survive_pagination(app, admin_client, session_factory):
    app.config["QUEUE_PAGE_SIZE"] = 2
    with transaction(session_factory) as s:
        for n in range(5):
            add_match(s, claim=f"Giá xăng tăng {n}", feed="Báo Hai", language="vi", score=0.9 - n / 100)
        add_match(s, claim="Giá xăng tăng other outlet", feed="Other", language="vi", score=0.95)
        add_match(s, claim="unrelated", feed="Báo Hai", language="vi", score=0.99)
        feed_id = get_feed(s, "Báo Hai").id
    url = f"/?q=gi%C3%A1+x%C4%83ng&feed={feed_id}&lang=vi&min=50"
    claims = []
    pages = 0
    while url:
        html = admin_client.get(url).get_data(as_text=True)
        claims += re.findall(r'<td class="claim">([^<]+)</td>', html)
        url = _next_href(html)
        if url:
            query = parse_qs(urlsplit(url).query)
            assert query["q"] == ["giá xăng"] and query["feed"] == [str(feed_id)]
            assert query["lang"] == ["vi"] and query["min"] == ["50"] and "before" in query
        pages += 1
    assert claims == [f"Giá xăng tăng {n}" for n in range(5)]
    assert pages == 3


def test_queue_links_keep_filters_for_rows_exports_and_bulk(admin_client, seeded):
    html = admin_client.get("/?status=all&q=l%E1%BA%A1m&min=10").get_data(as_text=True)
    for endpoint in ("/export/matches.csv", "/export/matches.json", "/export/claimreview.jsonld",
                     f"/matches/{seeded.match_id}", "/matches/bulk"):
        href = re.search(rf'(?:href|action)="({re.escape(endpoint)}\?[^"]*)"', html)
        assert href, endpoint
        query = parse_qs(urlsplit(href.group(1).replace("&amp;", "&")).query)
        assert query == {"status": ["all"], "q": ["lạm"], "min": ["10"]}, endpoint
    assert 'value="lạm"' in html


def test_bad_filter_values_fall_back(admin_client, seeded):
    for query in ("feed=abc", "release=-1", "from=2024-13-40", "to=yesterday", "min=nan", "min=500",
                  "assignee=<x>", "lang=%3Cscript%3E", "date_field=zzz"):
        response = admin_client.get(f"/?{query}")
        assert response.status_code == 200, query
        assert "5,2%" in response.get_data(as_text=True), query


# --- assignment and bulk actions --------------------------------------------------------------------------

def _queue_token(client):
    return csrf_token_from(client.get("/?status=all").get_data(as_text=True))


def test_assign_then_filter_me_and_unassigned(app, client, seeded, session_factory):
    login(client, *REVIEWER)
    with session_factory() as s:
        reviewer_id = s.scalar(select(User.id).where(User.username == REVIEWER[0]))
    page = client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    response = client.post(f"/matches/{seeded.match_id}/review",
                           data={"csrf_token": csrf_token_from(page), "action": "assign",
                                 "assignee": str(reviewer_id)})
    assert response.status_code == 302
    mine = client.get("/?assignee=me").get_data(as_text=True)
    assert "5,2%" in mine and '<option value="me" selected>' in mine
    assert "5,2%" not in client.get("/?assignee=unassigned").get_data(as_text=True)
    admin = app.test_client()
    login(admin, *ADMIN)  # the admin's "me" is someone else
    assert "5,2%" not in admin.get("/?assignee=me").get_data(as_text=True)
    assert "5,2%" in admin.get(f"/?assignee={reviewer_id}").get_data(as_text=True)


def test_bulk_confirm_writes_one_event_per_match(admin_client, seeded, session_factory):
    with transaction(session_factory) as s:
        extra = [add_match(s, claim=f"bulk {n}", score=0.5).id for n in range(3)]
        already = add_match(s, claim="already", status="confirmed").id
    ids = [seeded.match_id, *extra, already]
    response = admin_client.post("/matches/bulk?status=all&q=bulk", data={
        "csrf_token": _queue_token(admin_client), "action": "confirm", "note": "batch", "ids": [str(i) for i in ids]})
    assert response.status_code == 302
    assert response.headers["Location"] == "/?status=all&q=bulk"
    with session_factory() as s:
        events = s.scalars(select(ReviewEvent).order_by(ReviewEvent.id)).all()
        assert sorted(e.match_id for e in events) == sorted([seeded.match_id, *extra])
        assert {(e.action, e.from_status, e.to_status, e.user_id, e.note) for e in events} == {
            ("confirm", "new", "confirmed", seeded.admin_id, "batch")}
        assert {s.get(Match, i).status for i in ids} == {"confirmed"}
    assert "Confirmed 4 matches. 1 already had that state." in admin_client.get("/").get_data(as_text=True)


def test_bulk_dismiss_needs_reason_and_assign_needs_reviewer(admin_client, seeded, session_factory):
    token = _queue_token(admin_client)
    admin_client.post("/matches/bulk", data={"csrf_token": token, "action": "dismiss", "ids": [str(seeded.match_id)]})
    with session_factory() as s:
        viewer_id = s.scalar(select(User.id).where(User.username == VIEWER[0]))
    admin_client.post("/matches/bulk", data={"csrf_token": token, "action": "assign", "assignee": str(viewer_id),
                                             "ids": [str(seeded.match_id)]})
    with session_factory() as s:
        assert s.scalars(select(ReviewEvent)).all() == []
    admin_client.post("/matches/bulk", data={"csrf_token": token, "action": "dismiss", "dismiss_reason": "duplicate",
                                             "ids": [str(seeded.match_id), "99999", "junk"]})
    with session_factory() as s:
        match = s.get(Match, seeded.match_id)
        assert match.status == "dismissed" and match.note == "duplicate"
        assert len(s.scalars(select(ReviewEvent)).all()) == 1


def test_bulk_assign(admin_client, seeded, session_factory):
    with transaction(session_factory) as s:
        other = add_match(s, claim="to assign").id
        reviewer_id = s.scalar(select(User.id).where(User.username == REVIEWER[0]))
    admin_client.post("/matches/bulk", data={"csrf_token": _queue_token(admin_client), "action": "assign",
                                             "assignee": str(reviewer_id), "ids": [str(seeded.match_id), str(other)]})
    with session_factory() as s:
        assert {s.get(Match, i).assignee_id for i in (seeded.match_id, other)} == {reviewer_id}
        events = s.scalars(select(ReviewEvent)).all()
        assert [(e.action, e.note) for e in events] == [("assign", "assigned to reviewer")] * 2


def test_viewer_cannot_post_bulk(client, seeded, session_factory):
    login(client, *VIEWER)
    html = client.get("/").get_data(as_text=True)
    assert 'id="bulk"' not in html and 'name="ids"' not in html
    response = client.post("/matches/bulk", data={"csrf_token": csrf_token_from(html), "action": "confirm",
                                                  "ids": [str(seeded.match_id)]})
    assert response.status_code == 403
    with session_factory() as s:
        assert s.get(Match, seeded.match_id).status == "new"
        assert s.scalars(select(ReviewEvent)).all() == []


def test_bulk_without_csrf_is_rejected(admin_client, seeded, session_factory):
    response = admin_client.post("/matches/bulk", data={"action": "confirm", "ids": [str(seeded.match_id)]})
    assert response.status_code == 400
    with session_factory() as s:
        assert s.get(Match, seeded.match_id).status == "new"


def test_queue_renders_shortcut_help_without_js(admin_client, seeded):
    html = admin_client.get("/").get_data(as_text=True)
    assert '<details id="shortcuts"' in html
    for key in ("<dt>j</dt>", "<dt>k</dt>", "<dt>Enter / o</dt>", "<dt>?</dt>"):
        assert key in html



# --- order by uncertainty (active learning) ----------------------------------------------------------------

def test_queue_order_by_uncertainty_pages_and_keeps_filters(app, admin_client, seeded, session_factory):
    app.config["QUEUE_PAGE_SIZE"] = 2
    with transaction(session_factory) as s:
        made = {}
        for claim, score, unc in (("u-low", 0.95, 0.1), ("u-high", 0.6, 0.9), ("u-mid", 0.7, 0.5),
                                  ("u-unknown", 0.99, None)):
            made[claim] = add_match(s, claim=claim, feed="Learn", score=score)
            made[claim].uncertainty = unc
        add_match(s, claim="u-other-outlet", feed="Elsewhere", score=0.5).uncertainty = 0.99
        feed_id = get_feed(s, "Learn").id
        ids = {claim: m.id for claim, m in made.items()}
    default = admin_client.get(f"/?feed={feed_id}").get_data(as_text=True)
    assert re.findall(r'<td class="claim">([^<]+)</td>', default) == ["u-unknown", "u-low"]  # confidence order
    assert '<option value="confidence" selected>' in default and ">Uncertainty</th>" not in default

    url, claims, pages = f"/?feed={feed_id}&order=uncertainty", [], 0
    while url:
        html = admin_client.get(url).get_data(as_text=True)
        assert '<option value="uncertainty" selected>' in html and ">Uncertainty</th>" in html
        claims += re.findall(r'<td class="claim">([^<]+)</td>', html)
        url = _next_href(html)
        if url:
            query = parse_qs(urlsplit(url).query)
            assert query["order"] == ["uncertainty"] and query["feed"] == [str(feed_id)]
            assert query["before"] == [f"0.5:{ids['u-mid']}"]
        pages += 1
    assert claims == ["u-high", "u-mid", "u-low", "u-unknown"]  # unknown uncertainty last
    assert pages == 2

    # the match page's previous / next follow the same order and keep it in their links
    html = admin_client.get(f"/matches/{ids['u-mid']}?feed={feed_id}&order=uncertainty").get_data(as_text=True)
    prev_href = re.search(r'data-prev-url="([^"]+)"', html).group(1).replace("&amp;", "&")
    next_href = re.search(r'data-next-url="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert urlsplit(prev_href).path == f"/matches/{ids['u-high']}" and "order=uncertainty" in prev_href
    assert urlsplit(next_href).path == f"/matches/{ids['u-low']}"
    html = admin_client.get(f"/matches/{ids['u-low']}?feed={feed_id}&order=uncertainty").get_data(as_text=True)
    next_href = re.search(r'data-next-url="([^"]+)"', html).group(1)
    assert urlsplit(next_href).path == f"/matches/{ids['u-unknown']}"
    html = admin_client.get(f"/matches/{ids['u-unknown']}?feed={feed_id}&order=uncertainty").get_data(as_text=True)
    assert "data-next-url" not in html

    # an unknown order falls back to the default
    html = admin_client.get(f"/?feed={feed_id}&order=random").get_data(as_text=True)
    assert re.findall(r'<td class="claim">([^<]+)</td>', html) == ["u-unknown", "u-low"]
