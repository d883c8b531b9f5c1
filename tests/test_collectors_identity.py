"""Pure helpers: canonical URLs, the address guard's policy, HTML cleaning and text extraction."""

from __future__ import annotations

import socket
import time

import pytest

from monitor.collectors.feeds import parse_feed
from monitor.collectors.guard import AddressGuard
from monitor.collectors.identity import canonical_url, key_of_canonical, url_key
from monitor.collectors.sanitize import clean_html, html_to_text
from monitor.errors import BlockedURLError, FetchError

# ------------------------------------------------------------------------------------------ canonical


@pytest.mark.parametrize("raw,expected", [
    ("https://Example.COM:443/a/b?utm_source=rss&utm_medium=feed&z=2&a=1#frag", "https://example.com/a/b?a=1&z=2"),
    ("HTTP://example.com:80", "http://example.com/"),
    ("http://example.com:8080/x?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ref=tw&UTM_Campaign=x", "http://example.com:8080/x"),
    ("https://user:pw@example.com/p", "https://example.com/p"),
    ("https://example.com/p?q=a%20b&empty=", "https://example.com/p?empty=&q=a%20b"),
    ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
    ("https://báo.vn/tin", "https://" + "báo.vn".encode("idna").decode() + "/tin"),
])
def test_canonical_url(raw: str, expected: str) -> None:
    assert canonical_url(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "javascript:alert(1)", "mailto:a@b.c", "ftp://x/y", "file:///etc/passwd",
                                 "http://", "https://example.com:99999/", "data:text/html,hi"])
def test_canonical_url_rejects(raw: str | None) -> None:
    assert canonical_url(raw) is None


def test_canonical_url_resolves_relative_and_keys_dedup() -> None:
    assert canonical_url("../b?x=1#y", "https://example.com/a/c/feed.xml") == "https://example.com/a/b?x=1"
    assert url_key("https://EXAMPLE.com/a?utm_source=x&b=1") == url_key("https://example.com/a?b=1#top")
    assert url_key("https://example.com/a") != url_key("https://example.com/b")
    assert len(url_key("not a url")) == 64


def test_canonical_urls_are_their_own_canonical_form_so_the_parser_keys_them_without_a_second_pass() -> None:
    """The parser keys items with ``key_of_canonical(link)``; that is ``url_key(link)`` only because
    ``canonical_url`` is idempotent. Random compositions of awkward parts (IDNA, IPv6, ports, userinfo, dot
    segments, escapes valid and not, tracking keys, blank and odd query pairs, controls) must keep it so."""
    import random

    pieces = ["http://", "HTTPS://", "http://user:pw@", "Ex.AMPLE.org", "b\u00fccher.de", "[::1]", "[2001:DB8::1]",
              ":80", ":443", ":8080", ".", "/", "//", "/a/../b", "/%7e", "/%zz", "/\u00e4", "/a b", "?", "&",
              "=", "utm_source=x", "UTM_Medium=y", "a=1", "b=%20", "c=+", "d", "=v", "%26=%3D", "k=v;w", "#frag",
              "\t", " ", "%", "ref=1", "x=\u00e4", "@", "'", "(", "~", "%2F", "..", "\x00", "%F0%9F", "a=%E2%82"]
    rng = random.Random(7)
    for _ in range(20000):
        raw = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 9)))
        base = rng.choice([None, "http://base.example/dir/page?q=1", "https://[::1]:8443/x/"])
        link = canonical_url(raw, base)
        if link is not None:
            assert canonical_url(link) == link, (raw, base)
            assert key_of_canonical(link) == url_key(link)


# ---------------------------------------------------------------------------------------------- guard

def _resolver(monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str]]) -> None:
    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in table[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.1.2.3:8080/", "http://[::1]/", "http://10.0.0.5/", "http://172.16.0.1/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://224.0.0.1/",
    "http://0.0.0.0/", "http://[::]/", "http://[::ffff:192.168.0.1]/", "http://100.64.0.1/", "http://240.0.0.1/",
    "http://[fd00::1]/", "http://[2002:7f00:1::]/",
])
def test_guard_blocks_non_public_addresses(url: str) -> None:
    with pytest.raises(BlockedURLError):
        AddressGuard().check_url(url)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "gopher://x/", "javascript:alert(1)", "file:///etc/passwd",
                                 "http:///nohost", "//example.com/x"])
def test_guard_blocks_schemes_and_malformed(url: str) -> None:
    with pytest.raises(BlockedURLError):
        AddressGuard().check_url(url)


