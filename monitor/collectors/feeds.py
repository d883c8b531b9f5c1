"""Parse fetched feed bytes (RSS 0.9x/1.0/2.0, Atom, JSON Feed) into cleaned :class:`ParsedFeed` records.

Never takes a URL to open: ``url`` is only the base for relative links. XML is screened with defusedxml
(no entity declarations, no external references) before feedparser sees it; feedparser gets a byte
stream so it can never read a local path or the network.

Dates: feedparser's UTC ``*_parsed`` values, else dateutil on the raw string (naive = UTC). A date more
than one day in the future is treated as bogus and dropped (``None``, ``date_flag="future"``), as is an
unparsable or absurd one (``"impossible"``) or none at all (``"missing"``), so callers fall back to the
time the item was first seen rather than pinning an item to the top of every list; the raw string is kept
in ``published_raw``. ``published_at`` falls back to the entry's updated date when the feed gives no
publication date (RSS 1.0 ``dc:date``). Language: the feed's or entry's own, else guessed from the text.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import xml.sax
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin

import defusedxml
import defusedxml.sax
import feedparser
from dateutil import parser as date_parser

from monitor.collectors.identity import canonical_url, key_of_canonical
from monitor.collectors.language import guess_language
from monitor.collectors.sanitize import clean_html, clean_html_and_text, html_to_text, normalize_text
from monitor.errors import ParseError
from monitor.records import ParsedFeed, ParsedItem

MAX_ITEMS = 2000
MAX_GUID_LENGTH = 512
FUTURE_TOLERANCE = timedelta(days=1)
EARLIEST_YEAR = 1900  # an earlier "publication" date is a placeholder, not a date
#: Fewer words of title + text than this and the normalised-text hash is not used to merge outlets' items
STORY_MIN_WORDS = 8
NOT_A_FEED_HTML = "not a feed: the server returned an HTML page"
ENTITY_REFUSED = "feed refused: XML entity expansion is not allowed"

_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
_FEED_ROOTS = {"rss", "feed", "rdf", "channel"}
_PROLOG = re.compile(r"^(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE\s+(?P<doctype>[^\s>\[]+)[^>\[]*(?:\[.*?\]\s*)?>)*",
                     re.IGNORECASE | re.DOTALL)
_ROOT = re.compile(r"<\s*(?:[\w.-]+:)?(?P<name>[\w.-]+)")
_LANG = re.compile(r"^[a-z]{1,8}(?:-[a-z0-9]{1,8})*$")


# ------------------------------------------------------------------------------------------------ entry

def _memoise_feedparser_base_uri() -> None:
    """Memoise feedparser's ``make_safe_absolute_uri`` as its element handler calls it (a pure function of
    two strings and a constant scheme list). With a base URI (the feed URL, always given) feedparser joins
    the base with itself at every start tag, ~15% of its time on a typical feed; the results are the same.
    Installed only in parse worker processes, so ``feedparser`` elsewhere in the process stays as shipped."""
    import functools

    import feedparser.mixin
    import feedparser.urls

    original = getattr(feedparser.urls, "make_safe_absolute_uri", None)
    if original is not None and getattr(feedparser.mixin, "make_safe_absolute_uri", None) is original:
        cached = functools.lru_cache(maxsize=512)(original)

        def make_safe_absolute_uri(base: Any, rel: Any = None) -> Any:
            try:
                return cached(base, rel)
            except TypeError:  # an unhashable argument: not memoised
                return original(base, rel)

        feedparser.mixin.make_safe_absolute_uri = make_safe_absolute_uri


def prepare_worker(poll_seconds: float = 1.0) -> None:
    """Initialiser of a parse worker process: warm the parser's imports, and exit when the parent process
    is gone (a collector killed with SIGKILL cannot stop its workers, and they must not linger)."""
    import os
    import threading
    import time

    _memoise_feedparser_base_uri()
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def parse_feed(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse feed ``body`` (already fetched) into a ParsedFeed; raise ParseError when it is not a usable
    feed (empty, HTML, not well-formed, entity tricks), never returning partial results."""
    if isinstance(body, str):  # tolerated; feeds normally arrive as bytes
        body = body.encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    head = _sniff(body)
    if not head.strip():
        raise ParseError("not a feed: the server returned an empty response")
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if head.startswith("{") or (content_type.endswith("json") and not head.startswith("<")):
        return _parse_json_feed(body, url)
    root = _root_name(head)
    if root == "html" or (root not in _FEED_ROOTS and "html" in content_type):
        raise ParseError(NOT_A_FEED_HTML)
    if not head.startswith("<"):
        raise ParseError("not a feed: the response is neither XML nor JSON")
    _screen_xml(body)
    return _parse_xml_feed(body, headers, url, root)


