"""Canonical article URLs and dedup keys (pure functions, no I/O)."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Exact query keys dropped as click/campaign tracking (compared lower-cased).
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
    "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi", "hsctatrk", "vero_id", "vero_conv",
    "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid", "ref", "ref_src", "ref_url",
    "_ga", "_gl", "spm", "scid", "cmpid", "wt.mc_id", "at_medium", "at_campaign", "ocid", "ncid", "sr_share",
    "fb_action_ids", "fb_action_types", "fb_source", "fb_ref", "action_object_map",
    "action_type_map", "action_ref_map", "zanpid", "guccounter", "guce_referrer", "guce_referrer_sig",
})
#: Query key prefixes dropped as tracking (``utm_source``, ``utm_medium``, ``pk_campaign`` ...).
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_", "itm_", "__hs", "_bta_")


def _is_tracking(key: str) -> bool:
    k = key.strip().lower()
    return k in TRACKING_PARAMS or k.startswith(TRACKING_PREFIXES)


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """Return a normalised http(s) URL, or None when ``url`` is empty, unparsable or not http/https.

    Resolves against ``base``, lower-cases scheme and host, drops userinfo, the default port, the
    fragment and tracking parameters, and sorts the remaining query parameters.
    """
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if not url:
        return None
    try:
        if base:
            url = urljoin(base.strip(), url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            return None
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return None
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    host = host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path or "/"
    path = quote(path, safe="/%:@!$&'()*+,;=-._~")
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    pairs.sort()
    query = urlencode(pairs, quote_via=quote, safe="/:@!$'()*,;-._~")
    return urlunsplit((scheme, netloc, path, query, ""))


def url_key(url: str) -> str:
    """SHA-256 hex of the canonical URL (of the stripped raw string when it has no canonical form)."""
    return key_of_canonical(canonical_url(url) or (url or "").strip())


def key_of_canonical(canonical: str) -> str:
    """``url_key`` of a URL already in canonical form (``canonical_url`` is idempotent: a canonical URL is
    its own canonical form), without parsing it a second time."""
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
