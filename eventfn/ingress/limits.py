"""Header limits: the bounds every HTTP request and WebSocket handshake is held to.

uvicorn's default HTTP parser (httptools) puts no bound on request headers: measured, it accepts
a 1 MB header and 50,000 header fields. So the app counts them itself (`HeaderLimits`, checked
at the ASGI entry before any routing) and answers 431. With `--http h11` uvicorn's own bound also
applies (`h11_max_incomplete_event_size`, 16 KiB: a 400 from uvicorn). In Knative, queue-proxy
(Go net/http, 1 MiB of headers at most) is in front of both. A WebSocket handshake is an HTTP
request as well and is held to the same bounds, before the facade sees it.
"""

from __future__ import annotations

from typing import Any

from eventfn.core.errors import HeadersTooLarge, problem_response
from eventfn.core.http import Scope


class HeaderLimits:
    """Bounds on the request header fields: count and total bytes (431 above either)."""

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes

    def exceeded(self, headers: list[tuple[bytes, bytes]]) -> HeadersTooLarge | None:
        """The error to answer, or None; a few hundred nanoseconds for usual requests."""
        if len(headers) > self.max_count:
            return HeadersTooLarge(
                f"the request has {len(headers)} header fields; at most {self.max_count}",
                limit=self.max_count,
            )
        size = 0
        for name, value in headers:
            size += len(name) + len(value)
        if size > self.max_bytes:
            return HeadersTooLarge(
                f"the request headers total {size} bytes; at most {self.max_bytes}",
                limit=self.max_bytes,
            )
        return None

    async def reject(self, scope: Scope, send: Any, error: HeadersTooLarge) -> None:
        """Answer 431 without reading the body (the connection is closed after it)."""
        status, headers, body = problem_response(error, instance=scope["path"])
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def reject_handshake(self, scope: Scope, send: Any, error: HeadersTooLarge) -> None:
        """Refuse a WebSocket handshake before accepting it.

        A 431 problem where the server offers the ASGI denial response (uvicorn does, as
        `eventfn.facade.ws.session` uses it too); else a close before accept, which the server
        answers with HTTP 403 (ASGI spec), 1008 being the policy-violation code.
        """
        if "websocket.http.response" in scope.get("extensions", {}):
            status, headers, body = problem_response(error, instance=scope["path"])
            start = {"type": "websocket.http.response.start", "status": status, "headers": headers}
            await send(start)
            await send({"type": "websocket.http.response.body", "body": body})
            return
        await send({"type": "websocket.close", "code": 1008})
