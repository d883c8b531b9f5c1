"""The review queue: filters in the URL and keyset pagination."""

from __future__ import annotations

from dashboard_fixtures import (  # noqa: F401 - pytest fixtures
    admin_client,
    app,
    client,
    dashboard_template_db,
    db_url,
    seeded,
    session_factory,
)
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
