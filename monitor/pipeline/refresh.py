"""``refresh_feed``: fetch -> parse -> store one feed, recording success or failure on the feed row.

The network fetch happens outside any database transaction; the items of one fetch are then stored in a
single transaction together with the feed's new state and its :class:`FeedRun` record, so an interrupted
round never leaves half a feed behind, and one broken feed never touches the others. The two halves are
public for :func:`~monitor.pipeline.collect.collect_round`: :func:`fetch_feed` (network and parse) and
:func:`store_batch`, which stores several fetched feeds in one transaction (whole feeds still commit or
roll back together; a failed batch is stored again feed by feed).

Politeness: at most :data:`PER_HOST_LIMIT` fetches run at once per host (a process-wide
:class:`HostLimiter`), validators (ETag/Last-Modified) are sent, except that a feed whose last full (200)
answer is older than :data:`UNCONDITIONAL_AFTER` is fetched without them once, because some servers answer
304 forever. ``Cache-Control: max-age`` and ``Retry-After`` are lower bounds on the next fetch time.

Identity across outlets: an entry whose canonical URL, or (when it has enough words) whose normalised
title + text hash (``story_key``), is already stored under another feed becomes a :class:`Sighting` of that
story, not a second item. An entry whose text changed keeps the previous text as an :class:`ItemVersion`
and is checked again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import zip_longest
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import bindparam, func, insert, null, or_, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from monitor.collectors.feeds import parse_feed
from monitor.collectors.guard import AddressGuard
from monitor.collectors.http import FetchLimits, Fetcher, fetch
from monitor.collectors.identity import url_key
from monitor.config import Settings
from monitor.errors import FetchError, MonitorError
from monitor.pipeline.releases import add_release
from monitor.pipeline.schedule import next_after_error, next_after_success
from monitor.records import FetchResult, ParsedFeed, ParsedItem
from monitor.storage.db import transaction
from monitor.storage.tables import Feed, FeedRun, Item, ItemVersion, Sighting, utcnow

log = logging.getLogger(__name__)

#: Fetches allowed at once against one host (scheme-less ``host:port``), across every thread of the process.
PER_HOST_LIMIT = 2
#: Validators are left out once the last full answer is older than this (servers that never change them).
UNCONDITIONAL_AFTER = timedelta(hours=24)
#: Articles fetched per refresh for a full-text feed (the rest keep the feed's own text).
FULL_TEXT_MAX_ITEMS = 20
_IN_CHUNK = 500
_STORE_ATTEMPTS = 3

#: Turns fetched bytes into a ParsedFeed (``parse_feed``, or a stand-in that runs it in a worker process).
ParseFunction = Callable[[bytes, Mapping[str, str], str], ParsedFeed]


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did, for the CLI and the logs. ``run_status`` is the FeedRun status."""

    feed_id: int
    feed_name: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    error: str | None = None
    status: int | None = None
    run_status: str = "ok"
    sightings: int = 0
    warnings: tuple[str, ...] = ()


class HostLimiter:
    """A semaphore per host: at most ``limit`` fetches against one host at a time (thread-safe)."""

    def __init__(self, limit: int = PER_HOST_LIMIT) -> None:
        if limit < 1:
            raise ValueError("the per-host limit must be at least 1")
        self.limit = limit
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.Semaphore] = {}
        self._active: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    @staticmethod
    def host_of(url: str) -> str:
        try:
            parts = urlsplit(url.strip())
            return (parts.netloc or parts.path).lower().rsplit("@", 1)[-1]
        except ValueError:
            return url

    @contextmanager
    def hold(self, url: str) -> Iterator[None]:
        host = self.host_of(url)
        with self._lock:
            semaphore = self._semaphores.setdefault(host, threading.Semaphore(self.limit))
        with semaphore:
            with self._lock:
                self._active[host] = self._active.get(host, 0) + 1
                self.peak[host] = max(self.peak.get(host, 0), self._active[host])
            try:
                yield
            finally:
                with self._lock:
                    self._active[host] -= 1


#: The process-wide limiter used when the caller gives none (CLI rounds and scheduler jobs share it).
HOST_LIMITER = HostLimiter()
_LIMITERS: dict[int, HostLimiter] = {PER_HOST_LIMIT: HOST_LIMITER}
_LIMITERS_LOCK = threading.Lock()


