"""All network I/O of the collectors: one guarded, size- and time-limited HTTP(S) GET per call.

Redirects are followed by hand so the :class:`AddressGuard` vets every hop. When ``fetch`` builds its own
client, connections go through :class:`_GuardedBackend`, which connects only to the addresses the guard
approved (no DNS-rebinding window) and caps every socket read/write by the fetch's total deadline.

A :class:`Fetcher` (one per collection round) keeps connections open between fetches: before each hop the
host is resolved and vetted by the fetch's guard as always, and the hop goes through the client kept for
exactly that (scheme, host, port, vetted addresses); its connections were opened only to those addresses.
When the host resolves differently, another client (new connections) is used: a connection is never reused
for an address the guard did not approve on this hop.
"""

from __future__ import annotations

import http
import re
import socket
import ssl
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import url2pathname

import httpcore
import httpx

from monitor.collectors.guard import AddressGuard
from monitor.errors import FetchError, MonitorError
from monitor.records import FetchResult

DEFAULT_USER_AGENT = "statement-monitor/0.1 (feed collector)"
ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
          "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    """Time (seconds) and size (bytes, after decompression) limits for one fetch."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.read_timeout, self.total_timeout) <= 0 or self.max_bytes <= 0 \
                or self.max_redirects < 0:
            raise ValueError("fetch limits must be positive (max_redirects may be 0)")
        if not self.user_agent or any(c in self.user_agent for c in "\r\n"):
            raise ValueError("user_agent must be a non-empty single line")


# --------------------------------------------------------------------------------------------- helpers

def _fmt_seconds(value: float) -> str:
    return f"{value:g}" if value >= 1 else f"{value:.2g}"


def _fmt_size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    if limit >= 1024:
        return f"{limit / 1024:g} KB"
    return f"{limit} bytes"


def _too_large(limits: FetchLimits) -> FetchError:
    return FetchError(f"response larger than {_fmt_size(limits.max_bytes)} limit; refused")


def _deadline_error(limits: FetchLimits) -> FetchError:
    return FetchError(f"timed out after {_fmt_seconds(limits.total_timeout)} s")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


def parse_max_age(cache_control: str | None) -> float | None:
    """``max-age`` of a Cache-Control header in seconds, or None."""
    if not cache_control:
        return None
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "error"