def _sniff(body: bytes) -> str:
    """First few KB as text (BOM honoured, else latin-1 so ASCII markup survives), leading space stripped."""
    chunk = body[:8192]
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if chunk.startswith(bom):
            return chunk[len(bom):].decode(codec, "ignore").lstrip()
    if chunk[:2] in (b"<\x00", b"\x00<"):
        return chunk.decode("utf-16-le" if chunk[0:1] == b"<" else "utf-16-be", "ignore").lstrip()
    return chunk.decode("latin-1").lstrip()


def _root_name(head: str) -> str | None:
    prolog = _PROLOG.match(head)
    if prolog and (prolog.group("doctype") or "").lower() == "html":
        return "html"
    rest = head[prolog.end():] if prolog else head
    match = _ROOT.match(rest)
    return match.group("name").lower() if match else None


def _screen_xml(body: bytes) -> None:
    """Refuse DTD entity declarations and external references (billion laughs, XXE) before feedparser."""
    try:
        defusedxml.sax.parseString(body, xml.sax.ContentHandler(), forbid_dtd=False, forbid_entities=True,
                                   forbid_external=True)
    except defusedxml.EntitiesForbidden:
        raise ParseError(ENTITY_REFUSED) from None
    except (defusedxml.ExternalReferenceForbidden, defusedxml.NotSupportedError):
        raise ParseError("feed refused: external XML references are not allowed") from None
    except (xml.sax.SAXException, ValueError, LookupError):
        # Well-formedness is judged by feedparser after its encoding repair; but an entity declaration
        # must never slip through because expat stopped early (for example on an unknown encoding).
        if re.search(rb"<!\x00?E\x00?N\x00?T\x00?I\x00?T\x00?Y", body[: 1 << 20]):
            raise ParseError(ENTITY_REFUSED) from None


# -------------------------------------------------------------------------------------------------- XML

def _parse_xml_feed(body: bytes, headers: dict[str, str], url: str, root: str | None) -> ParsedFeed:
    fp_headers = dict(headers)
    location = headers.get("content-location")
    fp_headers["content-location"] = urljoin(url, location) if location else url
    # A stream, never bytes/str: feedparser would treat those as a path or URL to open. Its sanitiser and
    # URI resolver are off: clean_html() does both (resolving against each content's xml:base).
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=fp_headers, sanitize_html=False,
                                  resolve_relative_uris=False)
    except Exception as exc:  # feedparser should not raise, but hostile input must not escape as a crash
        raise ParseError(f"feed could not be parsed ({type(exc).__name__})") from None
    entries = list(parsed.get("entries") or [])
    version = parsed.get("version") or None
    warnings: list[str] = []
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        fatal, message = _classify_bozo(exc, headers.get("content-type", ""))
        if fatal or not entries and isinstance(exc, xml.sax.SAXException):
            raise ParseError(message)
        if not (isinstance(exc, feedparser.NonXMLContentType) and not headers.get("content-type")):
            warnings.append(message)
    if not version:
        if root in ("html", None) or "<html" in _sniff(body)[:2048].lower():
            raise ParseError(NOT_A_FEED_HTML)
        raise ParseError(f"not a feed: unrecognised XML document (root element <{root}>)")
    feed_info = parsed.get("feed") or {}
    feed_language = _language(feed_info.get("language"))
    items = _build_items((_xml_item(e, url, feed_language) for e in entries), warnings)
    return ParsedFeed(title=_detail_text(feed_info, "title") or None,
                      link=canonical_url(feed_info.get("link"), url),
                      items=items, warnings=warnings, version=version)