def host_limiter(limit: int) -> HostLimiter:
    """The process-wide limiter for ``limit`` fetches per host (``settings.host_concurrency``)."""
    with _LIMITERS_LOCK:
        return _LIMITERS.setdefault(limit, HostLimiter(limit))


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


@dataclass(frozen=True)
class FeedState:
    """What a refresh needs to know about a feed before fetching it (read once, outside any write)."""

    url: str
    name: str
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    full_text: bool
    conditional: bool


def load_states(factory: sessionmaker[Session], feed_ids: Sequence[int], now: datetime) -> dict[int, FeedState]:
    """The :class:`FeedState` of each existing feed among ``feed_ids``, in one query per 500 feeds."""
    last_full = select(func.max(FeedRun.started_at)).where(
        FeedRun.feed_id == Feed.id, FeedRun.http_status == 200).scalar_subquery()
    query = select(Feed.id, Feed.url, Feed.name, Feed.etag, Feed.last_modified, Feed.body_hash, Feed.full_text,
                   last_full)
    states: dict[int, FeedState] = {}
    with factory() as session:  # plain columns (no ORM object to build)
        for start in range(0, len(feed_ids), _IN_CHUNK):
            chunk = list(feed_ids[start:start + _IN_CHUNK])
            for fid, url, name, etag, modified, body_hash, full_text, last in session.execute(
                    query.where(Feed.id.in_(chunk))):
                conditional = last is not None and now - last < UNCONDITIONAL_AFTER
                states[fid] = FeedState(url, name, etag, modified, body_hash, bool(full_text), conditional)
    return states


def _load_state(factory: sessionmaker[Session], feed_id: int, now: datetime) -> FeedState:
    state = load_states(factory, [feed_id], now).get(feed_id)
    if state is None:
        raise MonitorError(f"feed {feed_id} does not exist")
    return state


@dataclass
class Fetched:
    """The network and parse half of one refresh, ready to be stored: a fetch result (with the parsed feed
    when the body changed) or the error that ended it."""

    feed_id: int
    state: FeedState
    now: datetime
    started: float
    result: FetchResult | None = None
    digest: str | None = None
    parsed: ParsedFeed | None = None
    error: MonitorError | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


def refresh_feed(factory: sessionmaker[Session], settings: Settings, feed_id: int, now: datetime | None = None,
                 *, client: httpx.Client | None = None, limiter: HostLimiter | None = None,
                 parse: ParseFunction | None = None) -> RefreshResult:
    """One collection of one feed. Never raises for feed problems: they are stored on the feed row and in
    a FeedRun record (raises MonitorError only when the feed does not exist).

    ``parse`` replaces :func:`parse_feed` (same contract); :func:`~monitor.pipeline.collect.collect_round`
    passes one that runs it in a worker process, so parsing uses every core while threads fetch and store."""
    now = now or utcnow()
    started = time.monotonic()
    state = _load_state(factory, feed_id, now)
    fetched = fetch_feed(factory, settings, feed_id, state, now, started, client=client, limiter=limiter,
                         parse=parse)
    return store_fetched(factory, settings, fetched)


def fetch_feed(factory: sessionmaker[Session], settings: Settings, feed_id: int, state: FeedState,
               now: datetime, started: float, *, client: httpx.Client | Fetcher | None = None,
               limiter: HostLimiter | None = None, parse: ParseFunction | None = None) -> Fetched:
    """Fetch (conditional GET, per-host limit) and parse one feed; never raises for feed problems.

    ``client``: an httpx client used as is, or a :class:`~monitor.collectors.http.Fetcher` (connections
    kept per host and vetted address across the fetches of a round)."""
    limiter = limiter or host_limiter(settings.host_concurrency)
    etag, last_modified = (state.etag, state.last_modified) if state.conditional else (None, None)
    fetched = Fetched(feed_id, state, now, started)
    try:
        with limiter.hold(state.url):
            result = fetch(state.url, etag=etag, last_modified=last_modified, limits=fetch_limits(settings),
                           guard=fetch_guard(settings), client=client)
        fetched.result = result
        fetched.digest = hashlib.sha256(result.body).hexdigest() if not result.not_modified else state.body_hash
        if not result.not_modified and fetched.digest != state.body_hash:
            parsed = (parse or parse_feed)(result.body, result.headers, result.url)
            if state.full_text and parsed.items:
                parsed = _with_full_text(factory, settings, feed_id, parsed, fetched.warnings, limiter, client)
            fetched.parsed = parsed
    except MonitorError as exc:
        fetched.error = exc
    except Exception as exc:  # a bug or an unexpected library error must not stop the round
        log.exception("unexpected error refreshing feed %s", feed_id)
        fetched.error = MonitorError(f"internal error: {exc}")
    return fetched


