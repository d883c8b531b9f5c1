"""HTML cleaning for stored content (nh3) and HTML-to-text conversion for analysis."""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from functools import lru_cache
from urllib.parse import urljoin

import nh3

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn", "div", "dl", "dt",
    "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "time", "tr", "u", "ul",
})
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite"})
#: Elements whose content is dropped entirely, not just their tags.
_DROP_CONTENT = frozenset({"script", "style", "template", "noscript", "iframe", "object", "embed", "svg",
                           "math", "textarea", "select", "title", "head"})
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")


_URL_EDGE = "".join(chr(c) for c in range(0x21))  # browsers trim C0 controls and space at both ends
_URL_INNER = re.compile(r"[\t\n\r]")  # ... and drop tabs/newlines anywhere (``java\tscript:``)
_HAS_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


def _safe_url(value: str, base_url: str | None) -> str | None:
    """Absolute http(s)/mailto URL for an attribute value, or None to drop the attribute.

    The value is first normalised the way browsers do, so any explicit scheme other than
    http/https/mailto is caught and dropped; relative URLs are resolved against ``base_url``."""
    value = _URL_INNER.sub("", value.strip(_URL_EDGE))
    if not value:
        return None
    explicit = _HAS_SCHEME.match(value)
    if explicit:
        return value if explicit.group(1).lower() in URL_SCHEMES else None
    return _resolve(base_url, value) if base_url else value


@lru_cache(maxsize=4096)
def _resolve(base_url: str, value: str) -> str | None:
    try:
        value = urljoin(base_url, value)
    except ValueError:
        return None
    explicit = _HAS_SCHEME.match(value)
    return value if explicit and explicit.group(1).lower() in URL_SCHEMES else None


# nh3's arguments, built once (nh3 only reads them)
_NH3_TAGS = set(ALLOWED_TAGS)
_NH3_DROP_CONTENT = set(_DROP_CONTENT)
_NH3_ATTRIBUTES = {k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()}
_NH3_URL_SCHEMES = set(URL_SCHEMES)
#: Without any of these names in the markup no URL attribute can survive, and the (Python, per attribute)
#: filter is left out; attribute names cannot be written with character references, so this cannot miss one.
_URL_ATTRIBUTE_HINT = re.compile("|".join(sorted(_URL_ATTRIBUTES)), re.IGNORECASE)
#: The base URL of the ``clean_html`` call running on this thread, for the URL attribute filter below.
_BASE = threading.local()


def _url_attribute_filter(element: str, attribute: str, value: str) -> str | None:
    if attribute in _URL_ATTRIBUTES:
        return _safe_url(value, getattr(_BASE, "url", None))
    return value


# nh3 cleaners built once: nh3.clean() with options rebuilds its sanitiser (every set and map converted)
# on each call, which costs several times the cleaning of a typical item.
_CLEAN_OPTIONS: dict[str, object] = {
    "tags": _NH3_TAGS, "clean_content_tags": _NH3_DROP_CONTENT, "attributes": _NH3_ATTRIBUTES,
    "url_schemes": _NH3_URL_SCHEMES, "strip_comments": True, "link_rel": "noopener noreferrer"}
_CLEANER = nh3.Cleaner(**_CLEAN_OPTIONS)
_CLEANER_WITH_URLS = nh3.Cleaner(**_CLEAN_OPTIONS, attribute_filter=_url_attribute_filter)


def clean_html(html_text: str, base_url: str | None = None) -> str:
    """Sanitise untrusted HTML: conservative tag/attribute allow-list, no scripts, styles, classes or
    event handlers, only http/https/mailto links (relative ones resolved against ``base_url``), and
    ``rel="noopener noreferrer"`` on every link."""
    if not html_text:
        return ""
    source = _CONTROL_CHARS.sub("", html_text)
    if _too_deep(source):  # hostile nesting: keep the words, drop the markup
        text = normalize_text(_strip_tags(source))
        return "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in text.split("\n"))
    if _URL_ATTRIBUTE_HINT.search(source):
        _BASE.url = base_url  # read by the filter, which nh3 calls on this thread during clean()
        try:
            cleaned = _CLEANER_WITH_URLS.clean(source)
        finally:
            _BASE.url = None
    else:
        cleaned = _CLEANER.clean(source)
    # character references (``&#x1;``) come out of the parser decoded: strip the controls once more
    return _CONTROL_CHARS.sub("", cleaned).strip()


_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
})
#: Elements that never nest (void) or close their predecessor implicitly; ignored when measuring depth.
_FLAT_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "rb",
    "rt", "rp", "rtc", "a",
})
_SKIP_TAGS = _DROP_CONTENT | {"frameset", "applet", "audio", "video", "canvas", "button", "form", "select"}
_NH3_BLOCK_TAGS = set(_BLOCK_TAGS)
_NH3_SKIP_TAGS = set(_SKIP_TAGS)
_SKELETON_CLEANER = nh3.Cleaner(tags=_NH3_BLOCK_TAGS, attributes={}, clean_content_tags=_NH3_SKIP_TAGS,
                                strip_comments=True, link_rel=None, generic_attribute_prefixes=set())
