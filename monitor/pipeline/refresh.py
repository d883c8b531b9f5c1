"""``refresh_feed``: fetch -> parse -> store one feed, recording success or failure on the feed row.

The network fetch happens outside any database transaction; the items of one fetch are then stored in a
single transaction, so an interrupted round never leaves half a feed behind, and one broken feed never
touches the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from monitor.collectors.feeds import parse_feed
from monitor.collectors.guard import AddressGuard
from monitor.collectors.http import FetchLimits, fetch
from monitor.collectors.identity import url_key
from monitor.config import Settings
from monitor.errors import FetchError, MonitorError
from monitor.pipeline.releases import add_release
from monitor.pipeline.schedule import next_after_error, next_after_success
from monitor.records import FetchResult, ParsedFeed, ParsedItem
from monitor.storage.db import transaction
from monitor.storage.tables import Feed, Item, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did, for the CLI and the logs."""

    feed_id: int
    feed_name: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    error: str | None = None
    status: int | None = None


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(connect_timeout=settings.fetch_connect_timeout, read_timeout=settings.fetch_read_timeout,
                       total_timeout=settings.fetch_total_timeout, max_bytes=settings.fetch_max_bytes,
                       max_redirects=settings.fetch_max_redirects, user_agent=settings.user_agent)


def fetch_guard(settings: Settings) -> AddressGuard:
    return AddressGuard(settings.fetch_allow_hosts, allow_files=settings.fetch_allow_files)


def due_feed_ids(session: Session, now: datetime) -> list[int]:
    """Enabled feeds whose next fetch time has come (or that were never fetched)."""
    query = select(Feed.id).where(Feed.enabled.is_(True)).where(
        (Feed.next_fetch_at.is_(None)) | (Feed.next_fetch_at <= now)).order_by(Feed.next_fetch_at, Feed.id)
    return list(session.scalars(query))


def refresh_feed(factory: sessionmaker[Session], settings: Settings, feed_id: int, now: datetime | None = None,
                 *, client: httpx.Client | None = None) -> RefreshResult:
    """One collection of one feed. Never raises for feed problems: they are stored on the feed row."""
    now = now or utcnow()
    with factory() as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            raise MonitorError(f"feed {feed_id} does not exist")
        url, name, etag, last_modified, body_hash = (feed.url, feed.name, feed.etag, feed.last_modified,
                                                     feed.body_hash)
    try:
        result = fetch(url, etag=etag, last_modified=last_modified, limits=fetch_limits(settings),
                       guard=fetch_guard(settings), client=client)
        digest = hashlib.sha256(result.body).hexdigest() if not result.not_modified else body_hash
        parsed = None
        if not result.not_modified and digest != body_hash:
            parsed = parse_feed(result.body, result.headers, result.url)
    except MonitorError as exc:
        return _record_failure(factory, settings, feed_id, name, exc, now)
    except Exception as exc:  # a bug or an unexpected library error must not stop the round
        log.exception("unexpected error refreshing feed %s", feed_id)
        return _record_failure(factory, settings, feed_id, name, MonitorError(f"internal error: {exc}"), now)
    return _store(factory, settings, feed_id, name, result, digest, parsed, now)


def _record_failure(factory: sessionmaker[Session], settings: Settings, feed_id: int, name: str,
                    exc: MonitorError, now: datetime) -> RefreshResult:
    status = getattr(exc, "status", None)
    with transaction(factory) as session:
        feed = session.get(Feed, feed_id)
        if feed is None:
            return RefreshResult(feed_id, name, error=str(exc), status=status)
        feed.error_count = (feed.error_count or 0) + 1
        feed.last_error = str(exc)
        feed.last_error_at = now
        feed.last_fetched_at = now
        feed.last_status = status
        feed.next_fetch_at = next_after_error(now, feed.error_count, feed.interval_minutes,
                                              settings.feed_max_backoff, getattr(exc, "retry_after", None))
        if isinstance(exc, FetchError) and exc.permanent:
            feed.enabled = False
            feed.disabled_reason = str(exc)
        elif feed.error_count >= settings.feed_disable_after:
            feed.enabled = False
            feed.disabled_reason = f"disabled after {feed.error_count} failures in a row; last: {exc}"
    log.warning("feed %s (%s): %s", feed_id, name, exc)
    return RefreshResult(feed_id, name, error=str(exc), status=status)


