"""Official releases: read a file (text, Markdown or HTML), split it into statements, store it."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from dateutil import parser as dateparser
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.claims import split_statements
from monitor.collectors.sanitize import html_to_text
from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import Item, Release, Statement

# Letters that occur in Vietnamese but not in English or the other Latin-script languages we expect.
_VI_LETTERS = set("ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")
_HTML_HINT = re.compile(r"<\s*(html|body|p|div|article|h[1-6]|br)\b", re.I)
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.M)
_MD_MARKUP = re.compile(r"(\*\*|__|`)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
RECHECK_WINDOW = timedelta(days=30)


def detect_language(text: str) -> str:
    """``vi`` when Vietnamese-only letters are frequent enough, else ``en``."""
    letters = [c for c in text.lower() if c.isalpha()]
    if not letters:
        return "en"
    share = sum(c in _VI_LETTERS for c in letters) / len(letters)
    return "vi" if share > 0.02 else "en"


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
