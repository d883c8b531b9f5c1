"""parse_feed(): formats, hostile XML, non-feeds, cleaning, encodings, dates, identity fields."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from datetime import datetime, timezone

import pytest

from monitor.collectors.feeds import parse_feed
from monitor.errors import ParseError

RSS_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}

RSS20 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>Daily &amp; News</title><link>https://news.example.org/</link><language>en-GB</language>
<item><title>Minister says &lt;b&gt;X&lt;/b&gt;</title><link>/politics/1?utm_source=rss&amp;utm_medium=feed&amp;id=7</link>
<guid isPermaLink="false">item-1</guid><pubDate>Tue, 10 Jun 2025 11:00:00 +0700</pubDate><dc:creator>Jane Roe</dc:creator>
<description><![CDATA[<p>First  paragraph.</p><p>Second <a href="/more">paragraph</a>.</p>]]></description></item>
<item><title>No guid here</title><link>https://news.example.org/politics/2#comments</link>
<description>Plain text</description></item>
</channel></rss>"""


def test_rss20() -> None:
    feed = parse_feed(RSS20, RSS_HEADERS, "https://news.example.org/feed.xml")
    assert feed.version == "rss20" and feed.title == "Daily & News" and feed.link == "https://news.example.org/"
    assert feed.warnings == []
    first, second = feed.items
    assert first.guid == "item-1"
    assert first.url == "https://news.example.org/politics/1?id=7"
    assert first.title == "Minister says X"
    assert first.content_text == "First paragraph.\nSecond paragraph."
    assert 'href="https://news.example.org/more"' in first.content_html
    assert first.published_at == datetime(2025, 6, 10, 4, 0, tzinfo=timezone.utc)
    assert first.author == "Jane Roe" and first.language == "en-gb"
    assert len(first.content_hash) == 64
    assert second.guid == "https://news.example.org/politics/2"  # no guid: canonical link
    assert second.published_at is None


def test_atom() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="vi"><title>Tin</title><id>urn:feed</id>
<link rel="alternate" href="https://tin.example.vn/"/><updated>2025-01-02T00:00:00Z</updated>
<entry><title type="html">Tin &lt;em&gt;m\xe1\xbb\x9bi&lt;/em&gt;</title><id>urn:e1</id><link rel="alternate" href="bai/1"/>
<published>2025-01-02T03:04:05+07:00</published><updated>2025-01-03T00:00:00Z</updated>
<author><name>Nguy\xe1\xbb\x85n V\xc4\x83n A</name></author><summary>T\xc3\xb3m t\xe1\xba\xaft</summary>
<content type="html">&lt;p&gt;N\xe1\xbb\x99i dung&lt;/p&gt;</content></entry></feed>"""
    feed = parse_feed(body, {"content-type": "application/atom+xml"}, "https://tin.example.vn/atom.xml")
    assert feed.version == "atom10" and feed.title == "Tin"
    (item,) = feed.items
    assert item.guid == "urn:e1" and item.url == "https://tin.example.vn/bai/1"
    assert item.title == "Tin mới" and item.author == "Nguyễn Văn A"
    assert item.summary_text == "Tóm tắt" and item.content_text == "Nội dung"
    assert item.published_at == datetime(2025, 1, 1, 20, 4, 5, tzinfo=timezone.utc)
    assert item.updated_at == datetime(2025, 1, 3, tzinfo=timezone.utc)
    assert item.language == "vi"


def test_rdf_rss10() -> None:
    body = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://r.example/"><title>R</title><link>https://r.example/</link><description>d</description></channel>
<item rdf:about="https://r.example/1"><title>R1</title><link>https://r.example/1</link>
<dc:date>2024-05-01T10:00:00Z</dc:date><description>desc</description></item></rdf:RDF>"""
    feed = parse_feed(body, {"content-type": "application/rdf+xml"}, "https://r.example/rss")
    assert feed.version == "rss10"
    (item,) = feed.items
    assert item.title == "R1" and item.url == "https://r.example/1" and item.content_text == "desc"
    assert item.published_at == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)  # dc:date via updated


