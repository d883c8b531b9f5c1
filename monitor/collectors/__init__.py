"""Feed collectors: fetch bytes safely (``http``/``guard``), parse them (``feeds``), clean them (``sanitize``/``identity``)."""

from __future__ import annotations

from monitor.collectors.feeds import parse_feed
from monitor.collectors.guard import AddressGuard
from monitor.collectors.http import FetchLimits, fetch
from monitor.collectors.identity import canonical_url, url_key
from monitor.collectors.sanitize import clean_html, html_to_text

__all__ = [
    "AddressGuard",
    "FetchLimits",
    "canonical_url",
    "clean_html",
    "fetch",
    "html_to_text",
    "parse_feed",
    "url_key",
]