def _classify_bozo(exc: Any, content_type: str) -> tuple[bool, str]:
    """(fatal, plain message) for feedparser's bozo exception."""
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return False, f"character encoding problem, repaired: {exc}"
    if isinstance(exc, feedparser.NonXMLContentType):
        return False, f"feed is served with a non-XML content type ({content_type or 'none'})"
    if isinstance(exc, feedparser.CharacterEncodingUnknown):
        return True, "feed refused: its character encoding could not be determined"
    if isinstance(exc, xml.sax.SAXParseException):
        detail = exc.getMessage()
        if "undefined entity" in detail:
            return False, "feed uses undeclared entities (such as &nbsp;); parsed leniently"
        where = f" at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        return True, f"feed is not well-formed XML ({detail}{where}); nothing was stored"
    if isinstance(exc, xml.sax.SAXException):
        return True, f"feed is not well-formed XML ({exc}); nothing was stored"
    return False, f"feed has a recoverable problem: {exc}"


def _getter(node: Any) -> Any:
    """``dict.get`` for dicts (feedparser's FeedParserDict.get is ~10x slower: it maps legacy key names, and
    the keys read here are never such names), else the mapping's own ``get``."""
    return dict.get if isinstance(node, dict) else type(node).get


def _detail_text(node: Mapping[str, Any], key: str) -> str:
    """Single-line clean text of a feedparser text construct (``title``, ``author`` ...)."""
    get = _getter(node)
    value = get(node, key)
    if not isinstance(value, str) or not value:
        return ""
    detail = get(node, f"{key}_detail") or {}
    kind = str(_getter(detail)(detail, "type", "")).lower()
    if kind in _HTML_TYPES or "<" in value and kind != "text/plain":
        return normalize_text(html_to_text(value), single_line=True)
    return normalize_text(value, single_line=True)


def _pick_content(entry: Mapping[str, Any]) -> tuple[str, str, str | None, str | None]:
    """(value, type, base, language) of the richest body: HTML content, else any content, else summary."""
    get = _getter(entry)
    contents = [c for c in get(entry, "content") or [] if isinstance(_getter(c)(c, "value"), str)
                and _getter(c)(c, "value")]
    chosen = next((c for c in contents if str(_getter(c)(c, "type", "")).lower() in _HTML_TYPES), None)
    chosen = chosen or (contents[0] if contents else get(entry, "summary_detail"))
    if not chosen:
        return "", "text/plain", None, None
    cget = _getter(chosen)
    if not cget(chosen, "value"):
        return "", "text/plain", None, None
    return str(cget(chosen, "value")), str(cget(chosen, "type") or "text/html").lower(), cget(chosen, "base"), \
        cget(chosen, "language")


def _as_html_and_text(value: str, kind: str, base: str) -> tuple[str, str]:
    if not value:
        return "", ""
    if kind in _HTML_TYPES or kind == "":
        return clean_html_and_text(value, base)
    text = normalize_text(value)
    return clean_html("".join(f"<p>{html.escape(line)}</p>" for line in text.split("\n")), base), text


