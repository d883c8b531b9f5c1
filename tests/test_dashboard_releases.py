"""Releases page: add by paste / upload / URL, statements with facts, metadata editing, retire."""

from __future__ import annotations

import importlib.util
import io

import pytest
from sqlalchemy import select

from dashboard import create_app
from dashboard_fixtures import ADMIN, REVIEWER, VIEWER, csrf_token_from, login
from monitor.config import load_settings
from monitor.storage.tables import Release, Statement

HAS_FACTS = importlib.util.find_spec("models.facts") is not None
TEXT = ("Ministry of Health update\n\n"
        "The ministry recorded 1,234 new cases in March 2024. "
        "Vaccination coverage rose to 87% of adults. "
        "No deaths were reported this week.")


def _token(client, path="/releases"):  # type: ignore[no-untyped-def]
    return csrf_token_from(client.get(path).get_data(as_text=True))


def _release(session_factory, title):  # type: ignore[no-untyped-def]
    with session_factory() as s:
        release = s.scalar(select(Release).where(Release.title == title))
        if release is not None:
            release.statements  # noqa: B018 - load while the session is open
        return release


def test_list_shows_releases_with_statement_counts(client):
    login(client, *VIEWER)
    page = client.get("/releases")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Thông cáo báo chí về CPI năm 2023" in html and "Jan 4, 2024, 9:00\u202fAM UTC" in html  # Babel, English
    assert '<td class="num">1</td>' in html and "active" in html
    assert "Paste text" not in html  # viewers read only


def test_viewer_cannot_add_or_retire(client, session_factory):
    login(client, *VIEWER)
    token = _token(client)
    response = client.post("/releases/add/text", data={"csrf_token": token, "paste-body": TEXT})
    assert response.status_code == 403
    release_id = _release(session_factory, "Thông cáo báo chí về CPI năm 2023").id
    assert client.post(f"/releases/{release_id}/retire", data={"csrf_token": token}).status_code == 403


def test_paste_creates_release_with_statements(client, session_factory):
    login(client, *REVIEWER)
    response = client.post("/releases/add/text", data={
        "csrf_token": _token(client), "paste-body": TEXT, "paste-published": "2024-03-31",
        "paste-language": "", "paste-url": "https://moh.example/update"})
    assert response.status_code == 302
    release = _release(session_factory, "Ministry of Health update")
    assert release is not None and release.language == "en" and release.url == "https://moh.example/update"
    assert release.published_at.isoformat().startswith("2024-03-31")
    texts = [s.text for s in release.statements]
    assert any("1,234 new cases" in t for t in texts) and any("87%" in t for t in texts)
    assert all(t != "Ministry of Health update" for t in texts)  # the heading is the title, not a statement
    assert response.headers["Location"] == f"/releases/{release.id}"

    page = client.get(f"/releases/{release.id}").get_data(as_text=True)
    assert "1,234 new cases" in page and f"Statements ({len(texts)})" in page
    if HAS_FACTS:
        assert '<span class="kind">percent</span>' in page
        assert '<span class="kind">negation</span>' in page or '<span class="kind">quantity</span>' in page
    else:
        assert "Fact extraction is not installed here" in page

    again = client.post("/releases/add/text", data={"csrf_token": _token(client), "paste-body": TEXT})
    assert again.headers["Location"] == f"/releases/{release.id}"  # same text: the same release
    assert "already stored as release" in client.get(f"/releases/{release.id}").get_data(as_text=True)


def test_paste_errors_are_shown(admin_client):
    empty = admin_client.post("/releases/add/text", data={"csrf_token": _token(admin_client), "paste-body": ""})
    assert empty.status_code == 400 and "Paste the text of the release." in empty.get_data(as_text=True)
    bad_date = admin_client.post("/releases/add/text", data={
        "csrf_token": _token(admin_client), "paste-body": TEXT, "paste-published": "the day after tomorrow"})
    assert bad_date.status_code == 400 and "Cannot read the date" in bad_date.get_data(as_text=True)
    bad_url = admin_client.post("/releases/add/text", data={
        "csrf_token": _token(admin_client), "paste-body": TEXT, "paste-url": "javascript:alert(1)"})
    assert bad_url.status_code == 400 and "Use an http:// or https:// address." in bad_url.get_data(as_text=True)


