"""``Fetcher``: connections kept between fetches, but only per host and vetted address (SSRF guard intact)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.collectors.guard import AddressGuard
from monitor.collectors.http import FetchLimits, Fetcher, fetch
from monitor.errors import BlockedURLError, FetchError

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LIMITS = FetchLimits(connect_timeout=2, read_timeout=5, total_timeout=10, user_agent="fetcher-test/1.0")


class KeepAliveServer:
    """An HTTP/1.1 (keep-alive) server on ``address``; records (server address, client port, path)."""

    def __init__(self, address: str, port: int = 0, seen: list[tuple[str, int, str]] | None = None) -> None:
        self.seen = seen if seen is not None else []
        self.stall: dict[str, float] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                outer.seen.append((address, self.client_address[1], self.path))
                time.sleep(outer.stall.get(self.path, 0))
                if self.path.startswith("/hop"):
                    self.send_response(301)
                    self.send_header("Location", "http://10.0.0.7/internal")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(RSS)))
                self.end_headers()
                self.wfile.write(RSS)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[KeepAliveServer, KeepAliveServer]]:
    """The same port on 127.0.0.1 and 127.0.0.2: one host name that resolves to either reaches either."""
    seen: list[tuple[str, int, str]] = []
    first = KeepAliveServer("127.0.0.1", 0, seen)
    try:
        second = KeepAliveServer("127.0.0.2", first.port, seen)
    except OSError:
        first.close()
        pytest.skip("127.0.0.2 is not usable here")
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``feeds.test`` resolves to the addresses popped from the returned list, one lookup at a time."""
    answers: list[str] = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "feeds.test":
            address = answers.pop(0) if len(answers) > 1 else answers[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return answers


def test_connections_are_kept_per_host_and_address(servers, resolve) -> None:
    first, _ = servers
    resolve.append("127.0.0.1")
    guard = AddressGuard(allow=["127.0.0.0/8"])
    with Fetcher() as fetcher:
        for n in range(3):
            assert fetch(f"http://feeds.test:{first.port}/f{n}", limits=LIMITS, guard=guard, client=fetcher).body == RSS
        assert fetcher.clients_made == 1 and fetcher.connections() == 1
    assert len({port for _, port, _ in first.seen}) == 1  # three requests, one TCP connection


def test_a_kept_connection_is_never_used_for_another_resolved_address(servers, resolve) -> None:
    first, _ = servers
    guard = AddressGuard(allow=["127.0.0.0/8"])
    url = f"http://feeds.test:{first.port}/feed"
    with Fetcher() as fetcher:
        # each fetch resolves the name twice (the guard's check, then the connection's vetting)
        resolve.extend(["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.1", "127.0.0.1"])
        for _ in range(3):
            fetch(url, limits=LIMITS, guard=guard, client=fetcher)
        assert fetcher.clients_made == 2
    servers_hit = [address for address, _, _ in first.seen]
    assert servers_hit == ["127.0.0.1", "127.0.0.2", "127.0.0.1"]
    ports = [port for _, port, _ in first.seen]
    assert ports[0] == ports[2] != ports[1]  # back on the first address: its own kept connection


def test_a_name_that_now_resolves_to_a_refused_address_is_blocked_despite_a_kept_connection(servers,
                                                                                          resolve) -> None:
    first, _ = servers
    guard = AddressGuard(allow=["127.0.0.1"])
    url = f"http://feeds.test:{first.port}/feed"
    with Fetcher() as fetcher:
        resolve.extend(["127.0.0.1", "127.0.0.1"])
        fetch(url, limits=LIMITS, guard=guard, client=fetcher)
        resolve[:] = ["127.0.0.2"]  # DNS rebinding after the first fetch
        with pytest.raises(BlockedURLError):
            fetch(url, limits=LIMITS, guard=guard, client=fetcher)
        resolve[:] = ["127.0.0.1", "127.0.0.2"]  # passes the first check, then rebinds before connecting
        with pytest.raises(BlockedURLError):
            fetch(url, limits=LIMITS, guard=guard, client=fetcher)
    assert len(first.seen) == 1


def test_redirects_through_a_fetcher_are_vetted_on_every_hop(servers) -> None:
    first, _ = servers
    with Fetcher() as fetcher, pytest.raises(BlockedURLError):
        fetch(f"http://127.0.0.1:{first.port}/hop", limits=LIMITS, guard=AddressGuard(allow=["127.0.0.1"]),
              client=fetcher)


def test_the_total_deadline_holds_on_a_kept_connection(servers) -> None:
    first, _ = servers
    guard = AddressGuard(allow=["127.0.0.1"])
    first.stall["/slow"] = 3
    with Fetcher() as fetcher:
        fetch(f"http://127.0.0.1:{first.port}/quick", limits=LIMITS, guard=guard, client=fetcher)
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"timed out after 1 s"):
            fetch(f"http://127.0.0.1:{first.port}/slow", guard=guard, client=fetcher,
                  limits=FetchLimits(read_timeout=10, total_timeout=1, user_agent="t"))
        assert time.monotonic() - started < 2.5
    assert len({port for _, port, _ in first.seen}) == 1  # the slow request went over the kept connection


def test_least_recently_used_clients_are_closed_beyond_the_cap(servers) -> None:
    first, second = servers
    guard = AddressGuard(allow=["127.0.0.0/8"])
    with Fetcher(max_clients=1) as fetcher:
        for address in ("127.0.0.1", "127.0.0.2", "127.0.0.1"):
            assert fetch(f"http://{address}:{first.port}/feed", limits=LIMITS, guard=guard,
                         client=fetcher).body == RSS
        assert fetcher.clients_made == 3
    ports = [port for _, port, _ in first.seen]
    assert len(set(ports)) == 3  # the first client was closed when the second came: a new connection


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="Linux TCP option")
def test_a_kept_connection_does_not_wait_for_delayed_acknowledgements(servers) -> None:
    """The server writes headers and body apart with Nagle's algorithm on: without a quick acknowledgement
    each response on a kept connection would wait ~40 ms for the client's delayed ACK."""
    first, _ = servers
    guard = AddressGuard(allow=["127.0.0.1"])
    with Fetcher() as fetcher:
        fetch(f"http://127.0.0.1:{first.port}/warm", limits=LIMITS, guard=guard, client=fetcher)
        started = time.monotonic()
        for n in range(10):
            fetch(f"http://127.0.0.1:{first.port}/f{n}", limits=LIMITS, guard=guard, client=fetcher)
        assert time.monotonic() - started < 0.3
    assert len({port for _, port, _ in first.seen}) == 1