class _Inflater:
    """Incremental Content-Encoding decoder that never produces more than the caller allows."""

    def __init__(self, encoding: str) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise FetchError(f"unsupported content encoding {encoding!r}")
        self.coding = codings[0] if codings else None
        self._pending = b""
        if self.coding in ("gzip", "x-gzip"):
            self._d: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self._d = None  # zlib-wrapped or raw deflate: decided on first bytes
        elif self.coding is None:
            self._d = None
        else:
            raise FetchError(f"unsupported content encoding {encoding!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode ``data``; returns at most ``room + 1`` bytes (more than ``room`` means: over the cap)."""
        if self.coding is None:
            return data
        if self._d is None:  # deflate: zlib-wrapped or raw, told apart by the 2-byte zlib header
            data = self._pending + data
            if len(data) < 2:
                self._pending = data
                return b""
            self._pending = b""
            raw = not ((data[0] & 0x0F) == 8 and ((data[0] << 8) | data[1]) % 31 == 0)
            self._d = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        out = b""
        try:
            while data and len(out) <= room:
                out += self._d.decompress(data, room + 1 - len(out))
                if self._d.unconsumed_tail:
                    data = self._d.unconsumed_tail
                    continue
                if self._d.eof and self._d.unused_data and self.coding != "deflate":
                    data = self._d.unused_data  # next gzip member
                    self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    continue
                break
        except zlib.error:
            raise FetchError(f"response body is not valid {self.coding} data") from None
        return out

    def flush(self) -> bytes:
        if self._pending:
            raise FetchError(f"response body is not valid {self.coding} data")
        if self.coding is None or self._d is None:
            return b""
        try:
            return self._d.flush()
        except zlib.error:
            raise FetchError(f"response body is not valid {self.coding} data") from None


# ---------------------------------------------------------------------- guarded, deadline-aware transport

#: The deadline of the fetch running on this thread (read by the streams of a Fetcher's kept connections).
_CURRENT = threading.local()


def _current_deadline() -> float:
    return getattr(_CURRENT, "deadline", time.monotonic() + 60.0)


_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def _quick_ack(stream: httpcore.NetworkStream) -> None:
    """Acknowledge what arrives next at once. A server that writes a response's headers and its body apart
    with Nagle's algorithm on holds the body until its headers are acknowledged; on a kept connection the
    kernel delays that acknowledgement (40 ms on Linux), so every response would wait for it."""
    if _TCP_QUICKACK is None:
        return
    try:
        stream.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
    except (AttributeError, OSError):  # not a TCP socket (or none): nothing to tune
        pass


class _DeadlineStream(httpcore.NetworkStream):
    """Network stream whose read/write timeouts never run past the deadline of the fetch using it."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: Callable[[], float]) -> None:
        self._inner = inner
        self._deadline = deadline

    def _cap(self, timeout: float | None) -> float:
        remaining = max(0.001, self._deadline() - time.monotonic())
        return remaining if timeout is None else min(timeout, remaining)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        _quick_ack(self._inner)
        return self._inner.read(max_bytes, self._cap(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._cap(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, self._cap(timeout)),
                               self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolve through the guard and connect only to the vetted addresses (closes the DNS-rebinding gap)."""

    def __init__(self, guard: AddressGuard | None, deadline: Callable[[], float]) -> None:
        self._guard = guard
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()
        self.connections = 0

    def _addresses(self, host: str, port: int) -> list[str]:
        assert self._guard is not None
        return self._guard.resolve_host(host, port)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        addresses = self._addresses(host, port)
        last: Exception | None = None
        for address in addresses:
            remaining = max(0.001, self._deadline() - time.monotonic())
            try:
                stream = self._inner.connect_tcp(address, port, remaining if timeout is None else
                                                 min(timeout, remaining), local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            self.connections += 1
            return _DeadlineStream(stream, self._deadline)
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _PinnedBackend(_GuardedBackend):
    """Connects one origin only, and only to the addresses vetted for it when its client was made."""

    def __init__(self, host: str, port: int, addresses: tuple[str, ...]) -> None:
        super().__init__(None, _current_deadline)
        self._origin = (host.strip("[]").rstrip(".").lower(), port)
        self._pinned = list(addresses)

    def _addresses(self, host: str, port: int) -> list[str]:
        if (host.strip("[]").rstrip(".").lower(), port) != self._origin:
            raise httpcore.ConnectError(f"connection for {self._origin[0]} asked to reach {host}")
        return self._pinned


_SSL_CONTEXT: ssl.SSLContext | None = None
_SSL_LOCK = threading.Lock()


def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every fetch: building one loads the CA bundle (~10 ms of CPU each), and
    a context is safe to share between threads once configured."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context(trust_env=False)
        return _SSL_CONTEXT


def _make_client(user_agent: str, backend: _GuardedBackend, limits: httpx.Limits | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(verify=_ssl_context(), trust_env=False, retries=0,
                                    limits=limits or httpx.Limits())
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):  # httpx/httpcore internals changed
        raise RuntimeError("cannot install the guarded network backend on this httpx version")
    pool._network_backend = backend
    return httpx.Client(transport=transport, trust_env=False, follow_redirects=False, verify=_ssl_context(),
                        headers={"User-Agent": user_agent})


OriginKey = tuple[str, str, int, tuple[str, ...]]


@dataclass
class _Kept:
    client: httpx.Client
    users: int = 0
    evicted: bool = False


class Fetcher:
    """Connections kept open between fetches (thread-safe; one per collection round, then ``close``).

    One httpx client per (scheme, host, port, vetted addresses), each connecting only to those addresses;
    at most ``max_clients`` are kept (the least recently used is closed once no fetch uses it), and a kept
    connection idle for ``keepalive_expiry`` seconds is closed before reuse."""

    def __init__(self, user_agent: str = DEFAULT_USER_AGENT, *, max_clients: int = 256,
                 keepalive_expiry: float = 5.0, idle_per_origin: int = 4) -> None:
        self.user_agent = user_agent
        self._max = max(1, max_clients)
        self._limits = httpx.Limits(max_connections=None, max_keepalive_connections=idle_per_origin,
                                    keepalive_expiry=keepalive_expiry)
        self._lock = threading.Lock()
        self._kept: OrderedDict[OriginKey, _Kept] = OrderedDict()
        self.clients_made = 0

    def connections(self) -> int:
        """TCP connections opened so far by the clients still kept."""
        with self._lock:
            backends = [getattr(k.client._transport, "_pool")._network_backend for k in self._kept.values()]
        return sum(b.connections for b in backends)

    @contextmanager
    def client(self, scheme: str, host: str, port: int, addresses: list[str]) -> Iterator[httpx.Client]:
        """The client for this origin and these vetted addresses (made on first use)."""
        key: OriginKey = (scheme, host, port, tuple(addresses))
        closing: list[_Kept] = []
        with self._lock:
            kept = self._kept.pop(key, None)
            if kept is None:
                kept = _Kept(_make_client(self.user_agent, _PinnedBackend(host, port, key[3]), self._limits))
                self.clients_made += 1
            self._kept[key] = kept  # the most recently used last
            kept.users += 1
            while len(self._kept) > self._max:
                _, old = self._kept.popitem(last=False)
                old.evicted = True
                if old.users == 0:
                    closing.append(old)
        for old in closing:
            old.client.close()
        try:
            yield kept.client
        finally:
            with self._lock:
                kept.users -= 1
                close = kept.evicted and kept.users == 0
            if close:
                kept.client.close()

    def close(self) -> None:
        with self._lock:
            kept, self._kept = list(self._kept.values()), OrderedDict()
        for entry in kept:
            entry.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------ fetch

def fetch(url: str, *, etag: str | None = None, last_modified: str | None = None, limits: FetchLimits,
          guard: AddressGuard, client: httpx.Client | Fetcher | None = None) -> FetchResult:
    """GET ``url`` within ``limits``; raise FetchError (BlockedURLError for policy) with a plain message.

    Sends If-None-Match/If-Modified-Since when given; a 304 yields ``not_modified=True``. ``file:`` URLs are
    read from disk only when ``guard.allow_files``. ``client``: none (a client of its own, closed after), a
    :class:`Fetcher` (its kept connections, pinned per vetted address), or an httpx client used as is (the
    guard then checks each hop before the request, but cannot pin the connection to the vetted address).
    """
    deadline = time.monotonic() + limits.total_timeout
    url = url.strip()
    guard.check_url(url)
    if urlsplit(url).scheme.lower() == "file":
        return _fetch_file(url, limits)
    if isinstance(client, Fetcher):
        _CURRENT.deadline = deadline
        try:
            return _fetch_http(client, url, etag, last_modified, limits, guard, deadline)
        finally:
            del _CURRENT.deadline
    own = client is None
    active = _make_client(limits.user_agent, _GuardedBackend(guard, lambda: deadline)) if client is None \
        else client
    try:
        return _fetch_http(active, url, etag, last_modified, limits, guard, deadline)
    finally:
        if own:
            active.close()


@contextmanager
def _hop_client(client: httpx.Client | Fetcher, url: str, guard: AddressGuard) -> Iterator[httpx.Client]:
    """The client for one hop: a Fetcher's client for the host's addresses as vetted now, else ``client``."""
    if not isinstance(client, Fetcher):
        yield client
        return
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    with client.client(scheme, host, port, guard.resolve_host(host, port)) as active:
        yield active


def _fetch_file(url: str, limits: FetchLimits) -> FetchResult:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise FetchError(f"file URL must point to this machine: {url}")
    path = Path(url2pathname(unquote(parts.path)))
    try:
        with path.open("rb") as fh:
            body = fh.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(f"file not found: {path}", status=404) from None
    except OSError as exc:
        raise FetchError(f"cannot read file {path}: {exc.strerror or exc}") from None
    if len(body) > limits.max_bytes:
        raise _too_large(limits)
    headers: dict[str, str] = {}
    if path.suffix.lower() == ".json":
        headers["content-type"] = "application/feed+json"
    elif path.suffix.lower() in (".xml", ".rss", ".atom", ".rdf"):
        headers["content-type"] = "application/xml"
    return FetchResult(url=url, status=200, body=body, headers=headers)


def _fetch_http(client: httpx.Client | Fetcher, url: str, etag: str | None, last_modified: str | None,
                limits: FetchLimits, guard: AddressGuard, deadline: float) -> FetchResult:
    headers = {"User-Agent": limits.user_agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    current = url
    hops = 0
    all_permanent = True
    while True:
        if hops:
            if urlsplit(current).scheme.lower() not in ("http", "https"):
                raise FetchError(f"redirect to a non-HTTP URL refused: {current}")
            guard.check_url(current)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _deadline_error(limits)
        timeout = httpx.Timeout(connect=min(limits.connect_timeout, remaining),
                                read=min(limits.read_timeout, remaining),
                                write=min(limits.read_timeout, remaining),
                                pool=min(limits.connect_timeout, remaining))
        host = urlsplit(current).hostname or current
        with _hop_client(client, current, guard) as active:
            try:
                request = active.build_request("GET", current, headers=headers, timeout=timeout)
                response = active.send(request, stream=True, follow_redirects=False)
            except MonitorError:
                raise
            except Exception as exc:
                raise _network_error(exc, host, limits, deadline) from None
            try:
                status = response.status_code
                if status in _REDIRECTS and response.headers.get("location"):
                    if hops >= limits.max_redirects:
                        raise FetchError(f"too many redirects (more than {limits.max_redirects})", status=status)
                    hops += 1
                    all_permanent = all_permanent and status in _PERMANENT
                    try:
                        current = urljoin(current, response.headers["location"].strip())
                    except ValueError:
                        raise FetchError("redirect to an invalid URL", status=status) from None
                    continue
                return _finish(response, current, etag, last_modified, limits, deadline,
                               permanent_url=current if hops and all_permanent else None)
            except MonitorError:
                raise
            except Exception as exc:
                raise _network_error(exc, host, limits, deadline) from None
            finally:
                response.close()


def _finish(response: httpx.Response, url: str, etag: str | None, last_modified: str | None,
            limits: FetchLimits, deadline: float, permanent_url: str | None) -> FetchResult:
    status = response.status_code
    headers = {k.lower(): v for k, v in response.headers.items()}
    max_age = parse_max_age(headers.get("cache-control"))
    new_etag = headers.get("etag") or None
    new_modified = headers.get("last-modified") or None
    if status == 304:
        if not etag and not last_modified:
            raise FetchError("server answered 304 Not Modified to a request without validators", status=304)
        return FetchResult(url=url, status=304, headers=headers, etag=new_etag or etag,
                           last_modified=new_modified or last_modified, not_modified=True,
                           permanent_url=permanent_url, max_age=max_age)
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"))
        hint = f"; retry after {_fmt_seconds(retry_after)} s" if retry_after is not None else ""
        raise FetchError(f"HTTP {status} {_reason(status)}{hint}", status=status, retry_after=retry_after)
    if status == 410:
        raise FetchError("feed is gone (HTTP 410)", status=410, permanent=True)
    if status >= 400:
        raise FetchError(f"HTTP {status} {_reason(status)}", status=status)
    if not 200 <= status < 300:
        raise FetchError(f"unexpected HTTP {status} {_reason(status)}", status=status)
    body = _read_body(response, headers, limits, deadline)
    return FetchResult(url=url, status=status, body=body, headers=headers, etag=new_etag,
                       last_modified=new_modified, permanent_url=permanent_url, max_age=max_age)


def _read_body(response: httpx.Response, headers: dict[str, str], limits: FetchLimits, deadline: float) -> bytes:
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(limits)
    inflater = _Inflater(headers.get("content-encoding", ""))
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_raw(_CHUNK):
        if time.monotonic() >= deadline:
            raise _deadline_error(limits)
        decoded = inflater.feed(chunk, limits.max_bytes - size)
        size += len(decoded)
        if size > limits.max_bytes:
            raise _too_large(limits)
        parts.append(decoded)
    tail = inflater.flush()
    size += len(tail)
    if size > limits.max_bytes:
        raise _too_large(limits)
    parts.append(tail)
    return b"".join(parts)


def _network_error(exc: Exception, host: str, limits: FetchLimits, deadline: float) -> FetchError:
    """Translate an httpx/httpcore/OS error into a FetchError with a plain message."""
    text = str(exc)
    lowered = text.lower()
    if time.monotonic() >= deadline - 0.01 and isinstance(exc, (httpx.TimeoutException, httpcore.TimeoutException)):
        return _deadline_error(limits)
    if isinstance(exc, (httpx.ConnectTimeout, httpcore.ConnectTimeout)):
        return FetchError(f"timed out connecting to {host} after {_fmt_seconds(limits.connect_timeout)} s")
    if isinstance(exc, (httpx.TimeoutException, httpcore.TimeoutException)):
        return FetchError(f"timed out after {_fmt_seconds(limits.read_timeout)} s waiting for {host}")
    if isinstance(exc, (httpx.ConnectError, httpcore.ConnectError, OSError)):
        if "refused" in lowered:
            return FetchError(f"connection refused by {host}")
        if "name or service" in lowered or "getaddrinfo" in lowered or "nodename" in lowered \
                or "temporary failure in name resolution" in lowered:
            return FetchError(f"DNS lookup failed for {host}")
        if "certificate" in lowered or "ssl" in lowered or "tls" in lowered:
            return FetchError(f"TLS certificate check failed for {host}")
        if "unreachable" in lowered:
            return FetchError(f"network unreachable for {host}")
        return FetchError(f"could not connect to {host}")
    if isinstance(exc, (httpx.RemoteProtocolError, httpcore.RemoteProtocolError)):
        return FetchError(f"{host} closed the connection or sent an invalid HTTP response")
    if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpcore.ReadError, httpcore.WriteError)):
        return FetchError(f"connection to {host} was interrupted")
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return FetchError(f"invalid URL for {host}")
    return FetchError(f"fetch from {host} failed ({type(exc).__name__})")