def store_fetched(factory: sessionmaker[Session], settings: Settings, fetched: Fetched) -> RefreshResult:
    """Store one fetched feed in its own transaction (re-run on a uniqueness conflict); never raises."""
    feed_id, name = fetched.feed_id, fetched.state.name
    if fetched.error is not None:
        return _record_failure(factory, settings, fetched, fetched.error)
    for attempt in range(1, _STORE_ATTEMPTS + 1):
        try:
            with _writer(factory), transaction(factory) as session:
                return _apply_success(session, settings, fetched)
        except IntegrityError:
            # another feed stored the same story (URL) at the same moment: run again, it becomes a sighting
            if attempt == _STORE_ATTEMPTS:
                log.exception("feed %s: storing failed %d times on a uniqueness conflict", feed_id, attempt)
                return _record_failure(factory, settings, fetched, MonitorError(
                    "items could not be stored (conflicting concurrent update); will retry"))
        except Exception as exc:
            log.exception("feed %s: storing failed", feed_id)
            try:
                return _record_failure(factory, settings, fetched,
                                       MonitorError(f"items could not be stored: {type(exc).__name__}"))
            except Exception:  # the database itself is gone: report, do not break the round
                return RefreshResult(feed_id, name, error=f"database error: {type(exc).__name__}",
                                     run_status="error")
    raise AssertionError("unreachable")


def store_batch(factory: sessionmaker[Session], settings: Settings, batch: Sequence[Fetched]) -> list[RefreshResult]:
    """Store several fetched feeds in ONE transaction (each feed's items, state and run record together, so
    a crash loses or keeps whole feeds); on any error it is rolled back and each feed is stored on its own
    by :func:`store_fetched`. Never raises."""
    if len(batch) == 1:
        return [store_fetched(factory, settings, batch[0])]
    try:
        with _writer(factory), transaction(factory) as session:
            ids = sorted({f.feed_id for f in batch})
            loaded: list[Feed] = []  # held: the session's identity map keeps objects only weakly
            for start in range(0, len(ids), _IN_CHUNK):  # one query; session.get then finds them loaded
                loaded += session.scalars(select(Feed).where(Feed.id.in_(ids[start:start + _IN_CHUNK])))
            results = [_apply_failure(session, settings, f, f.error) if f.error is not None
                       else _apply_success(session, settings, f) for f in batch]
    except Exception as exc:
        log.info("a batch of %d feeds could not be stored together (%s); storing them one by one",
                 len(batch), type(exc).__name__)
        return [store_fetched(factory, settings, f) for f in batch]
    for fetched, result in zip(batch, results):
        if fetched.error is not None:
            log.warning("feed %s (%s): %s", fetched.feed_id, result.feed_name, fetched.error)
    return results


_SQLITE_LOCKS: dict[str, threading.Lock] = {}
_SQLITE_LOCKS_GUARD = threading.Lock()


@contextmanager
def _writer(factory: sessionmaker[Session]) -> Iterator[None]:
    """On SQLite, one writing transaction at a time per database in this process: threads queue on a lock
    instead of SQLite's sleeping busy handler (and a deferred transaction never fails to upgrade)."""
    bind = factory.kw.get("bind")
    url = str(getattr(bind, "url", ""))
    if not url.startswith("sqlite"):
        yield
        return
    with _SQLITE_LOCKS_GUARD:
        lock = _SQLITE_LOCKS.setdefault(url, threading.Lock())
    with lock:
        yield


def _elapsed_ms(started: float) -> int:
    return max(0, int((time.monotonic() - started) * 1000))