def test_guard_resolution_and_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolver(monkeypatch, {"news.test": ["93.184.216.34"], "mixed.test": ["93.184.216.34", "10.0.0.1"],
                            "intranet.test": ["10.1.2.3"], "v6.test": ["2606:4700::1111"]})
    guard = AddressGuard()
    guard.check_url("https://news.test/rss")
    guard.check_url("https://v6.test/rss")
    with pytest.raises(BlockedURLError, match="10.0.0.1"):
        guard.check_url("https://mixed.test/rss")  # one bad address is enough
    with pytest.raises(BlockedURLError):
        guard.check_url("https://intranet.test/rss")
    AddressGuard(allow=["10.0.0.0/8"]).check_url("https://intranet.test/rss")
    AddressGuard(allow=["intranet.test"]).check_url("https://intranet.test/rss")
    AddressGuard(allow=["10.1.2.3"]).check_url("https://intranet.test/rss")
    with pytest.raises(FetchError, match="DNS lookup failed for missing.test") as info:
        guard.check_url("https://missing.test/")
    assert not isinstance(info.value, BlockedURLError)


def test_guard_files_only_when_allowed() -> None:
    with pytest.raises(BlockedURLError):
        AddressGuard().check_url("file:///tmp/feed.xml")
    AddressGuard(allow_files=True).check_url("file:///tmp/feed.xml")


# -------------------------------------------------------------------------------------------- sanitize

def test_clean_html_allow_list() -> None:
    dirty = ('<div style="x" class="c" id="i" onmouseover="x()"><h2>T</h2><p>a<b>b</b><script>s()</script>'
             '<style>p{}</style><a href="https://ok.example/" target="_blank" rel="opener">ok</a>'
             '<a href="mailto:x@y.z">m</a><a href=" javascript:x()">j</a><a href="java&#10;script:x()">j2</a>'
             '<a href="data:text/html;base64,PHNjcmlwdD4=">d</a><a href="vbscript:x">v</a>'
             '<img src="//cdn.example/i.png" srcset="x 1x"><svg><script>y()</script></svg><!-- c -->'
             '<form action="/x"><input name=a></form><object data="x"></object></p></div>')
    out = clean_html(dirty, "https://base.example/dir/page")
    for bad in ("style", "class", "id=", "onmouseover", "script", "javascript", "data:", "vbscript", "svg",
                "<!--", "form", "input", "object", "srcset", "target", "opener\""):
        assert bad not in out, (bad, out)
    assert '<a href="https://ok.example/" rel="noopener noreferrer">ok</a>' in out
    assert 'href="mailto:x@y.z"' in out and '<img src="https://cdn.example/i.png">' in out
    assert out.count("<a ") == 6  # links kept as text anchors, without the dangerous href


def test_html_to_text_paragraphs_and_hostile_input() -> None:
    assert html_to_text("<p>One&nbsp;&amp; <b>two</b></p><p>Three<br/>four</p><ul><li>a</li><li>b</li></ul>") \
        == "One & two\nThree\nfour\na\nb"
    assert html_to_text("<script>var x = '<p>no</p>';</script><style>p{}</style>ok") == "ok"
    assert html_to_text("Te\u0301st \x00\x07 &#0; &#x110000; <<<p>>>") .startswith("Tést")
    started = time.perf_counter()
    for hostile in ("<div>" * 50000, "<section><blockquote>" * 30000 + "x", "<a href='" * 50000, "<!--" * 50000,
                    "<" * 200000, "&amp;" * 50000, "<div x" * 50000):
        assert isinstance(html_to_text(hostile), str)
        assert isinstance(clean_html(hostile), str)
    assert time.perf_counter() - started < 5  # quadratic parsing would take minutes
    assert html_to_text("<div>" * 1000 + "deep <b>text</b>") == "deep text"
    assert clean_html("<div>" * 1000 + "deep <script>x</script>") == "<p>deep x</p>"


def test_xml_base_used_for_content_links() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry xml:base="https://cdn.example/posts/"><title>e</title><id>urn:1</id><link href="https://x.example/e"/>
<content type="html">&lt;a href="p1"&gt;x&lt;/a&gt;</content></entry></feed>"""
    (item,) = parse_feed(body, {"content-type": "application/atom+xml"}, "https://x.example/feed").items
    assert 'href="https://cdn.example/posts/p1"' in item.content_html
