"""Managing feeds: add, list, remove, enable, edit, OPML import/export (shared by the CLI and the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from monitor.errors import MonitorError, NotFoundError
from monitor.storage.tables import Feed, Item

KINDS = ("news", "official")


def add_feed(session: Session, url: str, *, name: str | None = None, kind: str = "news",
             interval_minutes: int = 30, allow_files: bool = False, full_text: bool = False) -> Feed:
    """Register a feed; it is fetched on the next scheduler tick."""
    url = url.strip()
    if len(url) > 2048:
        raise MonitorError("feed URLs have at most 2048 characters")
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
                interval_minutes=interval_minutes, enabled=True, error_count=0, full_text=full_text)
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


def feed_status(feed: Feed) -> str:
    """Health at a glance: ``disabled``, ``new`` (never attempted), ``error``, ``warning`` or ``ok``."""
    if not feed.enabled:
        return "disabled"
    if feed.last_fetched_at is None:
        return "new"
    if feed.error_count:
        return "error"
    if feed.warnings:
        return "warning"
    return "ok"


def item_counts(session: Session) -> dict[int, int]:
    """Stored items per feed id, in one GROUP BY query (feeds without items are absent)."""
    return {fid: int(n) for fid, n in session.execute(select(Item.feed_id, func.count(Item.id))
                                                      .group_by(Item.feed_id))}


def feed_to_dict(feed: Feed, items: int | None = None) -> dict[str, object]:
    """The JSON shape of a feed (CLI ``feeds list --json``, dashboard). ``items`` is the stored item count;
    when not given it is counted with one query."""
    def iso(value: object) -> object:
        return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

    if items is None:
        from sqlalchemy.orm import object_session

        session = object_session(feed)
        items = int(session.scalar(select(func.count(Item.id)).where(Item.feed_id == feed.id)) or 0) \
            if session is not None else 0
    return {
        "id": feed.id, "url": feed.url, "name": feed.name, "kind": feed.kind,
        "interval_minutes": feed.interval_minutes, "enabled": feed.enabled,
        "status": feed_status(feed),
        "last_fetched_at": iso(feed.last_fetched_at), "last_status": feed.last_status,
        "last_success_at": iso(feed.last_success_at),
        "last_error": feed.last_error, "error_count": feed.error_count,
        "consecutive_failures": feed.error_count or 0,
        "next_fetch_at": iso(feed.next_fetch_at), "disabled_reason": feed.disabled_reason,
        "warnings": feed.warnings or [], "full_text": bool(feed.full_text), "items": items,
    }


def update_feed(session: Session, feed_id: int, *, name: str | None = None, interval_minutes: int | None = None,
                kind: str | None = None) -> Feed:
    """Change a feed's name, interval or kind (arguments left as None are kept)."""
    feed = get_feed(session, feed_id)
    if name is not None:
        name = " ".join(name.split())
        if not name:
            raise MonitorError("the feed name cannot be empty")
        if len(name) > 255:
            raise MonitorError("feed names have at most 255 characters")
        feed.name = name
    if interval_minutes is not None:
        if interval_minutes < 1:
            raise MonitorError("the interval must be at least one minute")
        if interval_minutes > MAX_INTERVAL_MINUTES:
            raise MonitorError(f"the interval can be at most {MAX_INTERVAL_MINUTES} minutes (one week)")
        feed.interval_minutes = interval_minutes
    if kind is not None:
        if kind not in KINDS:
            raise MonitorError(f"unknown feed kind {kind!r}; choose news or official")
        feed.kind = kind
    session.flush()
    return feed


MAX_INTERVAL_MINUTES = 7 * 24 * 60


