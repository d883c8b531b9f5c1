"""Reviewing a match from its page: confirm with a real CSRF token, dismiss with reason, roles, audit trail."""

from __future__ import annotations

from sqlalchemy import select

from dashboard_fixtures import ADMIN, REVIEWER, VIEWER, csrf_token_from, login
from monitor.storage.tables import Match, ReviewEvent


def _review(client, match_id, **data):
    token = csrf_token_from(client.get(f"/matches/{match_id}").get_data(as_text=True))
    return client.post(f"/matches/{match_id}/review", data={"csrf_token": token, **data})


def test_match_page_shows_both_sides_and_reasons(admin_client, seeded):
    page = admin_client.get(f"/matches/{seeded.match_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<mark class="hl hl-figure" title="figure">5,2%</mark>' in html
    assert '<mark class="hl hl-figure" title="figure">3,25%</mark>' in html
    assert "5,2% vs 3,25% for 2023 inflation" in html
    assert "nli-test-1" in html and "87%" in html
    assert 'href="https://news.example.vn/lam-phat-2023" rel="noopener noreferrer nofollow"' in html
    assert "Thông cáo báo chí về CPI năm 2023" in html
    assert "Tổng cục Thống kê công bố số liệu." in html  # release context around the statement
    assert "Not reviewed yet." in html


def test_confirm_with_csrf_token_records_review_and_audit(admin_client, seeded, session_factory):
    # the app fixture runs with CSRF enabled: the token comes from the rendered form
    response = _review(admin_client, seeded.match_id, action="confirm", note="checked against GSO table")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/matches/{seeded.match_id}"

    with session_factory() as session:
        match = session.get(Match, seeded.match_id)
        assert match.status == "confirmed"
        assert match.reviewed_by_id == seeded.admin_id
        assert match.reviewed_at is not None
        events = session.scalars(select(ReviewEvent).where(ReviewEvent.match_id == seeded.match_id)).all()
        assert [(e.action, e.from_status, e.to_status, e.user_id) for e in events] == [
            ("confirm", "new", "confirmed", seeded.admin_id)]
        assert events[0].note == "checked against GSO table"

    page = admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    assert "Confirmed." in page  # flash message
    assert 'class="audit-entry"' in page
    assert "checked against GSO table" in page
    assert "new → confirmed" in page
    assert ">admin<" in page
    # confirmed: no second confirm button, a reopen button instead
    assert 'value="confirm"' not in page and 'value="reopen"' in page


def test_dismiss_with_reason_stores_note(client, seeded, session_factory):
    login(client, *REVIEWER)
    response = _review(client, seeded.match_id, action="dismiss", dismiss_reason="different measure",
                       note="claim is core inflation")
    assert response.status_code == 302
    with session_factory() as session:
        match = session.get(Match, seeded.match_id)
        assert match.status == "dismissed"
        assert match.note == "different measure: claim is core inflation"
        event = session.scalars(select(ReviewEvent)).one()
        assert event.action == "dismiss" and event.note == "different measure: claim is core inflation"


def test_dismiss_needs_a_known_reason(admin_client, seeded, session_factory):
    _review(admin_client, seeded.match_id, action="dismiss", dismiss_reason="because")
    _review(admin_client, seeded.match_id, action="dismiss")
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).status == "new"
        assert session.scalars(select(ReviewEvent)).all() == []


def test_reopen_and_repeated_action(admin_client, seeded, session_factory):
    _review(admin_client, seeded.match_id, action="confirm")
    again = _review(admin_client, seeded.match_id, action="confirm")
    assert again.status_code == 302
    assert "already confirmed" in admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    _review(admin_client, seeded.match_id, action="reopen", note="new data")
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).status == "new"
        actions = [e.action for e in session.scalars(select(ReviewEvent).order_by(ReviewEvent.id))]
        assert actions == ["confirm", "reopen"]


def test_comment_keeps_status(admin_client, seeded, session_factory):
    _review(admin_client, seeded.match_id, action="comment", note="asked the ministry")
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).status == "new"
        assert session.scalars(select(ReviewEvent)).one().note == "asked the ministry"


def test_viewer_can_read_but_not_review(client, seeded, session_factory):
    login(client, *VIEWER)
    page = client.get(f"/matches/{seeded.match_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/review" not in html  # no review forms for viewers
    token = csrf_token_from(html)  # the logout form's token
    response = client.post(f"/matches/{seeded.match_id}/review", data={"csrf_token": token, "action": "confirm"})
    assert response.status_code == 403
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).status == "new"


def test_unknown_match_is_404(admin_client):
    assert admin_client.get("/matches/9999").status_code == 404
    token = csrf_token_from(admin_client.get("/").get_data(as_text=True))
    assert admin_client.post("/matches/9999/review", data={"csrf_token": token, "action": "confirm"}).status_code == 404


def test_post_without_csrf_token_is_rejected(admin_client, seeded, session_factory):
    response = admin_client.post(f"/matches/{seeded.match_id}/review", data={"action": "confirm"})
    assert response.status_code == 400
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).status == "new"
    assert admin_client.post("/logout").status_code == 400


def test_review_without_csrf_checks_when_disabled(tmp_path, seeded, session_factory):
    from dashboard_fixtures import make_test_app

    app = make_test_app(tmp_path, WTF_CSRF_ENABLED=False)
    client = app.test_client()
    client.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]})
    assert client.post(f"/matches/{seeded.match_id}/review", data={"action": "confirm"}).status_code == 302
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).status == "confirmed"
    app.extensions["monitor"].engine.dispose()


# --- escalate / resolve / assign, same story, neighbours, shortcuts --------------------------------------

