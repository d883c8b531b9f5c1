"""fetch() against real HTTP servers on 127.0.0.1: validators, redirects, guard, limits, errors."""

from __future__ import annotations

import gzip
import socket
import time
import zlib
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest

try:
    from tests.conftest_collectors import LocalServer, local_server, respond  # noqa: F401
except ImportError:  # tests/ is not a package
    from conftest_collectors import LocalServer, local_server, respond  # noqa: F401

from monitor.collectors.guard import AddressGuard
from monitor.collectors.http import FetchLimits, fetch, parse_max_age, parse_retry_after
from monitor.errors import BlockedURLError, FetchError

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LOCAL = AddressGuard(allow=["127.0.0.1"])
LIMITS = FetchLimits(connect_timeout=2, read_timeout=5, total_timeout=10, user_agent="collector-test/1.0")


def get(url: str, guard: AddressGuard = LOCAL, limits: FetchLimits = LIMITS, **kw):  # type: ignore[no-untyped-def]
    return fetch(url, limits=limits, guard=guard, **kw)


# ---------------------------------------------------------------------------------------- plain + 304

def test_200_returns_body_lowercased_headers_validators_and_max_age(local_server: LocalServer) -> None:
    local_server.route("/feed", body=RSS, headers={"Content-Type": "application/rss+xml", "ETag": '"v1"',
                                                   "Last-Modified": "Tue, 10 Jun 2025 04:00:00 GMT",
                                                   "Cache-Control": "public, max-age=300"})
    result = get(local_server.url("/feed"))
    assert result.status == 200 and result.body == RSS and not result.not_modified
    assert result.etag == '"v1"' and result.last_modified == "Tue, 10 Jun 2025 04:00:00 GMT"
    assert result.max_age == 300.0 and result.permanent_url is None
    assert result.headers["content-type"] == "application/rss+xml"
    assert all(k == k.lower() for k in result.headers)
    sent = local_server.headers_of("/feed")[0]
    assert sent["user-agent"] == "collector-test/1.0"
    assert "if-none-match" not in sent and "if-modified-since" not in sent


def test_conditional_get_304(local_server: LocalServer) -> None:
    def route(h):  # type: ignore[no-untyped-def]
        if h.headers.get("If-None-Match") == '"v1"':
            respond(h, 304, headers={"ETag": '"v1"'}, content_length=False)
        else:
            respond(h, 200, RSS, {"ETag": '"v1"'})

    local_server.routes["/feed"] = route
    result = get(local_server.url("/feed"), etag='"v1"', last_modified="Tue, 10 Jun 2025 04:00:00 GMT")
    assert result.not_modified and result.status == 304 and result.body == b""
    assert result.etag == '"v1"' and result.last_modified == "Tue, 10 Jun 2025 04:00:00 GMT"
    sent = local_server.headers_of("/feed")[0]
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Tue, 10 Jun 2025 04:00:00 GMT"


def test_304_without_validators_is_an_error(local_server: LocalServer) -> None:
    local_server.routes["/feed"] = lambda h: respond(h, 304, content_length=False)
    with pytest.raises(FetchError, match="304") as info:
        get(local_server.url("/feed"))
    assert info.value.status == 304


# ------------------------------------------------------------------------------------------ redirects

def _redirect(local_server: LocalServer, path: str, status: int, target: str) -> None:
    local_server.route(path, status=status, headers={"Location": target})


def test_permanent_redirect_chain_sets_permanent_url(local_server: LocalServer) -> None:
    _redirect(local_server, "/old", 301, "/older")
    _redirect(local_server, "/older", 308, local_server.url("/new"))
    local_server.route("/new", body=RSS)
    result = get(local_server.url("/old"))
    assert result.body == RSS
    assert result.url == local_server.url("/new") and result.permanent_url == local_server.url("/new")


def test_temporary_hop_means_no_permanent_url(local_server: LocalServer) -> None:
    _redirect(local_server, "/a", 301, "/b")
    _redirect(local_server, "/b", 302, "/c")
    local_server.route("/c", body=RSS)
    result = get(local_server.url("/a"))
    assert result.url == local_server.url("/c") and result.permanent_url is None


def test_redirect_limit(local_server: LocalServer) -> None:
    for i in range(6):
        _redirect(local_server, f"/r{i}", 302, f"/r{i + 1}")
    local_server.route("/r6", body=RSS)
    with pytest.raises(FetchError, match="too many redirects"):
        get(local_server.url("/r0"))  # 6 redirects, limit 5
    assert get(local_server.url("/r1")).body == RSS  # exactly 5 is fine


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/feed",
                                    "http://[::1]/feed", "http://[::ffff:10.0.0.1]/x", "http://0.0.0.0/"])
def test_redirect_to_blocked_address_refused(local_server: LocalServer, target: str) -> None:
    _redirect(local_server, "/feed", 302, target)
    with pytest.raises(BlockedURLError):
        get(local_server.url("/feed"))


