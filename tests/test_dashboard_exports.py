"""Exports of the filtered queue (CSV, JSON) and confirmed contradictions as schema.org ClaimReview JSON-LD."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from dashboard.exports import csv_cell
from dashboard_fixtures import VIEWER, csrf_token_from, login
from dashboard_rows import add_match
from monitor.storage.db import transaction


def _csv(response):
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_csv_is_filtered_streamed_and_formula_safe(app, admin_client, seeded, session_factory):
    app.config["EXPORT_MAX_ROWS"] = 1000
    with transaction(session_factory) as s:
        add_match(s, claim='=HYPERLINK("http://evil.example","click")', feed="+Outlet", title="@title",
                  score=0.7, language="vi")
        add_match(s, claim="-2+3", feed="Plain", title="ok", score=0.6)
        add_match(s, claim="dismissed one", status="dismissed")
        for n in range(250):  # more than one keyset batch of the streamer's buffer
            add_match(s, claim=f"bulk row {n}", score=0.1, label="supports")
    response = admin_client.get("/export/matches.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv" and response.is_streamed
    assert 'attachment; filename="matches.csv"' in response.headers["Content-Disposition"]
    rows = _csv(response)
    assert [r["claim"] for r in rows] == [
        "Tỷ lệ lạm phát năm 2023 là 5,2%, theo báo cáo mới.", '\'=HYPERLINK("http://evil.example","click")',
        "'-2+3"]
    assert rows[1]["outlet"] == "'+Outlet" and rows[1]["item_title"] == "'@title"
    assert rows[0]["confidence"] == "0.87" and rows[0]["model_version"] == "nli-test-1"
    # the same filters as the queue
    assert [r["claim"] for r in _csv(admin_client.get("/export/matches.csv?status=dismissed"))] == ["dismissed one"]
    assert len(_csv(admin_client.get("/export/matches.csv?label=supports"))) == 250
    assert [r["id"] for r in _csv(admin_client.get("/export/matches.csv?lang=vi&q=hyperlink"))] == [rows[1]["id"]]


def test_csv_cell_guard():
    assert [csv_cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=x", "plain", "", None, 3, -1.5)] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\t=x", "plain", "", "", 3, -1.5]


def test_json_export_keeps_filters(admin_client, seeded, session_factory):
    with transaction(session_factory) as s:
        add_match(s, claim="Giá điện tăng 20%", score=0.5)
        add_match(s, claim="unrelated", score=0.4)
    response = admin_client.get("/export/matches.json?q=gi%C3%A1+%C4%91i%E1%BB%87n")
    assert response.mimetype == "application/json"
    body = json.loads(response.get_data(as_text=True))
    assert [m["claim"] for m in body] == ["Giá điện tăng 20%"]
    everything = json.loads(admin_client.get("/export/matches.json").get_data(as_text=True))
    assert [m["score"] for m in everything] == [0.87, 0.5, 0.4]
    assert everything[0]["item"]["feed"] == "Báo Ví Dụ" and everything[0]["assignee"] is None


def _confirm(client, match_id):
    token = csrf_token_from(client.get(f"/matches/{match_id}").get_data(as_text=True))
    assert client.post(f"/matches/{match_id}/review", data={"csrf_token": token, "action": "confirm"}).status_code == 302


def test_claimreview_jsonld(admin_client, seeded, session_factory):
    with transaction(session_factory) as s:
        add_match(s, claim="not reviewed yet")
        add_match(s, claim="a supported claim", label="supports", status="confirmed",
                  reviewed_at=datetime(2024, 2, 1, tzinfo=UTC))
    empty = json.loads(admin_client.get("/export/claimreview.jsonld").get_data(as_text=True))
    assert empty == {"@context": "https://schema.org", "@graph": []}
    _confirm(admin_client, seeded.match_id)
    response = admin_client.get("/export/claimreview.jsonld?status=new")  # status/label forced to confirmed
    assert response.mimetype == "application/ld+json"
    doc = json.loads(response.get_data(as_text=True))
    assert doc["@context"] == "https://schema.org"
    assert len(doc["@graph"]) == 1
    review = doc["@graph"][0]
    assert review["@type"] == "ClaimReview"
    assert review["claimReviewed"] == "Tỷ lệ lạm phát năm 2023 là 5,2%, theo báo cáo mới."
    assert review["author"] == {"@type": "Organization", "name": "Press office"}
    assert review["url"] == "https://gso.gov.vn/cpi-2023"
    assert review["reviewRating"]["@type"] == "Rating" and review["reviewRating"]["alternateName"] == "False"
    assert isinstance(review["reviewRating"]["ratingValue"], int)
    assert datetime.fromisoformat(review["datePublished"]).date() == datetime.now(UTC).date()
    claim = review["itemReviewed"]
    assert claim["@type"] == "Claim" and claim["author"] == {"@type": "Organization", "name": "Báo Ví Dụ"}
    assert claim["appearance"][0]["url"] == "https://news.example.vn/lam-phat-2023"
    assert "not reviewed yet" not in json.dumps(doc, ensure_ascii=False)
    assert "a supported claim" not in json.dumps(doc, ensure_ascii=False)


def test_claimreview_organisation_from_config_and_escaped(app, admin_client, seeded, session_factory):
    app.config["ORGANISATION_NAME"] = "Bộ Tài chính </script>"
    with transaction(session_factory) as s:
        add_match(s, claim="claim with <script>", status="confirmed", reviewed_at=datetime(2024, 2, 1, tzinfo=UTC),
                  item_url="javascript:alert(1)")
    text = admin_client.get("/export/claimreview.jsonld").get_data(as_text=True)
    assert "<" not in text
    review = json.loads(text)["@graph"][0]
    assert review["author"]["name"] == "Bộ Tài chính </script>"
    assert review["datePublished"] == "2024-02-01"
    assert "url" not in review["itemReviewed"]["appearance"][0]  # unsafe URLs are left out


def test_viewer_may_export_anonymous_may_not(app, client, seeded):
    assert client.get("/export/matches.csv").status_code == 302
    login(client, *VIEWER)
    assert client.get("/export/matches.csv").status_code == 200
    assert client.get("/export/claimreview.jsonld").status_code == 200