def _xml_item(entry: Mapping[str, Any], url: str, feed_language: str | None) -> dict[str, Any]:
    value, kind, base, content_language = _pick_content(entry)
    content_html, content_text = _as_html_and_text(value, kind, base or url)
    get = _getter(entry)
    summary_detail = get(entry, "summary_detail") or {}
    summary = get(entry, "summary")
    summary = summary if isinstance(summary, str) else ""
    if summary and summary == value:
        summary_text = content_text
    elif summary and str(_getter(summary_detail)(summary_detail, "type", "text/html")).lower() in _HTML_TYPES:
        summary_text = html_to_text(summary)
    else:
        summary_text = normalize_text(summary or "")
    raw = dict.get  # plain dict access: FeedParserDict maps missing "updated" to "published"
    published, published_raw, date_flag = _pick_date([
        (raw(entry, "published_parsed"), raw(entry, "published")),
        (raw(entry, "created_parsed"), raw(entry, "created")),
        (raw(entry, "updated_parsed"), raw(entry, "updated"))])
    updated = _to_datetime(raw(entry, "updated_parsed"), raw(entry, "updated"))
    title_detail = get(entry, "title_detail") or {}
    language = (_language(content_language) or _language(_getter(title_detail)(title_detail, "language"))
                or _language(get(entry, "language")) or feed_language)
    entry_id, link = get(entry, "id"), get(entry, "link")
    return {
        "id": entry_id if isinstance(entry_id, str) else None,
        "link": link if isinstance(link, str) else None,
        "base": url,
        "title": _detail_text(entry, "title"),
        "summary_text": summary_text,
        "content_text": content_text,
        "content_html": content_html,
        "author": _detail_text(entry, "author") or None,
        "published_at": published,
        "published_raw": published_raw,
        "date_flag": date_flag,
        "updated_at": updated,
        "language": language,
    }


# ------------------------------------------------------------------------------------------------- JSON

def _parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ParseError("not a feed: the response is not valid JSON") from None
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str) or "jsonfeed.org/version/" not in version:
        raise ParseError("not a feed: the JSON document is not a JSON Feed (no jsonfeed.org version)")
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        raise ParseError("not a feed: the JSON Feed has no items list")
    warnings: list[str] = []
    feed_language = _language(data.get("language"))
    base = _str(data.get("home_page_url")) or url
    items = _build_items((_json_item(i, url, base, feed_language) for i in raw_items if isinstance(i, dict)),
                         warnings)
    return ParsedFeed(title=normalize_text(_str(data.get("title")), single_line=True) or None,
                      link=canonical_url(_str(data.get("home_page_url")), url), items=items, warnings=warnings,
                      version="json" + version.rstrip("/").rsplit("/", 1)[-1].replace(".", ""))


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _json_item(item: Mapping[str, Any], url: str, base: str, feed_language: str | None) -> dict[str, Any]:
    content_html_raw = _str(item.get("content_html"))
    content_text_raw = _str(item.get("content_text"))
    summary = _str(item.get("summary"))
    if content_html_raw:
        content_html, content_text = clean_html_and_text(content_html_raw, base)
    elif content_text_raw:
        content_html, content_text = _as_html_and_text(content_text_raw, "text/plain", base)
    else:
        content_html, content_text = _as_html_and_text(summary, "text/plain", base)
    authors = item.get("authors") if isinstance(item.get("authors"), list) else [item.get("author")]
    names = [_str(a.get("name")) for a in authors if isinstance(a, dict) and _str(a.get("name"))]
    published, published_raw, date_flag = _pick_date([(None, _str(item.get("date_published"))),
                                                       (None, _str(item.get("date_modified")))])
    updated = _to_datetime(None, _str(item.get("date_modified")))
    return {
        "id": _str(item.get("id")) or None,
        "link": _str(item.get("url")) or _str(item.get("external_url")) or None,
        "base": base,
        "title": normalize_text(html_to_text(_str(item.get("title"))), single_line=True),
        "summary_text": normalize_text(summary),
        "content_text": content_text,
        "content_html": content_html,
        "author": normalize_text(", ".join(names), single_line=True)[:300] or None,
        "published_at": published,
        "published_raw": published_raw,
        "date_flag": date_flag,
        "updated_at": updated,
        "language": _language(item.get("language")) or feed_language,
    }


# ----------------------------------------------------------------------------------------------- common

