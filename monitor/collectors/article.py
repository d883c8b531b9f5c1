"""Full-article extraction for feeds that carry only summaries: main text of a fetched web page.

Uses trafilatura (boilerplate removal) on bytes already fetched by :func:`monitor.collectors.http.fetch`, so
the same size/time limits and SSRF guard apply; this module does no I/O itself. The text is cleaned like
feed text (NFC, no control characters) and the HTML is rebuilt from it and sanitised with nh3.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from monitor.collectors.sanitize import clean_html, normalize_text
from monitor.errors import ParseError

#: Shorter extractions are treated as failures (a cookie wall, a paywall teaser, a login page).
MIN_CHARS = 200


def extract_article(body: bytes, headers: Mapping[str, str], url: str) -> tuple[str, str]:
    """(plain text, sanitised HTML) of the main article of ``body``; ParseError when there is none."""
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "").split(";")[0].strip().lower()
    if content_type and "html" not in content_type:
        raise ParseError(f"the article link is not a web page ({content_type})")
    try:
        import trafilatura
    except ImportError:  # pragma: no cover - a declared dependency
        raise ParseError("full-text extraction needs the trafilatura package") from None
    try:
        extracted = trafilatura.extract(body, url=url, include_comments=False, include_tables=False,
                                        favor_precision=True, deduplicate=True)
    except Exception as exc:  # malformed markup must never escape as a crash
        raise ParseError(f"the article could not be extracted ({type(exc).__name__})") from None
    text = normalize_text(extracted or "")
    if len(text) < MIN_CHARS:
        raise ParseError("no article text found on the page")
    markup = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in text.split("\n"))
    return text, clean_html(markup, url)