def _record_failure(factory: sessionmaker[Session], settings: Settings, fetched: Fetched,
                    exc: MonitorError) -> RefreshResult:
    with _writer(factory), transaction(factory) as session:
        result = _apply_failure(session, settings, fetched, exc)
    log.warning("feed %s (%s): %s", fetched.feed_id, result.feed_name, exc)
    return result


def _apply_failure(session: Session, settings: Settings, fetched: Fetched, exc: MonitorError) -> RefreshResult:
    feed_id, name, now = fetched.feed_id, fetched.state.name, fetched.now
    status = getattr(exc, "status", None)
    feed = session.get(Feed, feed_id)
    if feed is None:
        return RefreshResult(feed_id, name, error=str(exc), status=status, run_status="error")
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
    session.add(FeedRun(feed_id=feed_id, started_at=now, duration_ms=_elapsed_ms(fetched.started), status="error",
                        http_status=status, new=0, updated=0, error=str(exc)))
    return RefreshResult(feed_id, name, error=str(exc), status=status, run_status="error")


def _apply_success(session: Session, settings: Settings, fetched: Fetched) -> RefreshResult:
    feed_id, name, now, parsed, result = fetched.feed_id, fetched.state.name, fetched.now, fetched.parsed, \
        fetched.result
    assert result is not None
    counts = {"new": 0, "updated": 0, "unchanged": 0, "duplicates": 0, "sightings": 0}
    feed = session.get(Feed, feed_id)
    if feed is None:  # removed while we were fetching
        return RefreshResult(feed_id, name, error="feed was removed during the fetch", run_status="error")
    if parsed is not None:
        counts = _store_items(session, feed, parsed.items, now)
        feed.warnings = [*parsed.warnings, *fetched.warnings] or None
        if parsed.title and feed.name == _default_name(feed.url):
            feed.name = parsed.title[:255]
    if result.permanent_url and result.permanent_url != feed.url:
        taken = session.scalar(select(Feed.id).where(Feed.url == result.permanent_url))
        if taken is None:
            feed.url = result.permanent_url
    feed.etag = result.etag or (feed.etag if result.not_modified else None)
    feed.last_modified = result.last_modified or (feed.last_modified if result.not_modified else None)
    feed.body_hash = fetched.digest
    feed.last_status = result.status
    feed.last_fetched_at = now
    feed.last_success_at = now
    feed.error_count = 0
    feed.last_error = None
    feed.next_fetch_at = next_after_success(now, feed.interval_minutes, result.max_age)
    if parsed is None:
        run_status = "not_modified"
    else:
        run_status = "warning" if feed.warnings else "ok"
    warnings = tuple(feed.warnings or ()) if parsed is not None else ()
    session.add(FeedRun(feed_id=feed_id, started_at=now, duration_ms=_elapsed_ms(fetched.started),
                        status=run_status, http_status=result.status, new=counts["new"],
                        updated=counts["updated"], error="; ".join(warnings)[:2000] or None))
    return RefreshResult(feed_id, feed.name, status=result.status, run_status=run_status, warnings=warnings,
                         **counts)


def _default_name(url: str) -> str:
    return urlsplit(url).hostname or url


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start:start + _IN_CHUNK]


#: This feed's stored items (guid, id, content hash) and sightings (guid, NULL, NULL) among some guids.
_KNOWN_GUIDS = union_all(
    select(Item.guid, Item.id, Item.content_hash).where(
        Item.feed_id == bindparam("feed_id"), Item.guid.in_(bindparam("guids", expanding=True))),
    select(Sighting.guid, null(), null()).where(
        Sighting.feed_id == bindparam("feed_id"), Sighting.guid.in_(bindparam("guids", expanding=True))))
#: Stored items with one of some canonical-URL keys or story keys, oldest first.
_SAME_STORY = select(Item.id, Item.feed_id, Item.url_key, Item.story_key).where(
    or_(Item.url_key.in_(bindparam("keys", expanding=True)),
        Item.story_key.in_(bindparam("stories", expanding=True)))).order_by(Item.id)