def test_json_feed() -> None:
    body = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "J", "home_page_url": "https://j.example/",
    "language": "en", "items": [
      {"id": 1, "url": "/posts/1?fbclid=abc", "title": "One", "content_html": "<p>Hi<script>x()</script></p>",
       "date_published": "2025-02-03T04:05:06+02:00", "authors": [{"name": "A"}, {"name": "B"}]},
      {"id": "2", "content_text": "Line 1\\n\\nLine 2", "date_modified": "2025-02-04T00:00:00Z"},
      "junk", {"id": "3"}]}"""
    feed = parse_feed(body, {"content-type": "application/feed+json"}, "https://j.example/feed.json")
    assert feed.version == "json11" and feed.title == "J" and feed.link == "https://j.example/"
    one, two = feed.items
    assert one.guid == "1" and one.url == "https://j.example/posts/1" and one.content_html == "<p>Hi</p>"
    assert one.published_at == datetime(2025, 2, 3, 2, 5, 6, tzinfo=timezone.utc)
    assert one.author == "A, B" and one.language == "en"
    assert two.content_text == "Line 1\nLine 2" and two.published_at == two.updated_at
    assert any("skipped" in w for w in feed.warnings)


@pytest.mark.parametrize("body", [b'{"items": []}', b"{not json", b'["x"]'])
def test_json_that_is_not_a_json_feed(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(body, {"content-type": "application/json"}, "https://j.example/")


# ----------------------------------------------------------------------------------------- hostile XML

BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
                             for i in range(1, 10))
                  + b']><rss version="2.0"><channel><title>&lol9;</title></channel></rss>')


def test_billion_laughs_refused_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(ParseError, match="^feed refused: XML entity expansion is not allowed$"):
        parse_feed(BILLION_LAUGHS, RSS_HEADERS, "https://x.example/")
    assert time.perf_counter() - started < 0.5


def test_external_entity_refused() -> None:
    body = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<rss version="2.0"><channel><title>&x;</title></channel></rss>')
    with pytest.raises(ParseError, match="feed refused"):
        parse_feed(body, RSS_HEADERS, "https://x.example/")


def test_entity_declaration_in_unsupported_encoding_still_refused() -> None:
    body = BILLION_LAUGHS.replace(b'<?xml version="1.0"?>', b'<?xml version="1.0" encoding="x-no-such"?>')
    with pytest.raises(ParseError, match="feed refused"):
        parse_feed(body, RSS_HEADERS, "https://x.example/")


def test_truncated_xml_refused_with_no_items() -> None:
    with pytest.raises(ParseError, match="not well-formed"):
        parse_feed(RSS20[: RSS20.index(b"<item><title>No guid")], RSS_HEADERS, "https://x.example/")


def test_unescaped_ampersand_is_not_well_formed() -> None:
    with pytest.raises(ParseError, match="not well-formed"):
        parse_feed(RSS20.replace(b"&amp;utm_medium", b"&utm_medium"), RSS_HEADERS, "https://x.example/")


def test_undeclared_html_entity_is_recoverable() -> None:
    feed = parse_feed(RSS20.replace(b"Plain text", b"Plain&nbsp;text &hellip;"), RSS_HEADERS, "https://x.example/")
    assert len(feed.items) == 2 and feed.items[1].content_text == "Plain text …"
    assert any("undeclared entities" in w for w in feed.warnings)


# ------------------------------------------------------------------------------------------- not feeds

@pytest.mark.parametrize("body,content_type", [
    (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>",
     "text/html; charset=UTF-8"),
    (b"\n  <html><body><h1>Welcome</h1></body></html>", "application/rss+xml"),  # lying content type
    (b"<?xml version='1.0'?><!-- hi --><html xmlns='http://www.w3.org/1999/xhtml'><body/></html>", "text/xml"),
    (b"<div>hello</div>", "text/html"),
])
def test_html_pages_are_not_feeds(body: bytes, content_type: str) -> None:
    with pytest.raises(ParseError, match="^not a feed: the server returned an HTML page$"):
        parse_feed(body, {"content-type": content_type}, "https://x.example/")


@pytest.mark.parametrize("body", [b"", b"  \r\n ", b"/etc/passwd", b"\xef\xbb\xbf"])
def test_empty_or_non_markup_bodies(body: bytes) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_feed(body, {}, "https://x.example/")


def test_unknown_xml_document() -> None:
    with pytest.raises(ParseError, match="unrecognised XML"):
        parse_feed(b"<config><x/></config>", {"content-type": "application/xml"}, "https://x.example/")


# ------------------------------------------------------------------------------------------- sanitising

def test_content_html_is_sanitised() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title><item><title>x</title><link>https://x.example/1</link>
<description><![CDATA[<p onclick="steal()" style="color:red" class="c">Hi<script>alert(1)</script>
<img src="/a.png" onerror="alert(2)"><a href="javascript:alert(3)">bad</a><a href="JaVa&#x09;script:alert(4)">bad2</a>
<iframe src="https://evil.example/"></iframe><a href="rel/page">ok</a></p>]]></description></item></channel></rss>"""
    (item,) = parse_feed(body, RSS_HEADERS, "https://x.example/feeds/main.xml").items
    html = item.content_html.lower()
    for bad in ("script", "onerror", "onclick", "javascript", "style=", "class=", "iframe", "alert"):
        assert bad not in html, bad
    assert '<img src="https://x.example/a.png">' in item.content_html
    assert '<a href="https://x.example/feeds/rel/page" rel="noopener noreferrer">ok</a>' in item.content_html
    assert "alert" not in item.content_text and item.content_text.startswith("Hi")


