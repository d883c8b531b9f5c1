"""Dashboard sign-in: CSRF token on the form, wrong/right passwords, redirects, rate limit, logout."""

from __future__ import annotations

from dashboard_fixtures import ADMIN, VIEWER, csrf_token_from, login, make_test_app


def test_login_page_has_csrf_token(client):
    page = client.get("/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="csrf_token"' in html
    assert 'name="username"' in html and 'name="password"' in html


def test_unauthenticated_queue_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert client.get("/matches/1").status_code == 302


def test_wrong_password_stays_out_with_message(client):
    response = login(client, ADMIN[0], "not-the-password")
    assert response.status_code == 200
    assert "Invalid username or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_right_password_shows_queue_with_match(client, seeded):
    response = login(client, *ADMIN)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Tỷ lệ lạm phát năm 2023 là 5,2%" in html
    assert "Báo Ví Dụ" in html
    assert f'href="/matches/{seeded.match_id}"' in html
    assert "87%" in html


def test_login_redirects_only_to_local_next(client):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=//evil.example/x",
                           data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_login_follows_local_next(client, seeded):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(f"/login?next=/matches/{seeded.match_id}",
                           data={"username": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
    assert response.headers["Location"] == f"/matches/{seeded.match_id}"


def test_logout_needs_post_and_signs_out(admin_client):
    assert admin_client.get("/logout").status_code == 405
    token = csrf_token_from(admin_client.get("/").get_data(as_text=True))
    response = admin_client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert admin_client.get("/").status_code == 302


def test_login_rate_limit_returns_429(tmp_path, seeded):
    app = make_test_app(tmp_path, LOGIN_MAX_FAILURES=3)
    client = app.test_client()
    for _ in range(3):
        assert login(client, VIEWER[0], "wrong-password").status_code == 200
    blocked = login(client, VIEWER[0], "wrong-password")
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 0
    # even the right password is refused while blocked; another user is not affected
    assert login(client, *VIEWER).status_code == 429
    assert login(client, *ADMIN).status_code == 302
    app.extensions["monitor"].engine.dispose()


def test_inactive_user_cannot_sign_in(client, session_factory):
    from sqlalchemy import update

    from monitor.storage.db import transaction
    from monitor.storage.tables import User

    with transaction(session_factory) as session:
        session.execute(update(User).where(User.username == VIEWER[0]).values(active=False))
    assert login(client, *VIEWER).status_code == 200
    assert client.get("/").status_code == 302