def _store(factory: sessionmaker[Session], settings: Settings, feed_id: int, name: str, result: FetchResult,
           digest: str | None, parsed: ParsedFeed | None, now: datetime) -> RefreshResult:
    counts = {"new": 0, "updated": 0, "unchanged": 0, "duplicates": 0}
    with transaction(factory) as session:
        feed = session.get(Feed, feed_id)
        if feed is None:  # removed while we were fetching
            return RefreshResult(feed_id, name, error="feed was removed during the fetch")
        if parsed is not None:
            counts = _store_items(session, feed, parsed.items, now)
            feed.warnings = parsed.warnings or None
            if parsed.title and feed.name == _default_name(feed.url):
                feed.name = parsed.title[:255]
        if result.permanent_url and result.permanent_url != feed.url:
            taken = session.scalar(select(Feed.id).where(Feed.url == result.permanent_url))
            if taken is None:
                feed.url = result.permanent_url
        feed.etag = result.etag or (feed.etag if result.not_modified else None)
        feed.last_modified = result.last_modified or (feed.last_modified if result.not_modified else None)
        feed.body_hash = digest
        feed.last_status = result.status
        feed.last_fetched_at = now
        feed.last_success_at = now
        feed.error_count = 0
        feed.last_error = None
        feed.next_fetch_at = next_after_success(now, feed.interval_minutes, result.max_age)
        name = feed.name
    return RefreshResult(feed_id, name, status=result.status, **counts)


def _default_name(url: str) -> str:
    return urlsplit(url).hostname or url


def _store_items(session: Session, feed: Feed, items: Iterable[ParsedItem], now: datetime) -> dict[str, int]:
    """Insert new items, update changed ones, skip stories already stored under the same canonical URL."""
    counts = {"new": 0, "updated": 0, "unchanged": 0, "duplicates": 0}
    seen: set[str] = set()
    for parsed in items:
        if parsed.guid in seen:  # the same entry twice in one document
            continue
        seen.add(parsed.guid)
        item = session.scalar(select(Item).where(Item.feed_id == feed.id, Item.guid == parsed.guid))
        key = url_key(parsed.url) if parsed.url else None
        if item is None:
            if key and session.scalar(select(Item.id).where(Item.url_key == key)) is not None:
                counts["duplicates"] += 1
                continue
            item = Item(feed_id=feed.id, guid=parsed.guid, url_key=key, fetched_at=now)
            _copy(parsed, item)
            session.add(item)
            session.flush()
            counts["new"] += 1
            if feed.kind == "official":
                _release_from_item(session, item)
        elif item.content_hash != parsed.content_hash:
            if key != item.url_key and key and session.scalar(
                    select(Item.id).where(Item.url_key == key, Item.id != item.id)) is not None:
                key = item.url_key
            item.url_key = key
            _copy(parsed, item)
            item.checked_at = None  # changed text is checked again
            counts["updated"] += 1
            if feed.kind == "official":
                _release_from_item(session, item)
        else:
            counts["unchanged"] += 1
    return counts


def _copy(parsed: ParsedItem, item: Item) -> None:
    item.url = parsed.url
    item.title = parsed.title
    item.summary_text = parsed.summary_text
    item.content_text = parsed.content_text
    item.content_html = parsed.content_html
    item.author = parsed.author
    item.language = parsed.language
    item.published_at = parsed.published_at
    item.updated_at = parsed.updated_at
    item.content_hash = parsed.content_hash


def _release_from_item(session: Session, item: Item) -> None:
    """Items of an official feed become releases (a changed item becomes a new release version)."""
    body = "\n\n".join(part for part in (item.title, item.body_text) if part)
    add_release(session, body, title=item.title, url=item.url, published_at=item.published_at,
                language=item.language, source="feed", item_id=item.id)
    item.checked_at = utcnow()  # official items are reference texts, never checked as claims
