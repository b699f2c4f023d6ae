"""`GET /metrics`: the Prometheus scrape, at the ASGI entry like the ingress (no routing).

The numbers are `Metrics`' (eventfn.observability.metrics); those that live in other components
(open WebSockets, outbox depth, feed and WebSocket drops, the dedupe window) are refreshed right
before each scrape by `sample` (the runtime's `Runtime.sample`): exact, and free between scrapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from eventfn.core.errors import MethodNotAllowed, problem_response
from eventfn.core.http import Receive, Scope, Send
from eventfn.observability.metrics import CONTENT_TYPE, Metrics


class MetricsEndpoint:
    """The ASGI endpoint of `GET /metrics` (and HEAD)."""

    def __init__(
        self, metrics: Metrics, sample: Callable[[Metrics], Awaitable[None]] | None = None
    ) -> None:
        self.metrics = metrics
        self.sample = sample

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in ("GET", "HEAD"):
            if self.sample is not None:
                await self.sample(self.metrics)
            body = self.metrics.render()
            status = 200
            headers = [
                (b"content-type", CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),  # as SecurityHeaders does elsewhere
            ]
            if scope["method"] == "HEAD":
                body = b""
        else:
            error = MethodNotAllowed(f"{scope['method']} is not allowed on /metrics", allow="GET")
            status, headers, body = problem_response(error, instance=scope["path"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
