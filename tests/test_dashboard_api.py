"""The read-only JSON API: bearer tokens only, filters, keyset pagination, JSON errors, OpenAPI."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard_fixtures import ADMIN, VIEWER
from monitor.accounts import create_api_token, revoke_api_token
from monitor.storage.tables import Claim, Match, Statement, User


@pytest.fixture
def viewer_token(session_factory) -> str:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        user = s.scalar(select(User).where(User.username == VIEWER[0]))
        _row, plaintext = create_api_token(s, user, "tests")
        s.commit()
    return plaintext


def _get(client, path, token):  # type: ignore[no-untyped-def]
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dmlld2VyOnZpZXdlci1wYXNzd29yZC0x"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer smt_not-a-real-token"},
])
def test_401_json_without_a_valid_token(client, headers):
    response = client.get("/api/v1/matches", headers=headers)
    assert response.status_code == 401
    assert response.is_json and response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_session_cookie_is_not_enough(admin_client):
    assert admin_client.get("/").status_code == 200  # signed in
    assert admin_client.get("/api/v1/matches").status_code == 401


def test_revoked_token_and_disabled_user_are_refused(client, session_factory, viewer_token):
    assert _get(client, "/api/v1/feeds", viewer_token).status_code == 200
    with session_factory() as s:
        user = s.scalar(select(User).where(User.username == VIEWER[0]))
        user.active = False
        s.commit()
    assert _get(client, "/api/v1/feeds", viewer_token).status_code == 401
    with session_factory() as s:
        user = s.scalar(select(User).where(User.username == VIEWER[0]))
        user.active = True
        row, second = create_api_token(s, user, "second")
        s.flush()
        revoke_api_token(s, row.id, user_id=user.id)
        s.commit()
    assert _get(client, "/api/v1/feeds", viewer_token).status_code == 200
    assert _get(client, "/api/v1/feeds", second).status_code == 401


def test_match_list_and_detail(client, seeded, viewer_token):
    response = _get(client, "/api/v1/matches", viewer_token)
    assert response.status_code == 200 and response.is_json
    body = response.json
    assert body["next"] is None and body["next_before"] is None and body["limit"] == 50
    [match] = body["items"]
    assert match["id"] == seeded.match_id and match["label"] == "contradicts" and match["score"] == 0.87
    assert match["item"]["feed"] == "Báo Ví Dụ" and match["reasons"][0]["kind"] == "figure"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers

    detail = _get(client, f"/api/v1/matches/{seeded.match_id}", viewer_token)
    assert detail.json == match
    missing = _get(client, "/api/v1/matches/9999", viewer_token)
    assert missing.status_code == 404 and missing.json["error"] == "not_found"


def test_match_filters(client, seeded, viewer_token):
    def ids(query: str) -> list[int]:
        response = _get(client, "/api/v1/matches?" + query, viewer_token)
        assert response.status_code == 200, response.json
        return [m["id"] for m in response.json["items"]]

    assert ids("status=new&label=contradicts") == [seeded.match_id]
    assert ids("status=dismissed") == []
    assert ids("min_score=0.9") == [] and ids("min_score=0.8") == [seeded.match_id]
    assert ids("feed_id=1&release_id=1") == [seeded.match_id]
    assert ids("release_id=2") == []
    for bad in ("label=lies", "status=x", "min_score=2", "min_score=nan", "feed_id=abc", "limit=0",
                "limit=201", "before=abc", "before=0.5:0", "before=inf:3"):
        response = _get(client, "/api/v1/matches?" + bad, viewer_token)
        assert response.status_code == 400, bad
        assert response.json["error"] == "bad_request" and response.json["message"]


def _add_matches(session_factory, scores: list[float]) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        claim = s.scalar(select(Claim))
        statement = s.scalar(select(Statement))
        for i, score in enumerate(scores):
            extra = Statement(release_id=statement.release_id, position=10 + i, text=f"Extra statement {i}.",
                              start=0, end=0)
            s.add(extra)
            s.flush()
            s.add(Match(claim_id=claim.id, statement_id=extra.id, release_id=statement.release_id,
                        label="contradicts" if i % 2 else "supports", score=score, probabilities={},
                        reasons=[], model_version="t", status="new"))
        s.commit()


def test_keyset_pagination_visits_every_match_once_in_order(client, session_factory, viewer_token):
    _add_matches(session_factory, [0.95, 0.5, 0.5, 0.5, 0.87, 0.1])
    path, seen, pages = "/api/v1/matches?limit=2", [], 0
    while path:
        body = _get(client, path, viewer_token).json
        assert len(body["items"]) <= 2
        seen += [(m["score"], m["id"]) for m in body["items"]]
        path = body["next"]
        pages += 1
    assert pages == 4 and len(seen) == 7 and len(set(seen)) == 7
    assert seen == sorted(seen, key=lambda t: (-t[0], -t[1]))
    assert _get(client, "/api/v1/matches?limit=200", viewer_token).json["next"] is None
    filtered = _get(client, "/api/v1/matches?label=supports&limit=1", viewer_token).json
    assert "label=supports" in filtered["next"]  # filters are kept in the next link


def test_items_feeds_releases(client, seeded, viewer_token):
    items = _get(client, "/api/v1/items", viewer_token).json
    [item] = items["items"]
    assert item["id"] == seeded.item_id and item["feed"] == "Báo Ví Dụ" and "content" not in item
    detail = _get(client, f"/api/v1/items/{seeded.item_id}", viewer_token).json
    assert detail["claims"][0]["text"].startswith("Tỷ lệ lạm phát") and "content" in detail
    assert _get(client, "/api/v1/items/999", viewer_token).status_code == 404
    assert _get(client, "/api/v1/items?before=1", viewer_token).json["items"] == []

    feeds = _get(client, "/api/v1/feeds", viewer_token).json["items"]
    assert feeds[0]["url"] == "https://news.example.vn/rss" and "etag" not in feeds[0]
    releases = _get(client, "/api/v1/releases", viewer_token).json["items"]
    assert releases[0]["statements"] == 1 and releases[0]["retired"] is False
    release = _get(client, f"/api/v1/releases/{releases[0]['id']}", viewer_token).json
    assert release["statements"][0]["text"].startswith("Chỉ số giá tiêu dùng") and release["body"]
    assert _get(client, "/api/v1/releases/999", viewer_token).json["error"] == "not_found"


def test_api_is_read_only_and_unknown_paths_are_json(client, viewer_token):
    response = client.post("/api/v1/matches", headers={"Authorization": f"Bearer {viewer_token}"})
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    unknown = _get(client, "/api/v1/nothing/here", viewer_token)
    assert unknown.status_code == 404 and unknown.is_json
    assert _get(client, "/api/v1/matches/abc", viewer_token).json["error"] == "not_found"


def test_openapi_describes_every_endpoint(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    spec = response.json
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    documented = set(spec["paths"])
    routes = {rule.rule.removeprefix("/api/v1").replace("<int:", "{").replace(">", "}")
              for rule in app.url_map.iter_rules() if rule.endpoint.startswith("api.")
              and rule.endpoint != "api.unknown"}
    assert routes == documented
    for path, ops in spec["paths"].items():
        for op in ops.values():
            for ref in [r.get("$ref") for r in op["responses"].values()]:
                if ref:
                    assert ref.split("/")[-1] in spec["components"]["responses"], path
    params = {p["name"] for p in spec["paths"]["/matches"]["get"]["parameters"]}
    assert params == {"status", "label", "release_id", "feed_id", "min_score", "before", "limit"}
