"""Users page (admins only) and each user's API tokens at /account/tokens."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from dashboard_fixtures import ADMIN, REVIEWER, VIEWER, csrf_token_from, login
from monitor.storage.tables import ApiToken, User


def _user(session_factory, username):  # type: ignore[no-untyped-def]
    with session_factory() as s:
        return s.scalar(select(User).where(User.username == username))


def _token(client, path="/users"):  # type: ignore[no-untyped-def]
    return csrf_token_from(client.get(path).get_data(as_text=True))


def test_users_page_is_admin_only(client, app):
    login(client, *REVIEWER)
    assert client.get("/users").status_code == 403
    token = _token(client, "/feeds")
    assert client.post("/users/add", data={"csrf_token": token, "username": "x", "role": "admin",
                                           "password": "long-enough-1"}).status_code == 403
    other = app.test_client()
    login(other, *VIEWER)
    assert other.get("/users").status_code == 403
    assert 'href="/users"' not in other.get("/feeds").get_data(as_text=True)  # no nav link either


def test_admin_lists_and_adds_user_with_generated_password_shown_once(admin_client, app, session_factory):
    page = admin_client.get("/users").get_data(as_text=True)
    assert "reviewer" in page and "viewer" in page and "(you)" in page
    response = admin_client.post("/users/add", data={"csrf_token": csrf_token_from(page), "username": "press1",
                                                     "role": "viewer", "password": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "shown only this once" in html
    password = re.search(r'<code class="secret" id="generated-password">([^<]+)</code>', html).group(1)
    assert "generated-password" not in admin_client.get("/users").get_data(as_text=True)
    assert _user(session_factory, "press1").role == "viewer"
    fresh = app.test_client()
    assert login(fresh, "press1", password).status_code == 302


def test_add_user_errors(admin_client):
    token = _token(admin_client)
    short = admin_client.post("/users/add", data={"csrf_token": token, "username": "u2", "role": "viewer",
                                                  "password": "short"})
    assert short.status_code == 400 and "At least 8 characters." in short.get_data(as_text=True)
    taken = admin_client.post("/users/add", data={"csrf_token": token, "username": VIEWER[0], "role": "viewer",
                                                  "password": "long-enough-1"})
    assert taken.status_code == 400 and "already exists" in taken.get_data(as_text=True)


def test_admin_cannot_disable_or_demote_themself(admin_client, seeded, session_factory):
    token = _token(admin_client)
    response = admin_client.post(f"/users/{seeded.admin_id}/disable", data={"csrf_token": token},
                                 follow_redirects=True)
    assert "You cannot disable your own account" in response.get_data(as_text=True)
    admin_client.post(f"/users/{seeded.admin_id}/role", data={"csrf_token": token, "role": "viewer"})
    admin = _user(session_factory, ADMIN[0])
    assert admin.active is True and admin.role == "admin"


def test_disable_enable_and_change_role(admin_client, app, session_factory):
    viewer_id = _user(session_factory, VIEWER[0]).id
    token = _token(admin_client)
    assert admin_client.post(f"/users/{viewer_id}/disable", data={"csrf_token": token}).status_code == 302
    assert _user(session_factory, VIEWER[0]).active is False
    assert login(app.test_client(), *VIEWER).status_code == 200  # sign-in refused (form shown again)
    admin_client.post(f"/users/{viewer_id}/enable", data={"csrf_token": token})
    assert _user(session_factory, VIEWER[0]).active is True
    bad = admin_client.post(f"/users/{viewer_id}/role", data={"csrf_token": token, "role": "root"},
                            follow_redirects=True)
    assert "Choose one of the roles" in bad.get_data(as_text=True)
    admin_client.post(f"/users/{viewer_id}/role", data={"csrf_token": token, "role": "reviewer"})
    assert _user(session_factory, VIEWER[0]).role == "reviewer"


def test_token_create_use_and_revoke(client, session_factory):
    login(client, *VIEWER)
    page = client.get("/account/tokens")
    assert page.status_code == 200 and "You have no API tokens." in page.get_data(as_text=True)
    created = client.post("/account/tokens", data={"csrf_token": csrf_token_from(page.get_data(as_text=True)),
                                                   "name": "weekly report script"})
    html = created.get_data(as_text=True)
    plaintext = re.search(r'<code class="secret" id="new-token">([^<]+)</code>', html).group(1)
    assert plaintext.startswith("smt_") and len(plaintext) > 40
    assert plaintext not in client.get("/account/tokens").get_data(as_text=True)  # shown once
    with session_factory() as s:
        row = s.scalar(select(ApiToken))
        assert row.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert plaintext not in (row.name, row.token_hash)
        token_id = row.id

    api = client.application.test_client()  # no session cookie: the token alone
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert api.get("/api/v1/feeds", headers=headers).status_code == 200
    with session_factory() as s:
        assert s.get(ApiToken, token_id).last_used_at is not None

    listing = client.get("/account/tokens").get_data(as_text=True)
    assert "weekly report script" in listing and "active" in listing
    revoked = client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token_from(listing)})
    assert revoked.status_code == 302
    assert api.get("/api/v1/feeds", headers=headers).status_code == 401
    assert "revoked" in client.get("/account/tokens").get_data(as_text=True)


def test_token_needs_a_name_and_others_tokens_cannot_be_revoked(client, app, session_factory):
    login(client, *VIEWER)
    token = _token(client, "/account/tokens")
    empty = client.post("/account/tokens", data={"csrf_token": token, "name": "  "})
    assert empty.status_code == 400
    client.post("/account/tokens", data={"csrf_token": token, "name": "mine"})
    with session_factory() as s:
        token_id = s.scalar(select(ApiToken.id))
    other = app.test_client()
    login(other, *REVIEWER)
    response = other.post(f"/account/tokens/{token_id}/revoke",
                          data={"csrf_token": _token(other, "/account/tokens")})
    assert response.status_code == 404
    with session_factory() as s:
        assert s.get(ApiToken, token_id).revoked_at is None