# -------------------------------------------------------------------------------------------- encodings

VI = "Thủ tướng phát biểu về kinh tế Việt Nam: “tăng trưởng ổn định”"


def cp1258(text: str) -> bytes:
    """Encode the way Vietnamese Windows software does: base letter, then a combining tone mark."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = b""
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in tones))
            out += base.encode("cp1258") + "".join(c for c in decomposed if c in tones).encode("cp1258")
    return out


def _vi_feed(encoding: str, encode) -> bytes:  # type: ignore[no-untyped-def]
    return (f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>'.encode()
            + encode(VI) + b"</title><language>vi-VN</language><item><title>" + encode(VI)
            + b"</title><link>https://vn.example/a</link><description>" + encode(VI)
            + b"</description></item></channel></rss>")


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/xml", "application/xml; charset=windows-1258"])
def test_vietnamese_windows_1258(content_type: str) -> None:
    body = _vi_feed("windows-1258", cp1258)
    feed = parse_feed(body, {"content-type": content_type}, "https://vn.example/rss")
    (item,) = feed.items
    assert feed.title == VI and item.title == VI and item.content_text == VI
    assert unicodedata.is_normalized("NFC", item.title) and item.language == "vi-vn"


def test_vietnamese_utf8_decomposed_is_normalised_to_nfc() -> None:
    body = _vi_feed("utf-8", lambda s: unicodedata.normalize("NFD", s).encode("utf-8"))
    (item,) = parse_feed(body, RSS_HEADERS, "https://vn.example/rss").items
    assert item.title == VI


def test_iso_8859_1_declared_feed() -> None:
    text = "Café São Paulo — naïve façade"
    body = _vi_feed("iso-8859-1", lambda s: text.replace("—", "-").encode("iso-8859-1"))
    (item,) = parse_feed(body, {"content-type": "application/rss+xml"}, "https://x.example/").items
    assert item.title == "Café São Paulo - naïve façade"


# ------------------------------------------------------------------------------------- dates and ids

def test_dates_future_clamped_and_raw_fallback() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
<item><title>future</title><link>https://x.example/1</link><pubDate>Tue, 10 Jun 2099 04:00:00 GMT</pubDate></item>
<item><title>odd</title><link>https://x.example/2</link><pubDate>2024-03-05 10:11:12</pubDate></item>
<item><title>garbage</title><link>https://x.example/3</link><pubDate>sometime soon</pubDate></item>
</channel></rss>"""
    future, odd, garbage = parse_feed(body, RSS_HEADERS, "https://x.example/").items
    assert future.published_at is None
    assert odd.published_at == datetime(2024, 3, 5, 10, 11, 12, tzinfo=timezone.utc)
    assert garbage.published_at is None


