"""Real-browser tests: Debian's headless Chromium, driven by Playwright's sync API, against the dashboard served
by werkzeug on 127.0.0.1 (a real HTTP server, the production CSP and CSRF checks, a migrated SQLite database).

They sign in through the form, check that pages load with no console errors (Chromium reports CSP violations,
failed loads such as a missing favicon, and script errors there), filter the queue through its form, open a match
and see its highlighted figures, export the filtered rows as CSV, drive the keyboard shortcuts, and prove that a
hostile feed item runs no script. Skipped with a message when Playwright or /usr/bin/chromium is missing, but
failed instead under CI (``MONITOR_REQUIRE_SERVICES=1``). Screenshots go to ``test-output/browser/``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from dashboard.exports import CSV_COLUMNS
from dashboard_fixtures import ADMIN, CLAIM_TEXT, make_test_app
from dashboard_rows import add_match
from monitor.storage.db import make_engine, make_session_factory, transaction
from monitor.storage.tables import Match, ReviewEvent
from tests.conftest import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "browser"
TIMEOUT_MS = 15_000  # this machine may be busy; a healthy page answers in well under a second
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">Hostile <script>window.__pwned=2</script> headline'
HOSTILE_CLAIM = "Claim <script>window.__pwned=3</script> with <svg onload=\"window.__pwned=4\"></svg> markup"


@dataclass
class Site:
    base: str
    db_url: str
    ids: dict[str, int] = field(default_factory=dict)


@dataclass
class Console:
    """Console errors, page errors and failed responses of one page (all must stay empty)."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("pageerror", lambda err: self.problems.append(f"pageerror: {err}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))