def items_per_day(session: Session, days: int = 7, now: datetime | None = None) -> dict[int, list[int]]:
    """Items collected per feed and UTC day for the last ``days`` days (oldest first), in one GROUP BY query.

    Feeds without items in the window are absent from the result.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    first_day = (now - timedelta(days=days - 1)).date()
    since = datetime.combine(first_day, time.min, tzinfo=UTC)
    dialect = session.get_bind().dialect.name
    day = (func.date(Item.fetched_at) if dialect == "sqlite"
           else cast(func.timezone("UTC", Item.fetched_at), Date) if dialect == "postgresql"
           else cast(Item.fetched_at, Date))
    rows = session.execute(
        select(Item.feed_id, day.label("day"), func.count(Item.id))
        .where(Item.fetched_at >= since)
        .group_by(Item.feed_id, day)
    )
    result: dict[int, list[int]] = {}
    for feed_id, day_value, count in rows:
        day_date = day_value if isinstance(day_value, date) else date.fromisoformat(str(day_value)[:10])
        index = (day_date - first_day).days
        if 0 <= index < days:
            result.setdefault(feed_id, [0] * days)[index] += int(count)
    return result


# -- OPML ------------------------------------------------------------------------------------------------

OPML_MAX_OUTLINES = 5000


@dataclass
class OpmlReport:
    """What an OPML import did: feeds added, URLs already present, outlines that could not be used."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # "title or URL: reason"


@dataclass(frozen=True)
class OpmlOutline:
    url: str
    title: str | None
    kind: str


def parse_opml(data: bytes) -> tuple[list[OpmlOutline], list[str]]:
    """Feed outlines of an OPML document and the reasons some outlines were unusable.

    Parsed with defusedxml: a document type declaration (entity expansion, external entities) is refused
    with a MonitorError, as is anything that is not well-formed OPML.
    """
    import defusedxml
    from defusedxml import ElementTree as SafeET

    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise MonitorError("the OPML file was refused: it declares a document type or entities, which "
                           "OPML never needs (this is how entity-expansion attacks work)") from exc
    except SafeET.ParseError as exc:
        raise MonitorError(f"the file is not well-formed XML: {exc}") from exc
    if _local(root.tag) != "opml":
        raise MonitorError("the file is not OPML (its root element is not <opml>)")
    body = next((el for el in root if _local(el.tag) == "body"), None)
    if body is None:
        raise MonitorError("the OPML file has no <body>")
    outlines: list[OpmlOutline] = []
    invalid: list[str] = []
    for element in body.iter():
        if _local(element.tag) != "outline":
            continue
        attrs = {_local(k).lower(): v for k, v in element.attrib.items()}
        title = (attrs.get("title") or attrs.get("text") or "").strip() or None
        url = (attrs.get("xmlurl") or "").strip()
        if not url:
            if len(element) == 0:  # a leaf without xmlUrl is not a feed (a folder has children)
                invalid.append(f"{title or '(untitled outline)'}: no xmlUrl")
            continue
        categories = {c.strip(" /").lower() for c in (attrs.get("category") or "").split(",")}
        kind = "official" if "official" in categories else "news"
        outlines.append(OpmlOutline(url=url, title=title, kind=kind))
        if len(outlines) > OPML_MAX_OUTLINES:
            raise MonitorError(f"the OPML file lists more than {OPML_MAX_OUTLINES} feeds")
    return outlines, invalid


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def import_opml(session: Session, data: bytes, *, interval_minutes: int = 30) -> OpmlReport:
    """Add the feeds of an OPML file; URLs already present are skipped, bad outlines reported as invalid."""
    outlines, invalid = parse_opml(data)
    report = OpmlReport(invalid=list(invalid))
    existing = set(session.scalars(select(Feed.url)))
    for outline in outlines:
        if outline.url in existing:
            report.skipped.append(outline.url)
            continue
        try:  # add_feed checks everything before it writes, so a refused outline leaves nothing behind
            add_feed(session, outline.url, name=(outline.title or "")[:255] or None, kind=outline.kind,
                     interval_minutes=interval_minutes)
        except (MonitorError, ValueError) as err:  # urlsplit raises ValueError for a malformed host
            report.invalid.append(f"{outline.title or outline.url}: {err}")
            continue
        existing.add(outline.url)
        report.added.append(outline.url)
    return report


def export_opml(feeds: list[Feed], title: str = "Statement monitor feeds") -> bytes:
    """An OPML 2.0 document of ``feeds``; official feeds carry ``category="official"``."""
    from xml.etree import ElementTree as ET  # building only; nothing is parsed here

    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC), usegmt=True)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.url}
        if feed.kind == "official":
            attrs["category"] = "official"
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