#: Deeper markup is treated as hostile: html5ever's cost grows with depth x tags (seconds at ~20k levels).
MAX_DEPTH = 256
_TAG_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)")
_OPEN_NESTING = re.compile(r"<(?!(?:%s)(?![a-zA-Z0-9-]))[a-zA-Z]" % "|".join(sorted(_FLAT_TAGS)), re.IGNORECASE)
_SPACES = re.compile(r"[^\S\n]+")
_TAG_RE = re.compile(r"<[^<>]*>?")
_BREAK = "\ue000"  # private-use marker for a block boundary while tags are stripped


def _too_deep(html_text: str, limit: int = MAX_DEPTH) -> bool:
    """Cheap linear estimate of element nesting; True when it exceeds ``limit``.

    Unmatched end tags make html5ever walk the whole open-element stack, so depth x tags is the cost to
    bound. ``<x/>`` counts as an open tag, as HTML parsers treat it so for non-void elements.
    """
    if html_text.count("<") <= limit or len(_OPEN_NESTING.findall(html_text)) <= limit:
        return False
    depth = 0
    for match in _TAG_TOKEN.finditer(html_text):
        if match.group(2).lower() in _FLAT_TAGS:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > limit:
                return True
    return False


def _strip_tags(html_text: str) -> str:
    """Last-resort linear tag strip for hostile markup (no parser involved)."""
    return html.unescape(_TAG_RE.sub(" ", html_text))


def normalize_text(text: str, *, single_line: bool = False) -> str:
    """NFC-normalise, drop control characters and collapse whitespace (keep line breaks unless
    ``single_line``); blank lines are removed."""
    text = unicodedata.normalize("NFC", _CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))
    text = text.replace("\xa0", " ")
    if single_line:
        return " ".join(text.split())
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


#: Tags after which the text of the sanitised HTML is not the text ``html_to_text`` gives: elements whose
#: content the text drops but the HTML keeps (``_SKIP_TAGS - _DROP_CONTENT``), block elements the HTML
#: strips (their line break would be lost), and ``isindex`` (which old parsers expanded into a form).
_TEXT_DIFFERS = re.compile(r"</?(?:%s)(?![a-zA-Z0-9])" % "|".join(sorted(
    (_SKIP_TAGS - _DROP_CONTENT) | (_BLOCK_TAGS - ALLOWED_TAGS) | {"isindex"})), re.IGNORECASE)
#: A tag of nh3's serialisation: attribute values are always double-quoted and may hold a literal ">".
_CLEAN_TAG = re.compile(r'<(/?)([a-zA-Z][a-zA-Z0-9]*)(?:[^>"]|"[^"]*")*>')


def _block_break(match: re.Match[str]) -> str:
    return _BREAK if match.group(2).lower() in _BLOCK_TAGS else ""


def clean_html_and_text(html_text: str, base_url: str | None = None) -> tuple[str, str]:
    """``(clean_html(html_text, base_url), html_to_text(html_text))`` with one HTML parse instead of two
    where that gives the same result: the text is then read off the sanitised HTML (same parse tree; the
    tags it keeps are a subset of the text's, and the rest carry no text)."""
    if not html_text:
        return "", ""
    source = _CONTROL_CHARS.sub("", html_text)
    if _BREAK in source or _TEXT_DIFFERS.search(source) or _too_deep(source):
        return clean_html(html_text, base_url), html_to_text(html_text)
    cleaned = clean_html(html_text, base_url)
    text = html.unescape(_CLEAN_TAG.sub(_block_break, cleaned)).replace(_BREAK, "\n")
    return cleaned, normalize_text(text)


def html_to_text(html_text: str) -> str:
    """Plain text of an HTML fragment: tags removed, entities unescaped, one line per paragraph/block,
    whitespace collapsed, NFC. Linear-time on hostile input and never raises."""
    if not html_text:
        return ""
    source = _CONTROL_CHARS.sub("", html_text).replace(_BREAK, "")
    if _too_deep(source):
        return normalize_text(_strip_tags(source))
    try:
        # html5ever does the tokenising; what comes back is well-formed markup with only block tags and
        # no attributes, and every literal "<" in text escaped, so stripping tags with a regex is exact.
        skeleton = _SKELETON_CLEANER.clean(source)
        text = html.unescape(_TAG_RE.sub(_BREAK, skeleton)).replace(_BREAK, "\n")
    except Exception:  # degrade rather than fail collection
        text = _strip_tags(source)
    return normalize_text(text)