def _sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_or_fail(f"Playwright is not installed ({exc}); pip install -e '.[test]' installs it")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"no Chromium at {CHROMIUM}; install Debian's: apt-get install chromium")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _sync_playwright()
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:  # noqa: BLE001 - any launch failure means "no usable browser here"
            skip_or_fail(f"{CHROMIUM} did not start under Playwright: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(dashboard_template_db, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:  # noqa: F811
    """The seeded database plus a second match and a hostile item, served on a free port."""
    template, rows = dashboard_template_db
    folder = tmp_path_factory.mktemp("browser-site")
    shutil.copyfile(template, folder / "dashboard.sqlite3")
    db_url = f"sqlite:///{folder / 'dashboard.sqlite3'}"
    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as s:
        second = add_match(s, claim="Second claim, lower confidence", title="Second item", score=0.5)
        hostile = add_match(s, claim=HOSTILE_CLAIM, title=HOSTILE_TITLE, feed='Outlet <svg onload="x()">',
                            score=0.3, item_url="javascript:window.__pwned=5")
        ids = {"seeded": rows.match_id, "second": second.id, "hostile": hostile.id}
    engine.dispose()
    app = make_test_app(folder, TESTING=False)  # CSRF and every check as in production
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-under-test", daemon=True)
    thread.start()
    yield Site(f"http://127.0.0.1:{server.port}", db_url, ids)
    server.shutdown()
    thread.join(5)
    app.extensions["monitor"].engine.dispose()


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", ADMIN[0])
    page.fill("#password", ADMIN[1])
    with page.expect_navigation():
        page.click("button[type=submit]")


@pytest.fixture(scope="module")
def signed_in_state(browser: Any, site: Site) -> dict[str, Any]:
    """Cookies of one sign-in through the form (argon2 is slow on purpose: sign in once per module)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    _sign_in(page, site.base)
    state = context.storage_state()
    context.close()
    return state  # type: ignore[no-any-return]


@pytest.fixture
def page(browser: Any, signed_in_state: dict[str, Any]) -> Iterator[tuple[Any, Console]]:
    context = browser.new_context(storage_state=signed_in_state)
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    console = Console()
    console.attach(tab)
    yield tab, console
    context.close()


def _screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_sign_in_through_the_form_then_queue_without_console_errors(browser, site):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console = Console()
    console.attach(page)
    page.goto(f"{site.base}/")
    assert page.url.startswith(f"{site.base}/login")  # not signed in: sent to the form
    _sign_in(page, site.base)
    assert page.url == f"{site.base}/"
    assert page.locator("h1").inner_text() == "Review queue"
    assert page.locator("#queue tbody tr").count() >= 2
    assert "5,2%" in page.locator("#queue").inner_text()
    page.wait_for_load_state("load")
    _screenshot(page, "queue")
    context.close()
    assert console.problems == []


def test_pages_load_without_console_errors_or_csp_violations(page, site):
    tab, console = page
    for path in ("/", "/?order=uncertainty&status=all", f"/matches/{site.ids['seeded']}", "/overview", "/feeds",
                 "/releases", "/users", "/models", "/alerts"):
        response = tab.goto(f"{site.base}{path}")
        assert response is not None and response.status == 200, path
        tab.wait_for_load_state("load")
    assert tab.evaluate("document.querySelector('link[rel=icon]').href") == f"{site.base}/static/favicon.svg"
    assert console.problems == []


def test_keyboard_moves_opens_and_shows_help(page, site):
    tab, console = page
    queue = f"{site.base}/?status=all"  # seeded (87%), second (50%), hostile (30%) whatever their status
    tab.goto(queue)
    rows = tab.locator("#queue tbody tr")
    help_box = tab.locator("#shortcuts")
    assert not help_box.evaluate("el => el.open")
    tab.keyboard.press("?")
    assert help_box.evaluate("el => el.open") and help_box.locator("dd").first.is_visible()
    tab.keyboard.press("?")
    assert not help_box.evaluate("el => el.open")

    tab.keyboard.press("j")
    assert rows.nth(0).get_attribute("class") == "selected"
    tab.keyboard.press("j")
    assert rows.nth(1).get_attribute("class") == "selected" and not rows.nth(0).get_attribute("class")
    with tab.expect_navigation():
        tab.keyboard.press("o")
    assert tab.url == f"{site.base}/matches/{site.ids['second']}?status=all"

    tab.goto(queue)
    tab.keyboard.press("j")
    with tab.expect_navigation():
        tab.keyboard.press("Enter")
    assert tab.url == f"{site.base}/matches/{site.ids['seeded']}?status=all"
    assert tab.locator("mark.hl").count() >= 2  # the conflicting figures, highlighted on both sides
    tab.keyboard.press("?")
    assert tab.locator("#shortcuts").evaluate("el => el.open")
    _screenshot(tab, "match")
    assert console.problems == []


def test_c_confirms_the_match_with_an_audit_event(page, site):
    tab, console = page
    match_id = site.ids["second"]
    tab.goto(f"{site.base}/matches/{match_id}")
    assert tab.locator(".meta .status").inner_text() == "new"
    with tab.expect_navigation():
        tab.keyboard.press("c")
    assert tab.locator(".flash-success").inner_text() == "Confirmed."
    assert tab.locator(".meta .status").inner_text() == "confirmed"
    assert "confirm" in tab.locator("table.audit").inner_text()
    engine = make_engine(site.db_url)
    try:
        with make_session_factory(engine)() as s:
            assert s.get(Match, match_id).status == "confirmed"
            events = s.scalars(select(ReviewEvent).where(ReviewEvent.match_id == match_id)).all()
            assert [(e.action, e.from_status, e.to_status) for e in events] == [("confirm", "new", "confirmed")]
    finally:
        engine.dispose()
    assert console.problems == []


def test_hostile_feed_item_runs_no_script(page, site):
    tab, console = page
    for path in ("/?status=all&q=Hostile", f"/matches/{site.ids['hostile']}"):
        tab.goto(f"{site.base}{path}")
        tab.wait_for_load_state("load")
        assert tab.evaluate("typeof window.__pwned") == "undefined", path
        assert tab.locator("img[src=x], main script, main svg[onload]").count() == 0, path
        assert "window.__pwned=2</script> headline" in tab.locator("main").inner_text(), path  # shown as text
    assert tab.locator("a[href^='javascript:']").count() == 0
    assert console.problems == []


def _query(url: str) -> dict[str, str]:
    """The non-empty query arguments of ``url`` (the form also submits its empty fields)."""
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items() if values[0]}


def test_filter_form_narrows_the_queue_then_a_match_shows_the_figures(page, site):
    tab, console = page
    tab.goto(f"{site.base}/?status=all")
    rows = tab.locator("#queue tbody tr")
    assert rows.count() >= 3
    tab.fill("#f-q", "LẠM PHÁT")  # upper case: the search folds Vietnamese case
    tab.select_option("#f-label", "contradicts")
    with tab.expect_navigation():
        tab.click("form.filters button[type=submit]")
    assert {"q": "LẠM PHÁT", "status": "all", "label": "contradicts"}.items() <= _query(tab.url).items()
    assert rows.count() == 1
    assert CLAIM_TEXT in rows.first.inner_text()
    assert tab.locator("#f-q").input_value() == "LẠM PHÁT"  # the form shows the filter it applied

    with tab.expect_navigation():
        rows.first.locator("a").first.click()
    assert tab.url.startswith(f"{site.base}/matches/{site.ids['seeded']}?")
    assert _query(tab.url) == {"q": "LẠM PHÁT", "status": "all"}  # the filters travel (label's default dropped)
    marks = tab.locator("mark.hl")
    assert marks.all_inner_texts() == ["5,2%", "3,25%"]  # the claim's figure, then the statement's
    assert all(mark.is_visible() for mark in marks.all())
    assert console.problems == []


def test_export_csv_link_downloads_the_filtered_rows(page, site):
    tab, console = page
    tab.goto(f"{site.base}/?status=all&label=all&q=claim")  # seeded's claim says "lạm phát": not this one
    assert tab.locator("#queue tbody tr").count() == 2  # "Second claim ..." and the hostile "Claim <script> ..."
    link = tab.locator("p.exports a[href*='matches.csv']")
    assert "q=claim" in link.get_attribute("href")
    with tab.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "matches.csv"
    body = Path(download.path()).read_text(encoding="utf-8")
    table = list(csv.reader(io.StringIO(body)))
    assert tuple(table[0]) == CSV_COLUMNS
    by_id = {int(row[0]): dict(zip(CSV_COLUMNS, row)) for row in table[1:]}
    assert set(by_id) == {site.ids["second"], site.ids["hostile"]}
    assert by_id[site.ids["second"]]["claim"] == "Second claim, lower confidence"
    assert by_id[site.ids["hostile"]]["claim"] == HOSTILE_CLAIM  # the raw text, as stored
    assert console.problems == []