def test_redirect_to_file_url_refused_even_when_files_allowed(local_server: LocalServer) -> None:
    _redirect(local_server, "/feed", 301, "file:///etc/passwd")
    with pytest.raises(FetchError, match="non-HTTP"):
        get(local_server.url("/feed"), guard=AddressGuard(allow=["127.0.0.1"], allow_files=True))


# ------------------------------------------------------------------------------------------------ guard

def test_guard_blocks_loopback_unless_allowed(local_server: LocalServer) -> None:
    local_server.route("/feed", body=RSS)
    with pytest.raises(BlockedURLError, match="private or reserved"):
        get(local_server.url("/feed"), guard=AddressGuard())
    assert local_server.requests == []  # nothing was sent
    for allow in (["127.0.0.1"], ["127.0.0.0/8"]):
        assert get(local_server.url("/feed"), guard=AddressGuard(allow=allow)).body == RSS
    assert get(local_server.url("/feed", host="localhost"), guard=AddressGuard(allow=["localhost"])).body == RSS


def test_connection_is_pinned_to_the_vetted_address(local_server: LocalServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name passes the check with a public address, then re-resolves to 127.0.0.1."""
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1"])

    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    local_server.route("/feed", body=RSS)
    with pytest.raises(BlockedURLError):
        get(local_server.url("/feed", host="rebind.test"), guard=AddressGuard())
    assert local_server.requests == []


def test_custom_hostname_connects_to_resolved_address_with_host_header(local_server: LocalServer,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: (
        [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))] if host == "feeds.test"
        else real(host, port, *a, **k)))
    local_server.route("/feed", body=RSS)
    assert get(local_server.url("/feed", host="feeds.test")).body == RSS
    assert local_server.headers_of("/feed")[0]["host"] == f"feeds.test:{local_server.port}"


def test_file_urls_only_when_allowed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "demo.xml"
    path.write_bytes(RSS)
    with pytest.raises(BlockedURLError):
        get(path.as_uri())
    result = get(path.as_uri(), guard=AddressGuard(allow_files=True))
    assert result.status == 200 and result.body == RSS
    with pytest.raises(FetchError, match="larger than"):
        get(path.as_uri(), guard=AddressGuard(allow_files=True), limits=FetchLimits(max_bytes=10))
    with pytest.raises(FetchError, match="not found"):
        get((tmp_path / "missing.xml").as_uri(), guard=AddressGuard(allow_files=True))


# ----------------------------------------------------------------------------------------------- limits

@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """~100 MB of zeros, gzip-compressed to ~100 KB."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join([comp.compress(block) for _ in range(100)] + [comp.flush()])


def test_gzip_bomb_refused_fast(local_server: LocalServer, gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 200_000
    local_server.route("/bomb", body=gzip_bomb, headers={"Content-Encoding": "gzip"})
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"response larger than 10 MB"):
        get(local_server.url("/bomb"), limits=FetchLimits(user_agent="t"))
    assert time.monotonic() - started < 3


def test_gzip_and_deflate_bodies_are_decoded(local_server: LocalServer) -> None:
    local_server.route("/gz", body=gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    local_server.route("/df", body=zlib.compress(RSS), headers={"Content-Encoding": "deflate"})
    assert get(local_server.url("/gz")).body == RSS
    assert get(local_server.url("/df")).body == RSS
    sent = local_server.headers_of("/gz")[0]
    assert sent["accept-encoding"] == "gzip, deflate"


def test_size_cap_on_declared_and_streamed_bodies(local_server: LocalServer) -> None:
    local_server.route("/big", body=b"x" * 5000)
    local_server.routes["/stream"] = lambda h: respond(h, 200, b"y" * 5000, content_length=False)
    small = FetchLimits(max_bytes=4096, user_agent="t")
    for path in ("/big", "/stream"):
        with pytest.raises(FetchError, match="larger than 4 KB"):
            get(local_server.url(path), limits=small)


def test_trickling_server_cut_by_total_deadline(local_server: LocalServer) -> None:
    def trickle(h):  # type: ignore[no-untyped-def]
        try:
            h.send_response(200)
            h.send_header("Content-Length", "100")
            h.end_headers()
            for _ in range(100):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    local_server.routes["/slow"] = trickle
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 1\.5 s"):
        get(local_server.url("/slow"), limits=FetchLimits(read_timeout=5, total_timeout=1.5, user_agent="t"))
    assert 1.3 < time.monotonic() - started < 3.5  # no single read ever times out


def test_silent_server_cut_by_total_deadline_before_read_timeout(local_server: LocalServer) -> None:
    local_server.routes["/stall"] = lambda h: time.sleep(3)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 1 s"):
        get(local_server.url("/stall"), limits=FetchLimits(read_timeout=10, total_timeout=1, user_agent="t"))
    assert time.monotonic() - started < 3  # read_timeout is 10 s


# ---------------------------------------------------------------------------------------- HTTP errors

def test_429_retry_after_seconds(local_server: LocalServer) -> None:
    local_server.route("/feed", status=429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as info:
        get(local_server.url("/feed"))
    assert info.value.status == 429 and info.value.retry_after == 120.0 and not info.value.permanent
    assert "429" in str(info.value)


def test_503_retry_after_http_date(local_server: LocalServer) -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(minutes=10), usegmt=True)
    local_server.route("/feed", status=503, headers={"Retry-After": when})
    with pytest.raises(FetchError) as info:
        get(local_server.url("/feed"))
    assert info.value.status == 503 and 500 < (info.value.retry_after or 0) <= 600


def test_410_is_permanent(local_server: LocalServer) -> None:
    local_server.route("/feed", status=410)
    with pytest.raises(FetchError, match=r"^feed is gone \(HTTP 410\)$") as info:
        get(local_server.url("/feed"))
    assert info.value.permanent and info.value.status == 410


def test_404_plain_message(local_server: LocalServer) -> None:
    with pytest.raises(FetchError, match=r"^HTTP 404 Not Found$") as info:
        get(local_server.url("/missing"))
    assert info.value.status == 404 and not info.value.permanent


def test_connection_refused_plain_message() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(FetchError, match="connection refused"):
        get(f"http://127.0.0.1:{port}/feed")


def test_dns_failure_plain_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(FetchError, match="DNS lookup failed for nowhere.test"):
        get("http://nowhere.test/feed")


def test_header_parsers() -> None:
    assert parse_retry_after("0") == 0.0 and parse_retry_after("junk") is None and parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_max_age("no-cache, max-age=60") == 60.0 and parse_max_age("s-maxage=5") is None


# ------------------------------------------------------------------------------------ more edge cases

def test_redirect_loop_is_cut(local_server: LocalServer) -> None:
    _redirect(local_server, "/a", 302, "/b")
    _redirect(local_server, "/b", 302, "/a")
    with pytest.raises(FetchError, match="too many redirects"):
        get(local_server.url("/a"))


def test_unsupported_content_encoding(local_server: LocalServer) -> None:
    local_server.route("/br", body=b"\x1b\x00", headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError, match="unsupported content encoding"):
        get(local_server.url("/br"))


def test_corrupt_gzip_is_a_fetch_error(local_server: LocalServer) -> None:
    local_server.route("/bad", body=b"\x1f\x8b\x08\x00garbage-garbage", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="not valid gzip"):
        get(local_server.url("/bad"))


def test_caller_supplied_client_still_guarded(local_server: LocalServer) -> None:
    import httpx

    local_server.route("/feed", body=RSS)
    _redirect(local_server, "/evil", 302, "http://192.168.0.1/admin")
    with httpx.Client(follow_redirects=True) as client:  # fetch must not let the client follow redirects
        assert get(local_server.url("/feed"), client=client).body == RSS
        with pytest.raises(BlockedURLError):
            get(local_server.url("/evil"), client=client)
        with pytest.raises(BlockedURLError):
            get(local_server.url("/feed"), guard=AddressGuard(), client=client)


def test_fetch_then_parse_end_to_end(local_server: LocalServer) -> None:
    from monitor.collectors.feeds import parse_feed

    vi = "Chính phủ công bố số liệu"
    body = (b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>VN</title>'
            b"<item><title>" + vi.encode() + b"</title><link>/tin/1?utm_source=rss</link>"
            b'<description>&lt;p&gt;Xem &lt;a href="chi-tiet"&gt;chi ti\xe1\xba\xbft&lt;/a&gt;&lt;/p&gt;</description>'
            b"</item></channel></rss>")
    local_server.route("/moved", status=301, headers={"Location": "/rss/home.rss"})
    local_server.route("/rss/home.rss", body=gzip.compress(body),
                       headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"})
    result = get(local_server.url("/moved"))
    assert result.permanent_url == local_server.url("/rss/home.rss")
    feed = parse_feed(result.body, result.headers, result.url)
    (item,) = feed.items
    assert item.title == vi and item.url == local_server.url("/tin/1")
    assert f'href="{local_server.url("/rss/chi-tiet")}"' in item.content_html


def test_inflater_byte_by_byte_and_limits_validation() -> None:
    from monitor.collectors.http import _Inflater

    data = b"hello world " * 1000
    for coding, compressed in (("deflate", zlib.compress(data)), ("deflate", zlib.compress(data)[2:-4]),
                               ("gzip", gzip.compress(data[:6000]) + gzip.compress(data[6000:]))):
        inflater = _Inflater(coding)
        out = b"".join(inflater.feed(compressed[i:i + 1], 10**6) for i in range(len(compressed)))
        assert out + inflater.flush() == data
    with pytest.raises(ValueError):
        FetchLimits(total_timeout=0)
    with pytest.raises(ValueError):
        FetchLimits(user_agent="x\r\nX-Injected: 1")