import re  # noqa: E402

from dashboard_rows import add_item, add_match  # noqa: E402
from monitor.storage.db import transaction  # noqa: E402
from monitor.storage.tables import Claim, Item, User  # noqa: E402


def test_escalate_resolve_and_audit_trail(admin_client, seeded, session_factory):
    _review(admin_client, seeded.match_id, action="escalate", note="needs the minister")
    _review(admin_client, seeded.match_id, action="resolve", note="correction published")
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).status == "resolved"
        events = session.scalars(select(ReviewEvent).order_by(ReviewEvent.id)).all()
        assert [(e.action, e.from_status, e.to_status) for e in events] == [
            ("escalate", "new", "escalated"), ("resolve", "escalated", "resolved")]
    page = admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    assert "new → escalated" in page and "escalated → resolved" in page and "correction published" in page
    assert 'value="resolve"' not in page and 'value="escalate"' in page  # no repeat of the current state


def test_assign_to_active_reviewer_only(admin_client, seeded, session_factory):
    with session_factory() as session:
        users = {u.username: u.id for u in session.scalars(select(User))}
    page = admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    assign_select = page.split('id="assign-user"')[1].split("</select>")[0]
    assert "reviewer (reviewer)" in assign_select and "admin (admin)" in assign_select
    assert ">viewer " not in assign_select and "(viewer)" not in assign_select
    _review(admin_client, seeded.match_id, action="assign", assignee=str(users["viewer"]))
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).assignee_id is None
    _review(admin_client, seeded.match_id, action="assign", assignee=str(users["reviewer"]))
    page = admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    assert '<strong class="assignee">reviewer</strong>' in page and "assigned to reviewer" in page
    _review(admin_client, seeded.match_id, action="assign", assignee="")
    with session_factory() as session:
        assert session.get(Match, seeded.match_id).assignee_id is None
        assert [e.note for e in session.scalars(select(ReviewEvent).order_by(ReviewEvent.id))] == [
            "assigned to reviewer", "unassigned"]


def test_other_outlets_carrying_the_same_story(admin_client, seeded, session_factory):
    with transaction(session_factory) as session:
        template = session.get(Match, seeded.match_id)

        def same_statement(feed, title, label="contradicts", item=None):
            item = item or add_item(session, feed=feed, title=title)
            claim = Claim(item_id=item.id, position=9, source="body", text="c", start=0, end=1)
            session.add(claim)
            session.flush()
            match = Match(claim_id=claim.id, statement_id=template.statement_id, release_id=template.release_id,
                          label=label, score=0.6, reasons=[], model_version="m")
            session.add(match)
            session.flush()
            return match.id

        other = same_statement("<b>Tin Nhanh</b>", "Lạm phát 5,2% theo Tin Nhanh")
        same_statement("Supports Daily", "Supporting story", label="supports")
        same_statement("ignored", "ignored", item=session.get(Item, seeded.item_id))  # same item: excluded
        add_match(session, claim="different statement", feed="Elsewhere", title="Different statement story",
                  release="Release Z")
    page = admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    story = page.split('id="story-h"')[1].split("</section>")[0]
    assert "&lt;b&gt;Tin Nhanh&lt;/b&gt;" in story
    assert f'href="/matches/{other}"' in story and "Lạm phát 5,2% theo Tin Nhanh" in story
    assert "Supporting story" not in story and "Different statement story" not in story
    assert story.count("<li>") == 1


def test_match_page_neighbours_follow_queue_order_and_filters(admin_client, seeded, session_factory):
    with transaction(session_factory) as session:
        higher = add_match(session, claim="higher", score=0.95).id
        lower = add_match(session, claim="lower", score=0.10).id
        add_match(session, claim="other label", score=0.5, label="supports")
    page = admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    nav = re.search(r'<nav class="crumbs match-nav" id="match-nav"[^>]*>', page).group(0)
    assert f'data-prev-url="/matches/{higher}"' in nav and f'data-next-url="/matches/{lower}"' in nav
    # filters travel with the neighbours, and decide who they are
    page = admin_client.get(f"/matches/{seeded.match_id}?min=50").get_data(as_text=True)
    nav = re.search(r'<nav class="crumbs match-nav" id="match-nav"[^>]*>', page).group(0)
    assert f'data-prev-url="/matches/{higher}?min=50"' in nav and "data-next-url" not in nav
    assert 'data-queue-url="/?min=50"' in nav
    # reviewing keeps the queue context
    token = csrf_token_from(page)
    response = admin_client.post(f"/matches/{seeded.match_id}/review?min=50",
                                 data={"csrf_token": token, "action": "confirm"})
    assert response.headers["Location"] == f"/matches/{seeded.match_id}?min=50"


def test_match_page_lists_shortcuts_and_targets(admin_client, seeded):
    page = admin_client.get(f"/matches/{seeded.match_id}").get_data(as_text=True)
    assert '<details id="shortcuts"' in page
    for key in ("c", "d", "n", "p", "?"):
        assert f"<dt>{key}</dt>" in page
    assert 'id="confirm-form"' in page and 'id="dismiss-reason"' in page
    assert '<code class="model-version">nli-test-1</code>' in page
    assert '<strong class="confidence">87%</strong>' in page


def test_static_js_has_the_shortcuts():
    from pathlib import Path

    js = (Path(__file__).resolve().parents[1] / "dashboard" / "static" / "app.js").read_text()
    for needle in ('"data-next-url"', '"data-prev-url"', '"confirm-form"', '"dismiss-reason"', 'key === "?"',
                   'key === "j"', 'key === "k"', 'key === "o"'):
        assert needle in js