def _upload(client, data: bytes, name: str):  # type: ignore[no-untyped-def]
    return client.post("/releases/add/file", data={"csrf_token": _token(client),
                                                    "upload-file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_upload_markdown_file(admin_client, session_factory):
    body = "# Báo cáo quý I\n\nXuất khẩu tăng **12,5%** so với cùng kỳ năm trước. Nhập khẩu đạt 80 tỷ USD."
    response = _upload(admin_client, body.encode("utf-8"), "bao-cao.md")
    assert response.status_code == 302
    release = _release(session_factory, "Báo cáo quý I")
    assert release.language == "vi" and "**" not in release.body
    assert any("12,5%" in s.text for s in release.statements)


def test_upload_of_non_utf8_file_is_refused_with_message(admin_client, session_factory):
    latin1 = "Communiqué: le taux a augmenté de 3 % en décembre.".encode("latin-1")
    response = _upload(admin_client, latin1, "communique.txt")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The file is not UTF-8 text" in html and "save it as UTF-8" in html
    with session_factory() as s:
        assert len(s.scalars(select(Release)).all()) == 1


def test_upload_of_wrong_type_or_too_big_is_refused(tmp_path, seeded, admin_client):
    wrong = _upload(admin_client, b"%PDF-1.7", "release.pdf")
    assert wrong.status_code == 400 and "Upload a .txt, .md or .html file." in wrong.get_data(as_text=True)
    small = create_app(load_settings(database_url=seeded.url, data_dir=tmp_path, secret_key="k"),
                       {"TESTING": True, "RELEASE_MAX_BYTES": 1024})
    client = small.test_client()
    login(client, *ADMIN)
    big = _upload(client, b"Text. " * 400, "big.txt")
    assert big.status_code == 400 and "larger than the 1 KB limit" in big.get_data(as_text=True)
    small.extensions["monitor"].engine.dispose()


RELEASE_PAGE = """<!doctype html><html><head><title>Thông cáo: xuất khẩu tháng 5</title>
<script>alert("not text")</script></head><body><nav>Trang chủ</nav>
<article><h1>Thông cáo: xuất khẩu tháng 5</h1>
<p>Kim ngạch xuất khẩu tháng 5 đạt 32,5 tỷ USD, tăng 8,1% so với cùng kỳ.</p>
<p>Cán cân thương mại xuất siêu 1,2 tỷ USD.</p></article></body></html>"""


def test_add_by_url_fetches_through_the_guard(tmp_path, seeded, feed_server, session_factory):
    url = feed_server.serve("/thong-cao.html", RELEASE_PAGE.encode("utf-8"),
                            headers={"Content-Type": "text/html; charset=utf-8"})
    settings = load_settings(database_url=seeded.url, data_dir=tmp_path, secret_key="k",
                             fetch_allow_hosts=["127.0.0.1"], fetch_total_timeout=10.0)
    app = create_app(settings, {"TESTING": True})
    client = app.test_client()
    login(client, *ADMIN)
    response = client.post("/releases/add/url", data={"csrf_token": _token(client), "fetch-url": url})
    assert response.status_code == 302, response.get_data(as_text=True)
    release = _release(session_factory, "Thông cáo: xuất khẩu tháng 5")
    assert release is not None and release.url == url and release.language == "vi"
    assert "alert" not in release.body and "<p>" not in release.body
    assert any("32,5 tỷ USD" in s.text for s in release.statements)

    missing = client.post("/releases/add/url", data={"csrf_token": _token(client),
                                                     "fetch-url": feed_server.url("/missing")})
    assert missing.status_code == 400 and "The page could not be fetched" in missing.get_data(as_text=True)
    app.extensions["monitor"].engine.dispose()


def test_add_by_url_to_a_private_address_is_blocked(admin_client, feed_server, session_factory):
    url = feed_server.serve("/internal.html", RELEASE_PAGE.encode("utf-8"),
                            headers={"Content-Type": "text/html; charset=utf-8"})
    response = admin_client.post("/releases/add/url", data={"csrf_token": _token(admin_client), "fetch-url": url})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "The page could not be fetched" in html
    assert feed_server.requests == []  # the guard refused before connecting
    with session_factory() as s:
        assert len(s.scalars(select(Release)).all()) == 1


def test_edit_metadata(admin_client, session_factory):
    release_id = _release(session_factory, "Thông cáo báo chí về CPI năm 2023").id
    page = admin_client.get(f"/releases/{release_id}").get_data(as_text=True)
    assert 'value="2024-01-04 09:00"' in page
    token = csrf_token_from(page)
    bad = admin_client.post(f"/releases/{release_id}/edit", data={
        "csrf_token": token, "title": "CPI 2023", "url": "", "published": "not a date", "language": "vi"})
    assert bad.status_code == 400 and "Cannot read the date" in bad.get_data(as_text=True)
    ok = admin_client.post(f"/releases/{release_id}/edit", data={
        "csrf_token": token, "title": "CPI 2023 (revised)", "url": "https://gso.example/cpi",
        "published": "2024-01-06", "language": "en"})
    assert ok.status_code == 302
    with session_factory() as s:
        release = s.get(Release, release_id)
        assert (release.title, release.url, release.language) == ("CPI 2023 (revised)", "https://gso.example/cpi", "en")
        assert release.published_at.isoformat().startswith("2024-01-06")


def test_retire_and_unretire(admin_client, session_factory):
    release_id = _release(session_factory, "Thông cáo báo chí về CPI năm 2023").id
    token = _token(admin_client, f"/releases/{release_id}")
    assert admin_client.post(f"/releases/{release_id}/retire", data={"csrf_token": token}).status_code == 302
    with session_factory() as s:
        assert s.get(Release, release_id).retired is True
        assert s.scalar(select(Statement).where(Statement.release_id == release_id)) is not None  # kept
    page = admin_client.get(f"/releases/{release_id}").get_data(as_text=True)
    assert "This release is retired" in page and "Unretire release" in page
    assert "retired" in admin_client.get("/releases").get_data(as_text=True)
    assert admin_client.post(f"/releases/{release_id}/unretire", data={"csrf_token": token}).status_code == 302
    with session_factory() as s:
        assert s.get(Release, release_id).retired is False


@pytest.mark.parametrize("path", ["/releases/999", "/releases/999/edit", "/releases/999/retire"])
def test_unknown_release_is_404(admin_client, path):
    if path.endswith(("edit", "retire")):
        assert admin_client.post(path, data={"csrf_token": _token(admin_client)}).status_code == 404
    else:
        assert admin_client.get(path).status_code == 404
