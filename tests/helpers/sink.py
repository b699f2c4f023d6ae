"""A real HTTP sink for publishing tests: a stdlib server on a loopback port, in a thread.

It records every request (headers and body) and answers with the statuses it is told to, so a
test can play a sink that is down (`start()` later), flaky (`script`) or slow (`delay`).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme

from tests.helpers.support import free_port, tls_server_context, until


def serve_posts(
    port: int, answer: Callable[[dict[str, str], bytes], int], tls: ssl.SSLContext | None = None
) -> ThreadingHTTPServer:
    """A loopback HTTP server in a thread answering each POST with `answer(headers, body)`'s
    status and an empty body (`Retry-After: 0` with a 429 or 503); TLS with `tls`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = answer({k.lower(): v for k, v in self.headers.items()}, body)
            with contextlib.suppress(OSError):  # the sender may be gone (killed, timed out)
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("retry-after", "0")
                self.send_header("content-length", "0")
                self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass(frozen=True)
class Received:
    """One request the sink got."""

    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["ce-id"]


class Sink:
    """A CloudEvents sink: answers `status` (or the next of `script`) after `delay` seconds."""

    def __init__(
        self,
        port: int | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/"
        # A secured cluster's Broker: TLS with a certificate of its own CA, and a bearer token
        # it requires (401 without it or with another one, as Knative's OIDC verifier answers).
        self.tls = tls
        self.token = token
        self.received: list[Received] = []
        self.script: list[int] = []
        self.status = 202
        self.delay = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def _answer(self, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            self.received.append(Received(headers, body))
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                return 401
            return self.script.pop(0) if self.script else self.status

    def _serve(self, headers: dict[str, str], body: bytes) -> int:
        """The status of one request (run in the server's thread)."""
        time.sleep(self.delay)  # a slow sink, in the server's own thread
        return self._answer(headers, body)

    def start(self) -> Sink:
        self._server = serve_posts(self.port, self._serve, self.tls)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self._lock:
            return [r.id for r in self.received]

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        """Wait (without blocking the event loop) until `count` requests arrived; bounded."""

        def arrived() -> bool:
            with self._lock:
                return len(self.received) >= count

        await until(arrived, within, f"the sink got {len(self.received)} requests, not {count}")
        with self._lock:
            return list(self.received)


@contextlib.contextmanager
def running_sink() -> Iterator[Sink]:
    sink = Sink().start()
    try:
        yield sink
    finally:
        sink.stop()


def https_sink(ca: trustme.CA, token: str | None) -> Sink:
    """A started sink serving HTTPS with a certificate `ca` issued for 127.0.0.1 (a secured
    cluster's Broker), demanding `Bearer <token>` when a token is given."""
    return Sink(tls=tls_server_context(ca, "127.0.0.1", "localhost"), token=token).start()