def _store_items(session: Session, feed: Feed, items: Sequence[ParsedItem], now: datetime) -> dict[str, int]:
    """Insert new items, update changed ones (keeping the old text as a version), and turn stories already
    stored by another feed (same canonical URL or same story key) into sightings. Lookups are batched."""
    counts = {"new": 0, "updated": 0, "unchanged": 0, "duplicates": 0, "sightings": 0}
    unique: dict[str, ParsedItem] = {}
    for parsed in items:
        unique.setdefault(parsed.guid, parsed)  # the same entry twice in one document: the first wins
    guids = list(unique)
    known: dict[str, tuple[int, str]] = {}  # guid -> (id, content_hash) of this feed's stored items
    sighted: set[str] = set()
    for chunk in _chunks(guids):  # one round trip: this feed's items and sightings among these guids
        for guid, item_id, content_hash in session.execute(_KNOWN_GUIDS, {"feed_id": feed.id, "guids": chunk}):
            if item_id is None:
                sighted.add(guid)
            else:
                known[guid] = (item_id, content_hash)
    existing: dict[str, Item] = {}  # only the items whose text changed are loaded as objects
    changed = [item_id for guid, (item_id, stored_hash) in known.items()
               if stored_hash != unique[guid].content_hash]
    for chunk_ids in _chunks(changed):
        existing.update((i.guid, i) for i in session.scalars(select(Item).where(Item.id.in_(chunk_ids))))
    keys = {guid: (p.url_key or url_key(p.url)) if p.url else None for guid, p in unique.items()}
    fresh = [g for g in guids if g not in known and g not in sighted]
    by_url: dict[str, tuple[int | None, int]] = {}
    by_story: dict[str, tuple[int | None, int]] = {}
    wanted_keys = sorted({k for g in fresh if (k := keys[g])})
    wanted_stories = sorted({s for g in fresh if (s := unique[g].story_key)})
    for key_chunk, story_chunk in zip_longest(_chunks(wanted_keys), _chunks(wanted_stories), fillvalue=()):
        # one round trip for both: stored items with one of these URLs or story keys, oldest first
        some_keys, some_stories = set(key_chunk), set(story_chunk)
        for i, f, k, s in session.execute(_SAME_STORY, {"keys": list(key_chunk), "stories": list(story_chunk)}):
            if k in some_keys:
                by_url[k] = (i, f)
            if s in some_stories:
                by_story.setdefault(s, (i, f))
    official = feed.kind == "official"
    fresh_rows: list[dict[str, object]] = []
    for guid, parsed in unique.items():
        key = keys[guid]
        item = existing.get(guid)
        if guid in known and item is None:
            counts["unchanged"] += 1
        elif item is None:
            if guid in sighted:
                counts["unchanged"] += 1
                continue
            other = (by_url.get(key) if key else None) or (by_story.get(parsed.story_key)
                                                           if parsed.story_key else None)
            if other is not None:
                counts["duplicates"] += 1
                other_id, other_feed = other
                if other_feed != feed.id and other_id is not None and _add_sighting(
                        session, other_id, feed.id, parsed, now):
                    counts["sightings"] += 1
                continue
            counts["new"] += 1
            if not official:  # plain rows, inserted together below (one executemany, not one INSERT each)
                fresh_rows.append(_row(feed.id, guid, key, parsed, now))
            else:
                item = Item(feed_id=feed.id, guid=guid, url_key=key, fetched_at=now)
                _copy(parsed, item, now)
                session.add(item)
            if key:
                by_url[key] = (None, feed.id)
            if parsed.story_key:
                by_story.setdefault(parsed.story_key, (None, feed.id))
            if official:
                session.flush()
                _release_from_item(session, item)
        elif item.content_hash != parsed.content_hash:
            session.add(ItemVersion(item_id=item.id, title=item.title or "", summary_text=item.summary_text or "",
                                    content_text=item.content_text or "", content_hash=item.content_hash,
                                    recorded_at=now))
            if key != item.url_key and key and session.scalar(
                    select(Item.id).where(Item.url_key == key, Item.id != item.id)) is not None:
                key = item.url_key
            item.url_key = key
            _copy(parsed, item, now)
            item.checked_at = None  # changed text is checked again
            counts["updated"] += 1
            if official:
                _release_from_item(session, item)
        else:
            counts["unchanged"] += 1
    session.flush()
    if fresh_rows:  # Core executemany: the ORM's bulk insert costs more per row, and these are plain rows
        session.execute(insert(Item.__table__), fresh_rows)
    return counts


