"""Official releases: read a file (text, Markdown or HTML), split it into statements, store it."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dateutil import parser as dateparser
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.claims import split_statements
from monitor.collectors.language import detect_language
from monitor.collectors.sanitize import html_to_text
from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import Item, Release, Statement

if TYPE_CHECKING:
    import httpx

    from monitor.collectors.guard import AddressGuard
    from monitor.collectors.http import FetchLimits

_HTML_HINT = re.compile(r"<\s*(html|body|p|div|article|h[1-6]|br)\b", re.I)
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.M)
_MD_MARKUP = re.compile(r"(\*\*|__|`)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
RECHECK_WINDOW = timedelta(days=30)


def text_from_document(raw: str, filename: str | None = None) -> str:
    """Plain text of a release given as text, Markdown or HTML (decided by file name, else by content)."""
    name = (filename or "").lower()
    if name.endswith((".html", ".htm")) or (not name.endswith((".md", ".txt")) and _HTML_HINT.search(raw)):
        return html_to_text(raw)
    text = _MD_LINK.sub(r"\1", raw)
    text = _MD_HEADING.sub("", text)
    text = _MD_MARKUP.sub("", text)
    return text


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return "Untitled release"


def parse_published(value: str | None) -> datetime | None:
    """An ISO or human date as aware UTC (a date without zone is taken as UTC)."""
    if not value:
        return None
    try:
        parsed = dateparser.parse(value)
    except (ValueError, OverflowError) as exc:
        raise MonitorError(f"cannot read the date {value!r}: use a form like 2019-12-30") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def add_release(session: Session, body: str, *, title: str | None = None, url: str | None = None,
                published_at: datetime | None = None, language: str | None = None, source: str = "manual",
                item_id: int | None = None, recheck: bool = True) -> tuple[Release, bool]:
    """Store a release and its statements; returns ``(release, created)`` (same text twice is one release).

    A new release makes recent items due for checking again, so claims already collected are compared
    with it too.
    """
    body = unicodedata.normalize("NFC", body).replace("\r\n", "\n").strip()
    if not body:
        raise MonitorError("the release has no text")
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    existing = session.scalar(select(Release).where(Release.content_hash == digest))
    if existing is not None:
        return existing, False
    title = (title or "").strip() or _first_line(body)
    release = Release(title=title, url=url, language=language or detect_language(body), body=body,
                      published_at=published_at, content_hash=digest, source=source, item_id=item_id)
    session.add(release)
    session.flush()
    for position, span in enumerate(split_statements(body)):
        if span.text.strip() == title:
            continue  # the heading repeats the title; it is not a statement
        session.add(Statement(release_id=release.id, position=position, text=span.text, start=span.start,
                              end=span.end))
    if recheck:
        since = datetime.now(UTC) - RECHECK_WINDOW
        session.execute(update(Item).where(Item.fetched_at >= since).values(checked_at=None))
    session.flush()
    return release, True


def list_releases(session: Session) -> list[Release]:
    return list(session.scalars(select(Release).order_by(Release.id)))


def set_retired(session: Session, release_id: int, retired: bool) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise NotFoundError(f"release {release_id} does not exist")
    release.retired = retired
    return release


def release_to_dict(release: Release) -> dict[str, object]:
    return {
        "id": release.id, "title": release.title, "url": release.url, "language": release.language,
        "published_at": release.published_at.isoformat() if release.published_at else None,
        "source": release.source, "retired": release.retired, "statements": len(release.statements),
        "created_at": release.created_at.isoformat(),
    }


# -- managing releases from the dashboard -----------------------------------------------------------------

DOCUMENT_SUFFIXES = (".txt", ".md", ".html", ".htm")
LANGUAGES = ("en", "vi")
_UNSET: object = object()


def get_release(session: Session, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise NotFoundError(f"release {release_id} does not exist")
    return release


def decode_document(data: bytes, filename: str | None, *, max_bytes: int) -> str:
    """The text of an uploaded release file (.txt, .md, .html), which must be UTF-8 and at most ``max_bytes``."""
    name = (filename or "").strip()
    if not name.lower().endswith(DOCUMENT_SUFFIXES):
        raise MonitorError("upload a .txt, .md or .html file")
    if len(data) > max_bytes:
        raise MonitorError(f"the file is larger than the {max_bytes // 1024} KB limit")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MonitorError(f"the file is not UTF-8 text (byte {exc.start} cannot be read); save it as UTF-8 "
                           "and upload it again") from exc
    return text_from_document(raw, name)


def _charset(content_type: str | None) -> str | None:
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').lower()
    return None


_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)


def document_from_fetch(body: bytes, content_type: str | None) -> tuple[str, str | None]:
    """(plain text, page title or None) of a fetched release page: HTML is turned into text."""
    charset = _charset(content_type) or "utf-8"
    try:
        raw = body.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise MonitorError(f"the page is not readable text in its declared encoding ({charset})") from exc
    kind = (content_type or "").split(";")[0].strip().lower()
    is_html = kind in ("text/html", "application/xhtml+xml") or (not kind.startswith("text/plain")
                                                                and _HTML_HINT.search(raw) is not None)
    if not is_html and kind not in ("", "text/plain", "text/markdown"):
        raise MonitorError(f"the URL returned {kind}, not an HTML or text page")
    if is_html:
        found = _TITLE.search(raw[:100_000])
        title = html_to_text(found.group(1)).strip()[:300] if found else None
        return html_to_text(raw), title or None
    return text_from_document(raw, "page.txt"), None


def update_release(session: Session, release_id: int, *, title: object = _UNSET, url: object = _UNSET,
                   published_at: object = _UNSET, language: object = _UNSET) -> Release:
    """Change a release's metadata; arguments not given are kept (``url``/``published_at`` None clears)."""
    release = get_release(session, release_id)
    if title is not _UNSET:
        text = " ".join(str(title or "").split())
        if not text:
            raise MonitorError("the title cannot be empty")
        release.title = text
    if url is not _UNSET:
        value = str(url or "").strip() or None
        if value is not None:
            from urllib.parse import urlsplit

            parts = urlsplit(value)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                raise MonitorError("the release URL must be an http:// or https:// address")
            if len(value) > 2048:
                raise MonitorError("URLs have at most 2048 characters")
        release.url = value
    if published_at is not _UNSET:
        if published_at is not None and not (isinstance(published_at, datetime) and published_at.tzinfo):
            raise MonitorError("the publication time must be a timezone-aware datetime")
        release.published_at = published_at  # type: ignore[assignment]
    if language is not _UNSET:
        if language not in LANGUAGES:
            raise MonitorError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
        release.language = language  # type: ignore[assignment]
    session.flush()
    return release


def fetch_release_document(url: str, *, limits: FetchLimits, guard: AddressGuard,
                           client: httpx.Client | None = None) -> tuple[str, str | None]:
    """(plain text, page title) of a release page fetched through the collectors' guarded ``fetch``.

    Raises FetchError (BlockedURLError for the SSRF policy) or MonitorError with a message for staff.
    """
    from monitor.collectors.http import fetch

    from urllib.parse import urlsplit

    url = (url or "").strip()
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise MonitorError("the release URL must be an http:// or https:// address")
    result = fetch(url, limits=limits, guard=guard, client=client)
    text, title = document_from_fetch(result.body, result.headers.get("content-type"))
    if not text.strip():
        raise MonitorError("the page has no text")
    return text, title