def _build_items(raw_items: Any, warnings: list[str]) -> list[ParsedItem]:
    """Turn field dicts into ParsedItems: guid/url/hash, drop empty and duplicate entries, cap the count."""
    items: list[ParsedItem] = []
    seen: set[str] = set()
    empty = duplicates = 0
    for raw in raw_items:
        if len(items) >= MAX_ITEMS:
            warnings.append(f"feed has more than {MAX_ITEMS} entries; only the first {MAX_ITEMS} were kept")
            break
        link = canonical_url(raw["link"], raw["base"])
        title, text = raw["title"], raw["content_text"] or raw["summary_text"]
        if not (title or text or link):
            empty += 1
            continue
        flat_text = normalize_text(text, single_line=True)
        content_hash = hashlib.sha256(f"{title.casefold()}\n{flat_text.casefold()}".encode()).hexdigest()
        guid = normalize_text(raw["id"] or "", single_line=True) or link or f"sha256:{content_hash}"
        if len(guid) > MAX_GUID_LENGTH:
            guid = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
        if guid in seen:
            duplicates += 1
            continue
        seen.add(guid)
        # = normalize_text(f"{title}\n{text}", single_line=True): NFC never composes across the line break
        flat = " ".join(f"{normalize_text(title, single_line=True)} {flat_text}".split())
        story_key = content_hash if len(flat.split()) >= STORY_MIN_WORDS else None
        items.append(ParsedItem(guid=guid, url=link, title=title, summary_text=raw["summary_text"],
                                content_text=raw["content_text"], content_html=raw["content_html"],
                                author=raw["author"], published_at=raw["published_at"],
                                updated_at=raw["updated_at"], content_hash=content_hash,
                                language=raw["language"] or guess_language(flat[:4000]),
                                published_raw=raw.get("published_raw"), date_flag=raw.get("date_flag"),
                                story_key=story_key,
                                url_key=key_of_canonical(link) if link else None))
    if empty:
        warnings.append(f"{empty} entr{'y' if empty == 1 else 'ies'} without title, text or link skipped")
    if duplicates:
        warnings.append(f"{duplicates} entr{'y' if duplicates == 1 else 'ies'} with a repeated id skipped")
    return items


def _pick_date(candidates: list[tuple[Any, Any]], now: datetime | None = None
               ) -> tuple[datetime | None, str | None, str | None]:
    """(date, raw string, flag) from the first (parsed, raw) candidate that gives a usable date.

    When none does: the raw string of the first candidate that had one, and the flag ``future`` or
    ``impossible`` for it; ``missing`` when no candidate had anything.
    """
    first: tuple[str | None, str] | None = None
    for parsed, raw in candidates:
        text = normalize_text(raw, single_line=True)[:255] if isinstance(raw, str) else ""
        if not parsed and not text:
            continue
        value, flag = _date_and_flag(parsed, raw, now)
        if value is not None:
            return value, text or None, None
        if first is None:
            first = (text or None, flag or "impossible")
    if first is None:
        return None, None, "missing"
    return None, first[0], first[1]


def _to_datetime(parsed: Any, raw: Any, now: datetime | None = None) -> datetime | None:
    """Aware UTC datetime from feedparser's struct_time, else from the raw string; None if absent,
    invalid or more than FUTURE_TOLERANCE in the future."""
    return _date_and_flag(parsed, raw, now)[0]


def _date_and_flag(parsed: Any, raw: Any, now: datetime | None = None) -> tuple[datetime | None, str | None]:
    value: datetime | None = None
    if parsed:
        try:
            value = datetime(*parsed[:6], tzinfo=timezone.utc)
        except (TypeError, ValueError, OverflowError):
            value = None
    if value is None and isinstance(raw, str) and raw.strip() and len(raw) <= 100:
        try:
            value = date_parser.parse(raw.strip())
        except (ValueError, OverflowError, TypeError, date_parser.ParserError):
            value = None
        if value is not None:
            try:
                value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(
                    timezone.utc)
            except (ValueError, OverflowError):
                value = None
    if value is None:
        return None, ("impossible" if parsed or (isinstance(raw, str) and raw.strip()) else None)
    if value.year < EARLIEST_YEAR:
        return None, "impossible"
    if value > (now or datetime.now(timezone.utc)) + FUTURE_TOLERANCE:
        return None, "future"
    return value, None


def _language(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().replace("_", "-").lower()
    return value if value and len(value) <= 35 and _LANG.match(value) else None