def test_guid_fallbacks_hash_and_duplicates() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
<item><title>A</title><description>same</description></item>
<item><title>A</title><description>same</description></item>
<item><title>B</title><link>https://x.example/b?utm_campaign=z</link></item>
<item></item>
</channel></rss>"""
    feed = parse_feed(body, RSS_HEADERS, "https://x.example/")
    a, b = feed.items
    assert a.guid == f"sha256:{a.content_hash}" and a.url is None
    assert b.guid == "https://x.example/b"
    assert any("repeated id" in w for w in feed.warnings) and any("without title" in w for w in feed.warnings)


def test_content_hash_ignores_whitespace_and_case() -> None:
    one = parse_feed(RSS20, RSS_HEADERS, "https://news.example.org/feed.xml").items[1]
    other = parse_feed(RSS20.replace(b"Plain text", b"  plain\n TEXT "), RSS_HEADERS,
                       "https://news.example.org/feed.xml").items[1]
    assert one.content_hash == other.content_hash


def test_dates_keep_raw_string_and_flag_why_they_are_missing() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
<item><title>future</title><link>https://x.example/1</link><pubDate>Tue, 10 Jun 2099 04:00:00 GMT</pubDate></item>
<item><title>garbage</title><link>https://x.example/2</link><pubDate>sometime soon</pubDate></item>
<item><title>none</title><link>https://x.example/3</link></item>
<item><title>ok</title><link>https://x.example/4</link><pubDate>Mon, 06 Jan 2025 08:00:00 +0700</pubDate></item>
<item><title>ancient</title><link>https://x.example/5</link><pubDate>Mon, 01 Jan 0001 00:00:00 GMT</pubDate></item>
</channel></rss>"""
    future, garbage, none, ok, ancient = parse_feed(body, RSS_HEADERS, "https://x.example/").items
    assert (future.published_at, future.date_flag) == (None, "future")
    assert future.published_raw == "Tue, 10 Jun 2099 04:00:00 GMT"
    assert (garbage.published_at, garbage.date_flag, garbage.published_raw) == (None, "impossible", "sometime soon")
    assert (none.published_at, none.date_flag, none.published_raw) == (None, "missing", None)
    assert ok.published_at == datetime(2025, 1, 6, 1, 0, tzinfo=timezone.utc) and ok.date_flag is None
    assert ok.published_raw == "Mon, 06 Jan 2025 08:00:00 +0700"
    assert (ancient.published_at, ancient.date_flag) == (None, "impossible")


def test_control_characters_and_nul_never_reach_any_field() -> None:
    nasty = "A\u0000B\u0001C\u0008D\u000bE\u001fF\u007fG"
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": f"Feed {nasty}", "items": [{
        "id": f"id-{nasty}", "url": "https://x.example/a", "title": f"Title {nasty}",
        "summary": f"Summary {nasty}", "content_html": f"<p>Body {nasty} &#0; &#x1;</p>",
        "authors": [{"name": f"Au {nasty}"}], "date_published": f"2024-01-02{nasty}"}]}
    parsed = parse_feed(json.dumps(feed).encode(), {"content-type": "application/feed+json"}, "https://x.example/")
    (item,) = parsed.items
    control = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    for value in (parsed.title, item.guid, item.title, item.summary_text, item.content_text, item.content_html,
                  item.author, item.published_raw):
        assert value and not control.search(value), repr(value)
    assert item.title == "Title ABCDEFG"


