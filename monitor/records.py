"""Frozen dataclasses that cross module borders (collectors -> pipeline -> storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FetchResult:
    """Outcome of one HTTP fetch of a feed URL.

    ``not_modified`` is True for a 304 answer (``body`` is then empty). ``permanent_url`` is set when the
    server permanently redirected (301/308) and the stored feed URL should change.
    """

    url: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    permanent_url: str | None = None
    max_age: float | None = None


@dataclass(frozen=True)
class ParsedItem:
    """One feed entry, cleaned: text fields are plain text (NFC, no control characters), ``content_html`` is
    sanitised HTML."""

    guid: str
    url: str | None
    title: str
    summary_text: str
    content_text: str
    content_html: str
    author: str | None
    published_at: datetime | None
    updated_at: datetime | None
    content_hash: str
    language: str | None = None
    #: the publication date string exactly as the feed gave it (cleaned of control characters), if any
    published_raw: str | None = None
    #: why ``published_at`` is None: ``missing`` (no date), ``impossible`` (unparsable/absurd), ``future``
    #: (more than a day ahead); the store then uses the fetch time
    date_flag: str | None = None
    #: hash of the normalised title + text when there is enough text to identify a story across outlets
    story_key: str | None = None
    #: :func:`~monitor.collectors.identity.url_key` of ``url`` (computed by the parser, so in its worker
    #: process); None when there is no URL, or for an item built without it (the store then computes it)
    url_key: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed document; ``warnings`` lists recoverable problems to show on the feed."""

    title: str | None
    link: str | None
    items: list[ParsedItem]
    warnings: list[str] = field(default_factory=list)
    version: str | None = None
