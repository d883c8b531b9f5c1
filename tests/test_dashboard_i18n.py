"""English and Vietnamese interface: locale choice (user preference, then Accept-Language, then English), dates and
numbers per locale, the language switch (CSRF-checked), and a complete, compiled Vietnamese catalogue."""

from __future__ import annotations

import gettext
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages import checkers
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale

from dashboard_fixtures import ADMIN, REVIEWER, VIEWER, csrf_token_from, login, make_test_app
from monitor.storage.tables import User

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "dashboard" / "translations"
PO = TRANSLATIONS / "vi" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "vi" / "LC_MESSAGES" / "messages.mo"
VI = {"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def _locale_of(session_factory, username: str) -> str | None:  # type: ignore[no-untyped-def]
    with session_factory() as s:
        return s.query(User).filter_by(username=username).one().locale


def _switch(client, locale: str, headers: dict[str, str], next_url: str = "/"):  # type: ignore[no-untyped-def]
    token = csrf_token_from(client.get(next_url, headers=headers).get_data(as_text=True))
    return client.post("/account/locale", data={"locale": locale, "next": next_url, "csrf_token": token},
                       headers=headers)


# -- choosing the locale ---------------------------------------------------------------------------------------

def test_browser_vietnamese_gives_vietnamese_nav_and_queue(admin_client):
    html = admin_client.get("/", headers=VI).get_data(as_text=True)
    assert '<html lang="vi">' in html
    for text in ("Hàng đợi rà soát", "Nguồn tin", "Thông cáo", "Tổng quan", "Đăng xuất", "Nhận định",
                 "Độ tin cậy", "Trạng thái", "Tìm trong nhận định và bài viết", "Độ tin cậy tối thiểu %"):
        assert text in html, text
    assert '<option value="contradicts" selected>mâu thuẫn</option>' in html  # the value stays, the name is translated
    assert '<option value="new" selected>mới</option>' in html
    assert "Review queue" not in html and "Sign out" not in html
    # data is never translated
    assert "Tỷ lệ lạm phát năm 2023 là 5,2%" in html and "Báo Ví Dụ" in html


def test_english_by_default_and_for_other_languages(admin_client):
    for headers in ({}, EN, {"Accept-Language": "fr-FR,de;q=0.8"}):
        html = admin_client.get("/", headers=headers).get_data(as_text=True)
        assert '<html lang="en">' in html and "<h1>Review queue</h1>" in html, headers


def test_anonymous_login_page_follows_the_browser(client):
    vi = client.get("/login", headers=VI).get_data(as_text=True)
    assert "<h1>Đăng nhập</h1>" in vi and "Tên đăng nhập" in vi and "Mật khẩu" in vi
    assert 'id="language-form"' not in vi  # the switch is for signed-in users
    assert "<h1>Sign in</h1>" in client.get("/login", headers=EN).get_data(as_text=True)
    # the "sign in first" message is in the browser's language too
    client.get("/overview", headers=VI)
    assert "Vui lòng đăng nhập để tiếp tục." in client.get("/login", headers=VI).get_data(as_text=True)


def test_user_preference_overrides_the_browser(admin_client, session_factory):
    response = _switch(admin_client, "en", VI, "/overview")
    assert response.status_code == 303 and response.headers["Location"] == "/overview"
    assert _locale_of(session_factory, ADMIN[0]) == "en"
    html = admin_client.get("/overview", headers=VI).get_data(as_text=True)
    assert '<html lang="en">' in html and "<h1>Overview</h1>" in html and "Interface language saved." in html

    _switch(admin_client, "vi", EN)
    assert _locale_of(session_factory, ADMIN[0]) == "vi"
    html = admin_client.get("/", headers=EN).get_data(as_text=True)
    assert "<h1>Hàng đợi rà soát</h1>" in html and "Đã lưu ngôn ngữ giao diện." in html
    assert '<option value="vi" lang="vi" selected>Tiếng Việt</option>' in html

    _switch(admin_client, "", EN)  # back to the browser's language
    assert _locale_of(session_factory, ADMIN[0]) is None
    assert "<h1>Review queue</h1>" in admin_client.get("/", headers=EN).get_data(as_text=True)
    assert "<h1>Hàng đợi rà soát</h1>" in admin_client.get("/", headers=VI).get_data(as_text=True)


def test_preference_belongs_to_the_user(app, session_factory):
    first, second = app.test_client(), app.test_client()
    login(first, *ADMIN)
    login(second, *REVIEWER)
    _switch(first, "vi", EN)
    assert "<h1>Hàng đợi rà soát</h1>" in first.get("/", headers=EN).get_data(as_text=True)
    assert "<h1>Review queue</h1>" in second.get("/", headers=EN).get_data(as_text=True)
    assert _locale_of(session_factory, REVIEWER[0]) is None


# -- the switch form -------------------------------------------------------------------------------------------

def test_switch_requires_csrf(admin_client, session_factory):
    response = admin_client.post("/account/locale", data={"locale": "vi"}, headers=EN)
    assert response.status_code == 400
    assert _locale_of(session_factory, ADMIN[0]) is None
    bad = admin_client.post("/account/locale", data={"locale": "vi", "csrf_token": "forged"}, headers=EN)
    assert bad.status_code == 400 and _locale_of(session_factory, ADMIN[0]) is None


def test_switch_needs_a_signed_in_user_and_a_known_locale(client, session_factory):
    anonymous = client.post("/account/locale", data={"locale": "vi"})
    assert anonymous.status_code in (302, 400)  # never stored for nobody
    login(client, *VIEWER)  # viewers may choose their language too
    refused = _switch(client, "fr", EN)
    assert refused.status_code == 303 and _locale_of(session_factory, VIEWER[0]) is None
    assert "Choose English or Vietnamese." in client.get("/", headers=EN).get_data(as_text=True)
    _switch(client, "vi", EN)
    assert _locale_of(session_factory, VIEWER[0]) == "vi"


def test_switch_never_redirects_off_site(admin_client):
    response = _switch(admin_client, "vi", EN, "/")
    token = csrf_token_from(admin_client.get("/", headers=EN).get_data(as_text=True))
    response = admin_client.post("/account/locale", data={"locale": "en", "next": "//evil.example/x",
                                                          "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/"


# -- translated messages from Python ---------------------------------------------------------------------------

def test_flash_and_error_messages_are_translated(client):
    login(client, *VIEWER)
    forbidden = client.get("/users", headers=VI)
    html = forbidden.get_data(as_text=True)
    assert forbidden.status_code == 403
    assert "Trang hoặc thao tác này cần vai trò quản trị viên." in html and "người xem" in html
    token = csrf_token_from(client.get("/", headers=VI).get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token}, headers=VI)
    assert "Bạn đã đăng xuất." in client.get("/login", headers=VI).get_data(as_text=True)


def test_review_flash_and_form_labels_in_vietnamese(admin_client, seeded):
    page = admin_client.get(f"/matches/{seeded.match_id}", headers=VI).get_data(as_text=True)
    token = csrf_token_from(page)
    admin_client.post(f"/matches/{seeded.match_id}/review", data={"action": "confirm", "csrf_token": token},
                      headers=VI)
    page = admin_client.get(f"/matches/{seeded.match_id}", headers=VI).get_data(as_text=True)
    assert "Đã xác nhận." in page and "mới → đã xác nhận" in page and "Nhật ký thao tác" in page
    feeds = admin_client.get("/feeds", headers=VI).get_data(as_text=True)
    assert "URL nguồn tin" in feeds and "Tải mỗi (phút)" in feeds and "Chưa từng được tải." in feeds


# -- dates and numbers -----------------------------------------------------------------------------------------

def test_match_page_dates_and_percent_per_locale(admin_client, seeded):
    en = admin_client.get(f"/matches/{seeded.match_id}", headers=EN).get_data(as_text=True)
    vi = admin_client.get(f"/matches/{seeded.match_id}", headers=VI).get_data(as_text=True)
    # the item was published 2024-01-05 08:30 UTC, the release 2024-01-04 09:00 UTC
    assert "published Jan 5, 2024, 8:30\u202fAM UTC" in en
    assert "đăng lúc 08:30 5 thg 1, 2024 UTC" in vi
    assert "đăng lúc 09:00 4 thg 1, 2024 UTC" in vi
    assert '<strong class="confidence">87%</strong>' in en and '<strong class="confidence">87%</strong>' in vi


def test_display_timezone_is_configurable(tmp_path, seeded):
    app = make_test_app(tmp_path, DISPLAY_TIMEZONE="Asia/Ho_Chi_Minh")
    try:
        client = app.test_client()
        login(client, *ADMIN)
        vi = client.get(f"/matches/{seeded.match_id}", headers=VI).get_data(as_text=True)
        en = client.get(f"/matches/{seeded.match_id}", headers=EN).get_data(as_text=True)
    finally:
        app.extensions["monitor"].engine.dispose()
    assert "đăng lúc 15:30 5 thg 1, 2024 UTC+7" in vi  # stored in UTC, shown in Hanoi time with the zone named
    assert "published Jan 5, 2024, 3:30\u202fPM UTC+7" in en


def test_unknown_display_timezone_fails_at_start(tmp_path, seeded):
    with pytest.raises(ValueError, match="DISPLAY_TIMEZONE"):
        make_test_app(tmp_path, DISPLAY_TIMEZONE="Mars/Olympus_Mons")


def test_formatters_follow_the_locale(app):
    from dashboard.i18n import format_day, format_when, number, percent

    when = datetime(2024, 3, 9, 14, 5, tzinfo=UTC)
    with app.test_request_context("/"):
        with force_locale("en"):
            assert percent(0.9) == "90%" and percent(None) == "" and percent(None, "—") == "—"
            assert number(1234567.5) == "1,234,567.5"
            assert format_when(when) == "Mar 9, 2024, 2:05\u202fPM UTC"
            assert format_day(when.date()) == "Mar 9, 2024"
        with force_locale("vi"):
            assert percent(0.9) == "90%" and percent(0.875) == "88%"
            assert number(1234567.5) == "1.234.567,5"
            assert format_when(when) == "14:05 9 thg 3, 2024 UTC"
            assert format_day(when.date()) == "9 thg 3, 2024"


def test_overview_numbers_and_dates_in_vietnamese(admin_client):
    html = admin_client.get("/overview", headers=VI).get_data(as_text=True)
    assert "Số cờ mỗi ngày theo cơ quan báo chí" in html and "Độ chính xác thực tế của các cờ" in html
    assert re.search(r"cờ mâu thuẫn mới trong tuần này \(từ \d{1,2} thg \d{1,2}, \d{4}\)", html)
    assert "ngày (UTC)" in html  # chart axis labels come from Python and are translated too


# -- the catalogue ---------------------------------------------------------------------------------------------

def _catalog():  # type: ignore[no-untyped-def]
    with PO.open("rb") as f:
        return read_po(f, locale="vi")


def test_every_message_has_a_vietnamese_translation():
    catalog = _catalog()
    untranslated = [m.id for m in catalog if m.id and (not m.string or (isinstance(m.string, tuple)
                                                                        and not all(m.string)))]
    assert not untranslated, untranslated
    assert not [m.id for m in catalog if m.id and m.fuzzy], "fuzzy entries"
    problems = [(m.id, err) for m in catalog if m.id for err in _check(catalog, m)]
    assert not problems, problems  # the same %(name)s placeholders in both languages


def _check(catalog, message):  # type: ignore[no-untyped-def]
    out = []
    for checker in checkers.checkers:
        try:
            checker(catalog, message)
        except Exception as exc:  # TranslationError
            out.append(str(exc))
    return out


def test_catalogue_covers_every_marked_string():
    """Extracting the dashboard again finds no string missing from the .po (run pybabel extract/update)."""
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}
    method_map = [("dashboard/**.py", "python"), ("dashboard/templates/**.html", "jinja2")]
    found = set()
    for _file, _line, msg, _comments, _context in extract_from_dir(str(ROOT), method_map=method_map,
                                                                   keywords=keywords):
        found.add(msg[0] if isinstance(msg, tuple) else msg)
    known = {m.id[0] if isinstance(m.id, tuple) else m.id for m in _catalog() if m.id}
    assert found - known == set(), "strings marked for translation but not in messages.po"
    assert len(found) > 300


def test_compiled_catalogue_matches_the_po(tmp_path):
    fresh = tmp_path / "messages.mo"
    with fresh.open("wb") as f:
        write_mo(f, _catalog())
    with fresh.open("rb") as a, MO.open("rb") as b:
        compiled, committed = gettext.GNUTranslations(a), gettext.GNUTranslations(b)
    stale = "messages.mo is stale: run pybabel compile -d dashboard/translations"
    assert committed._catalog == compiled._catalog, stale  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/", "/overview", "/feeds", "/releases", "/users", "/account/tokens", "/alerts",
                                  "/models"])
def test_pages_render_in_vietnamese_without_inline_script(admin_client, seeded, path):
    response = admin_client.get(path, headers=VI)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and '<html lang="vi">' in html
    assert "<script>" not in html and "style=" not in html
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
