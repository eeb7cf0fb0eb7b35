"""A real HTTP server on 127.0.0.1 for tests: register routes, fetch, inspect what it received.

    def test_feed(http_server):
        http_server.route("/feed.xml", body=b"<rss .../>", headers={"Content-Type": "application/rss+xml"})
        http_server.route("/dyn", lambda request: Reply(304) if request.headers.get("if-none-match") == '"v1"' else Reply(200, body=b"x"))
        ... fetch http_server.url("/feed.xml") ...
        assert http_server.requests[0].headers["user-agent"].startswith("listener/")

The server is a `ThreadingHTTPServer` (HTTP/1.1, keep-alive) on port 0 in a background thread.
A route is a path (matched with its query string first, then without) and either a `Reply` or a
callable taking the `RecordedRequest` and returning a `Reply`. Unknown paths get a 404. Every
request is recorded in `requests` (method, path with query, lower-cased headers, body), and
`max_concurrent` is the most requests that were being handled at the same time.

The `http_server` fixture gives a fresh server per test. Other test modules use it with
`from tests.httpserver import http_server` (or via tests/conftest.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

__all__ = ["Reply", "RecordedRequest", "LoopbackServer", "http_server"]


@dataclass
class Reply:
    """What the server answers on a route."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before sending the status line
    chunked: bool = False  # Transfer-Encoding: chunked instead of Content-Length
    content_length: int | None = None  # a Content-Length to claim instead of len(body)
    chunk_size: int = 64 * 1024
    chunk_delay: float = 0.0  # seconds between body chunks: a slow drip


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes = b""


Handler = Callable[[RecordedRequest], Reply]


class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1:0 serving registered routes in a daemon thread."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Handler] = {}
        self.requests: list[RecordedRequest] = []
        self.active = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.005,), daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        """The absolute URL of path on this server."""
        return self.base_url + path

    def route(self, path: str, reply: Reply | Handler | None = None, **reply_fields: object) -> str:
        """Serve `reply` (a Reply, a callable, or Reply(**reply_fields)) at path; returns its URL."""
        self.routes[path] = reply if reply is not None else Reply(**reply_fields)  # type: ignore[arg-type]
        return self.url(path)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path (without the query) is path."""
        return [r for r in self.requests if r.path.partition("?")[0] == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _reply_for(self, request: RecordedRequest) -> Reply:
        spec = self.routes.get(request.path) or self.routes.get(request.path.partition("?")[0])
        if spec is None:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        return spec(request) if callable(spec) else spec

    def _enter(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self.active += 1
            self.max_concurrent = max(self.max_concurrent, self.active)

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class RouteHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            request = RecordedRequest(self.command, self.path, headers, body)
            server._enter(request)
            try:
                try:
                    reply = server._reply_for(request)
                except Exception as exc:  # a broken test handler: answer 500 and say why
                    reply = Reply(500, f"handler failed: {exc!r}".encode(), {"Content-Type": "text/plain"})
                self._send(reply)
            except OSError:
                self.close_connection = True  # the client gave up (timeout, size cap): fine
            finally:
                server._leave()

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            self.send_response_only(reply.status)
            given = {name.lower() for name in reply.headers}
            if "date" not in given:  # a test may fix Date (e.g. for Retry-After arithmetic)
                self.send_header("Date", self.date_time_string())
            for name, value in reply.headers.items():
                self.send_header(name, value)
            with_body = self.command != "HEAD" and reply.status not in (204, 304)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                length = len(reply.body) if reply.content_length is None else reply.content_length
                self.send_header("Content-Length", str(length if with_body else 0))
            self.end_headers()
            if not with_body:
                return
            step = max(1, reply.chunk_size)
            for start in range(0, len(reply.body), step):
                piece = reply.body[start : start + step]
                if reply.chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                self.wfile.flush()
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            if reply.chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def handle(self) -> None:
            try:
                super().handle()
            except OSError:  # the client reset a kept-alive connection: nothing to report
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    return RouteHandler


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    """A fresh loopback HTTP server for one test."""
    server = LoopbackServer()
    try:
        yield server
    finally:
        server.close()