def _row(feed_id: int, guid: str, key: str | None, parsed: ParsedItem, now: datetime) -> dict[str, object]:
    return {"feed_id": feed_id, "guid": guid, "url_key": key, "fetched_at": now, "url": parsed.url,
            "title": parsed.title, "summary_text": parsed.summary_text, "content_text": parsed.content_text,
            "content_html": parsed.content_html, "author": (parsed.author or "")[:512] or None,
            "language": parsed.language, "published_at": parsed.published_at or now,
            "published_raw": parsed.published_raw, "date_flag": parsed.date_flag, "updated_at": parsed.updated_at,
            "content_hash": parsed.content_hash, "story_key": parsed.story_key, "checked_at": None}


def _add_sighting(session: Session, item_id: int, feed_id: int, parsed: ParsedItem, now: datetime) -> bool:
    if session.scalar(select(Sighting.id).where(Sighting.item_id == item_id, Sighting.feed_id == feed_id)):
        return False
    session.add(Sighting(item_id=item_id, feed_id=feed_id, guid=parsed.guid[:1024], url=parsed.url, seen_at=now))
    return True


def _copy(parsed: ParsedItem, item: Item, now: datetime) -> None:
    item.url = parsed.url
    item.title = parsed.title
    item.summary_text = parsed.summary_text
    item.content_text = parsed.content_text
    item.content_html = parsed.content_html
    item.author = (parsed.author or "")[:512] or None
    item.language = parsed.language
    # missing, impossible or far-future dates: the time the item was first seen (kept on later updates)
    item.published_at = parsed.published_at or item.published_at or now
    item.published_raw = parsed.published_raw
    item.date_flag = parsed.date_flag
    item.updated_at = parsed.updated_at
    item.content_hash = parsed.content_hash
    item.story_key = parsed.story_key


def _release_from_item(session: Session, item: Item) -> None:
    """Items of an official feed become releases (a changed item becomes a new release version)."""
    body = "\n\n".join(part for part in (item.title, item.body_text) if part)
    add_release(session, body, title=item.title, url=item.url, published_at=item.published_at,
                language=item.language, source="feed", item_id=item.id)
    item.checked_at = utcnow()  # official items are reference texts, never checked as claims


# -- full-article extraction -------------------------------------------------------------------------------


def _with_full_text(factory: sessionmaker[Session], settings: Settings, feed_id: int, parsed: ParsedFeed,
                    warnings: list[str], limiter: HostLimiter, client: httpx.Client | Fetcher | None) -> ParsedFeed:
    """Replace the text of the feed's NEW items by the article text of their links (same fetch limits and
    guard as feeds). A failure is a warning; the item keeps the feed's own text. ``content_hash`` stays the
    hash of the feed entry, so an unchanged entry is not seen as edited on the next fetch."""
    from monitor.collectors.article import extract_article

    with factory() as session:
        known: set[str] = set()
        guids = [i.guid for i in parsed.items]
        for chunk in _chunks(guids):
            known.update(session.scalars(select(Item.guid).where(Item.feed_id == feed_id, Item.guid.in_(chunk))))
            known.update(session.scalars(select(Sighting.guid).where(Sighting.feed_id == feed_id,
                                                                     Sighting.guid.in_(chunk))))
    items = list(parsed.items)
    failures: list[str] = []
    done = 0
    for index, item in enumerate(items):
        if item.guid in known or not item.url:
            continue
        if done >= FULL_TEXT_MAX_ITEMS:
            break
        done += 1
        try:
            with limiter.hold(item.url):
                page = fetch(item.url, limits=fetch_limits(settings), guard=fetch_guard(settings), client=client)
            text, html = extract_article(page.body, page.headers, page.url)
        except MonitorError as exc:
            failures.append(f"{item.url}: {exc}")
            continue
        except Exception as exc:  # an extractor bug must never lose the item
            failures.append(f"{item.url}: extraction failed ({type(exc).__name__})")
            continue
        if len(text) > len(item.content_text):
            items[index] = dataclasses.replace(item, content_text=text, content_html=html)
    if failures:
        more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
        warnings.append(f"full text unavailable for {len(failures)} item(s), kept the feed's text: "
                        + "; ".join(failures[:3]) + more)
    return dataclasses.replace(parsed, items=items)
