"""Shared fixtures for the collector tests: a real HTTP server on 127.0.0.1 in a background thread.

Import explicitly from test modules (``from conftest_collectors import local_server``); it is not a conftest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

Route = Callable[[BaseHTTPRequestHandler], None]


def respond(handler: BaseHTTPRequestHandler, status: int = 200, body: bytes = b"",
            headers: dict[str, str] | None = None, content_length: bool = True) -> None:
    """Write a complete response (status line, headers, body) and swallow a client hang-up."""
    try:
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if content_length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if body:
            handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        pass


@dataclass
class LocalServer:
    """Routes map a path (without query) to a callable writing the response; requests are recorded."""

    host: str
    port: int
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def route(self, path: str, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Register a fixed response."""
        self.routes[path] = lambda h: respond(h, status, body, headers)

    def headers_of(self, path: str) -> list[dict[str, str]]:
        return [hdrs for p, hdrs in self.requests if p.split("?", 1)[0] == path]


def _make_handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            route = server.routes.get(self.path.split("?", 1)[0])
            if route is None:
                respond(self, 404, b"no such route")
            else:
                route(self)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    return Handler


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    """A threaded HTTP/1.0 server on an ephemeral 127.0.0.1 port, shut down after the test."""
    state = LocalServer("127.0.0.1", 0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=2)
