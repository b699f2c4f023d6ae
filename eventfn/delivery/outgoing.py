"""The handlers' outgoing HTTP client (`ctx.http`): one per process, made on first use.

A handler calling a pricing service, a database API or a webhook needs what the publisher's
client has: the event's trace context on every request (so the call shows in the trace), a
timeout that fits inside the handler's budget, pooled connections, a metric per host, and a
close at shutdown. A module-global `httpx.AsyncClient` in `handler/` has none of that and is
never closed. Made on the first `ctx.http`, so a function whose handlers never call out pays
nothing for it (httpx is not even imported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventfn.core.config import Settings
from eventfn.observability.metrics import Metrics
from eventfn.observability.tracing import inject_headers

if TYPE_CHECKING:
    import httpx


class OutgoingHTTP:
    """A Component: `client()` makes the shared client on first use, `stop` closes it."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        """The shared client, made now if it was not yet."""
        if self._client is None:
            import httpx

            settings = self._settings
            limit = settings.outgoing_max_connections
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(settings.outgoing_timeout_seconds),
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
                event_hooks={"request": [inject_headers], "response": [self._count]},
            )
        return self._client

    async def _count(self, response: Any) -> None:
        self._metrics.outgoing_request(response.request.url.host, response.status_code)

    async def start(self) -> None:
        """Nothing to open: the client is made when a handler first asks for it."""

    async def stop(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