def test_language_guessed_when_the_feed_does_not_say() -> None:
    body = """<rss version="2.0"><channel><title>t</title>
<item><title>Bộ Công an công bố kết quả năm 2019</title><link>https://x.example/vi</link>
<description>Năm 2019, Cục đã điều tra 27 vụ án chuyên đề, bắt giữ 121 đối tượng.</description></item>
<item><title>Police report results for 2019</title><link>https://x.example/en</link>
<description>In 2019 the department investigated 27 cases and arrested 121 suspects.</description></item>
<item><title>Ok</title><link>https://x.example/short</link></item>
</channel></rss>""".encode()
    vi, en, short = parse_feed(body, RSS_HEADERS, "https://x.example/").items
    assert (vi.language, en.language, short.language) == ("vi", "en", None)
    declared = body.replace(b"<channel><title>t</title>", b"<channel><title>t</title><language>fr</language>")
    assert {i.language for i in parse_feed(declared, RSS_HEADERS, "https://x.example/").items} == {"fr"}


def test_story_key_only_for_items_with_enough_words() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
<item><title>Daily briefing</title><link>https://x.example/1</link></item>
<item><title>Cyber police report</title><link>https://x.example/2</link>
<description>The department investigated 27 cases in 2019.</description></item></channel></rss>"""
    short, story = parse_feed(body, RSS_HEADERS, "https://x.example/").items
    assert short.story_key is None
    assert story.story_key == story.content_hash


# -- one HTML parse for both the sanitised HTML and the text -----------------------------------------------

@pytest.mark.parametrize("fragment", [
    "<p>One &amp; two</p><p>three<br>four</p>",
    '<a href="/x?a=1&amp;b=2" title="a > b" onclick="evil()">link</a> after',
    '<a href="javascript:alert(1)">js</a><script>alert(1)</script><style>p{}</style>',
    "<table><tr><td>a</td><td>b</td></tr></table><ul><li>x<li>y</ul>",
    "<article><p>kept apart</p></article><section>by a break</section>",  # text-only block tags
    "<video>fallback text</video><form><button>press</button></form>",  # content the text drops
    "<div>" * 300 + "deep" + "</div>" * 300,  # hostile nesting
    "plain &lt;b&gt; text &nbsp; with\u00a0spaces and \ue000 a private-use character",
    "Vi\u1ec7t Nam <b>m\u1edbi</b> <!-- a comment --> <img src=x alt='pic'>",
])
def test_clean_html_and_text_matches_the_two_separate_passes(fragment: str) -> None:
    from monitor.collectors.sanitize import clean_html, clean_html_and_text, html_to_text

    base = "https://news.example.org/feed/"
    assert clean_html_and_text(fragment, base) == (clean_html(fragment, base), html_to_text(fragment))


def test_parse_worker_memoisation_gives_the_same_items() -> None:
    import feedparser.mixin

    from monitor.collectors.feeds import _memoise_feedparser_base_uri

    body = (b'<?xml version="1.0"?><rss version="2.0"><channel xml:base="https://a.example.org/base/">'
            b"<title>T</title><link>/home</link><item><title>One</title><link>rel/1</link><guid>g/1</guid>"
            b"<description>&lt;a href=\"x\"&gt;x&lt;/a&gt; story text</description></item></channel></rss>")
    headers = {"content-type": "application/rss+xml"}
    original = feedparser.mixin.make_safe_absolute_uri
    before = parse_feed(body, headers, "https://a.example.org/feed.xml")
    try:
        _memoise_feedparser_base_uri()
        assert feedparser.mixin.make_safe_absolute_uri is not original
        after = parse_feed(body, headers, "https://a.example.org/feed.xml")
    finally:
        feedparser.mixin.make_safe_absolute_uri = original
    assert after == before
    assert before.items[0].url == "https://a.example.org/base/rel/1"
