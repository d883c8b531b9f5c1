"""Managing feeds: add, list, remove, enable (shared by the CLI and the dashboard)."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import Feed

KINDS = ("news", "official")


def add_feed(session: Session, url: str, *, name: str | None = None, kind: str = "news",
             interval_minutes: int = 30, allow_files: bool = False) -> Feed:
    """Register a feed; it is fetched on the next scheduler tick."""
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    allowed = ("http", "https", "file") if allow_files else ("http", "https")
    if scheme not in allowed:
        raise MonitorError(f"feed URL must start with {' or '.join(s + '://' for s in allowed)}: {url!r}")
    if scheme != "file" and not urlsplit(url).hostname:
        raise MonitorError(f"feed URL has no host: {url!r}")
    if kind not in KINDS:
        raise MonitorError(f"unknown feed kind {kind!r}; choose news or official")
    if interval_minutes < 1:
        raise MonitorError("the interval must be at least one minute")
    if session.scalar(select(Feed).where(Feed.url == url)) is not None:
        raise MonitorError(f"a feed with URL {url} already exists")
    feed = Feed(url=url, name=(name or "").strip() or (urlsplit(url).hostname or url), kind=kind,
                interval_minutes=interval_minutes, enabled=True, error_count=0)
    session.add(feed)
    session.flush()
    return feed


def get_feed(session: Session, feed_id: int) -> Feed:
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise NotFoundError(f"feed {feed_id} does not exist")
    return feed


def remove_feed(session: Session, feed_id: int) -> Feed:
    """Delete a feed with its items (releases made from an official feed stay, unlinked)."""
    feed = get_feed(session, feed_id)
    session.delete(feed)
    session.flush()
    return feed


def set_enabled(session: Session, feed_id: int, enabled: bool) -> Feed:
    """Pause or resume a feed; resuming clears the failure state so it is fetched at once."""
    feed = get_feed(session, feed_id)
    feed.enabled = enabled
    if enabled:
        feed.error_count = 0
        feed.disabled_reason = None
        feed.next_fetch_at = None
    return feed


def list_feeds(session: Session) -> list[Feed]:
    return list(session.scalars(select(Feed).order_by(Feed.id)))


def feed_to_dict(feed: Feed) -> dict[str, object]:
    def iso(value: object) -> object:
        return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

    return {
        "id": feed.id, "url": feed.url, "name": feed.name, "kind": feed.kind,
        "interval_minutes": feed.interval_minutes, "enabled": feed.enabled,
        "last_fetched_at": iso(feed.last_fetched_at), "last_status": feed.last_status,
        "last_error": feed.last_error, "error_count": feed.error_count,
        "next_fetch_at": iso(feed.next_fetch_at), "disabled_reason": feed.disabled_reason,
        "warnings": feed.warnings or [],
    }
