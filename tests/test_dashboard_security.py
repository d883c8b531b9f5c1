"""Untrusted feed content is rendered as text; security headers, cookies and /healthz."""

from __future__ import annotations

import re

from sqlalchemy import update

from dashboard_fixtures import ADMIN, login
from dashboard.security import CONTENT_SECURITY_POLICY, safe_http_url
from monitor.storage.db import transaction
from monitor.storage.tables import Claim, Feed, Item, Match, Release

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror=alert(1)>'


def _make_hostile(session_factory, seeded):
    with transaction(session_factory) as session:
        session.execute(update(Item).values(title=f"Breaking {SCRIPT}", url="javascript:alert(1)"))
        session.execute(update(Claim).values(text=f"Claim {IMG} and {SCRIPT}"))
        session.execute(update(Feed).values(name='Outlet "><svg onload=alert(1)>'))
        session.execute(update(Release).values(url="  JavaScript:alert(document.cookie)"))
        session.execute(update(Match).values(reasons=[
            {"kind": 'figure" onmouseover="alert(1)', "text": SCRIPT, "claim_span": [0, 5],
             "statement_span": None},
        ]))


def _assert_no_live_markup(html: str) -> None:
    assert SCRIPT not in html
    assert "<img src=x" not in html
    assert "<svg" not in html
    assert 'href="javascript:' not in html.lower()
    assert "onmouseover=\"alert" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=\"/static/app\.js\")", html)


def test_hostile_feed_content_is_escaped_on_queue(admin_client, seeded, session_factory):
    _make_hostile(session_factory, seeded)
    html = admin_client.get("/").get_data(as_text=True)
    _assert_no_live_markup(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_hostile_feed_content_is_escaped_on_match_page(admin_client, seeded, session_factory):
    _make_hostile(session_factory, seeded)
    response = admin_client.get(f"/matches/{seeded.match_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    _assert_no_live_markup(html)
    assert "Breaking &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "javascript:alert(1)" in html  # shown as text, not as a link
    assert 'rel="noopener noreferrer nofollow"' not in html  # neither unsafe URL became a link
    assert 'class="hl hl-other"' in html  # the odd reason kind is not used as a class name


def test_security_headers_on_every_response(client, admin_client, seeded):
    for response in (client.get("/login"), client.get("/healthz"), client.get("/static/app.css"),
                     admin_client.get("/"), admin_client.get(f"/matches/{seeded.match_id}"),
                     admin_client.get("/matches/424242")):
        csp = response.headers["Content-Security-Policy"]
        assert csp == CONTENT_SECURITY_POLICY
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_script_or_style(app, admin_client, seeded):
    pages = [admin_client.get(path) for path in ("/", f"/matches/{seeded.match_id}", "/matches/999")]
    pages.append(app.test_client().get("/login"))
    for page in pages:
        html = page.get_data(as_text=True)
        assert "style=" not in html and "<style" not in html
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']
        assert " onclick=" not in html and " onload=" not in html


def test_session_cookie_flags(client):
    response = login(client, *ADMIN)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # session_cookie_secure is off in the test settings


def test_session_cookie_secure_from_settings(tmp_path, seeded):
    from dashboard import create_app
    from monitor.config import load_settings

    settings = load_settings(database_url=seeded.url, data_dir=tmp_path, secret_key="k" * 32,
                             session_cookie_secure=True)
    app = create_app(settings)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SECRET_KEY"] == "k" * 32
    app.extensions["monitor"].engine.dispose()


def test_healthz_is_public_json(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["database"] == "ok"


def test_safe_http_url():
    assert safe_http_url("https://example.vn/a?b=1") == "https://example.vn/a?b=1"
    assert safe_http_url(" http://example.vn/ ") == "http://example.vn/"
    for bad in ("javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "//evil.example/",
                "/relative", "http:///nohost", "https://exa mple.vn", "java\nscript:alert(1)",
                "https://ex.vn/\x00", "vbscript:x", "", None, "http://[::1"):
        assert safe_http_url(bad) is None, bad


def test_favicon_is_linked_and_served(client, seeded):
    pages = [client.get("/login").get_data(as_text=True)]
    login(client, *ADMIN)
    pages += [client.get(path).get_data(as_text=True) for path in ("/", "/overview", "/matches/424242")]
    for html in pages:
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    response = client.get("/static/favicon.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert b"<script" not in response.data


def test_forbidden_page_names_the_roles_the_page_needs(client, seeded):
    from dashboard_fixtures import REVIEWER, VIEWER, csrf_token_from

    login(client, *REVIEWER)
    html = client.get("/users").get_data(as_text=True)
    assert "needs the admin role" in html and "reviewer role." in html
    assert "can read matches but not review them" not in html
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/").get_data(as_text=True))})
    login(client, *VIEWER)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    response = client.post(f"/matches/{seeded.match_id}/review", data={"action": "confirm", "csrf_token": token})
    assert response.status_code == 403
    assert "needs the admin or reviewer role" in response.get_data(as_text=True)
