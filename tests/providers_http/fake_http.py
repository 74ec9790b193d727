"""A tiny threaded HTTP server for faking vendor APIs on 127.0.0.1.

Each fake registers routes (method + path regex -> handler) and keeps its own state, so tests
assert the end state the provider left behind, not the calls it made. Faults (429 with
Retry-After, 5xx, ...) are queued per route and answered before the real handler runs.
"""
from __future__ import annotations

import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Optional


@dataclass
class Request:
    method: str
    path: str
    headers: Any  # an email.message.Message: case-insensitive like HTTP
    body: Any
    raw: bytes
    match: Optional[re.Match] = None


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    response: Response
    times: int


# Cleared by `warmups_held()`: no scale-out completes until it is set again, so a test can see
# a wait that waits without racing the clock (a loaded CI machine can take longer than delay_s
# between a change and the first poll).
_SETTLING = threading.Event()
_SETTLING.set()


@contextmanager
def warmups_held() -> Iterator[None]:
    """Within this block every fake's pending scale-out stays pending."""
    _SETTLING.clear()
    try:
        yield
    finally:
        _SETTLING.set()


class FakeTime:
    """A clock that moves only when slept on: for retry tests, so they assert the waits that were
    asked for (Retry-After honoured, a wait beyond the deadline not taken) instead of timing
    real sleeps on a loaded machine."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Warmup:
    """Capacity that becomes ready `delay_s` after the target changes (what a real platform
    does while it starts workers)."""

    def __init__(self, ready: int, delay_s: float = 0.3) -> None:
        self.delay_s = delay_s
        self._from = ready
        self._to = ready
        self._since = 0.0

    def set(self, target: int) -> None:
        self._from, self._to, self._since = self.ready(), target, time.monotonic()

    def ready(self) -> int:
        if self._to < self._from:
            return self._to  # scale-in is immediate
        if _SETTLING.is_set() and time.monotonic() - self._since >= self.delay_s:
            return self._to  # scale-out takes delay_s
        return self._from


class FakeApi:
    """Subclasses set `auth` (the exact Authorization header expected) and call `route`."""

    def __init__(self, auth: str) -> None:
        self.auth = auth
        self.lock = threading.RLock()
        self.log: list[Request] = []
        self._routes: list[tuple[str, re.Pattern, Callable[[Request], Response]]] = []
        self._faults: list[Fault] = []
        self._server: ThreadingHTTPServer | None = None

    # -- configuration --------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Callable[[Request], Response]) -> None:
        self._routes.append((method, re.compile(pattern + r"/?$"), handler))

    def fail_next(self, method: str, pattern: str, status: int, body: Any = None,
                  headers: dict[str, str] | None = None, times: int = 1) -> None:
        with self.lock:
            self._faults.append(Fault(method, re.compile(pattern), Response(status, body, headers or {}),
                                      times))

    def error(self, status: int, message: str) -> Response:
        """Vendor-specific error shape; overridden by fakes."""
        return Response(status, {"error": message})

    # -- observation ----------------------------------------------------------------------
    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        with self.lock:
            return [r for r in self.log if (method is None or r.method == method) and contains in r.path]

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeApi":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                req = Request(self.command, self.path.split("?")[0], self.headers, body, raw)  # case-insensitive
                resp = fake._dispatch(req)
                data = b"" if resp.body is None else json.dumps(resp.body).encode()
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in resp.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def _dispatch(self, req: Request) -> Response:
        with self.lock:
            self.log.append(req)
            if req.headers.get("Authorization") != self.auth:
                return self.error(401, "invalid or missing API token")
            for fault in self._faults:
                if fault.method == req.method and fault.pattern.search(req.path) and fault.times > 0:
                    fault.times -= 1
                    return fault.response
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(req.path)
                if method == req.method and match:
                    req.match = match
                    return handler(req)
            return self.error(404, f"no route for {req.method} {req.path}")
