"""`SinkClient`: one POST of an event to K_SINK, and what the sink's answer means for it.

The one job here is the exchange with the sink: the event in binary mode on the process's one
httpx client (trusting K_CA_CERTS and Knative's custom certs, carrying the trace), the OIDC
identity SinkBinding mounts as a bearer, a cut at the attempt timeout, and the answer read as an
`Attempt`: delivered, retryable (with its Retry-After) or permanent. A refused identity (401/403)
is retryable after `PUBLISH_REFUSED_HOLD_SECONDS`. Retrying, the outbox and dead letters are the
publisher's (`eventfn.delivery.publisher`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from eventfn.binding import Event, Unencodable, to_binary
from eventfn.core.config import Settings
from eventfn.delivery.identity import SinkToken, trust
from eventfn.delivery.retry import RETRYABLE, Attempt, failure, parse_retry_after
from eventfn.observability.logs import get_logger
from eventfn.observability.metrics import Metrics
from eventfn.observability.tracing import inject_headers

if TYPE_CHECKING:  # httpx is imported when a publisher starts (only with K_SINK)
    import httpx

log = get_logger("eventfn.delivery.sink")


class SinkClient:
    """Sends events to `sink`; owns the process's one `httpx.AsyncClient` for it."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.sink = sink
        self._settings = settings
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        # The OIDC identity SinkBinding mounts; expected when the function itself verifies
        # OIDC tokens (the cluster has the feature on) or SinkBinding mounted the token's
        # directory (the setting alone says nothing: the rendered ConfigMap always sets it).
        token_file = settings.oidc_sink_token_file
        self.token = SinkToken(
            token_file, expected=bool(settings.oidc_audience) or token_file.parent.is_dir()
        )
        # Delivery attempts are counted there (GET /metrics).
        self.metrics = metrics

    async def start(self) -> None:
        import httpx

        settings = self._settings
        self.token.start()
        limit = settings.publish_max_connections
        self._client = httpx.AsyncClient(
            transport=self._transport,
            verify=trust(settings.k_ca_certs, settings.knative_custom_certs_dir),
            timeout=httpx.Timeout(settings.publish_timeout_seconds),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            # The trace of the event being handled goes on with every delivery.
            event_hooks={"request": [inject_headers]},
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def attempt(self, event: Event) -> Attempt:
        """One POST of `event` in binary mode; never raises for HTTP or network failures.

        Cut at `publish_timeout_seconds` in all (httpx's timeout is per phase): the leases of
        `RetryPolicy` count on an attempt never taking longer.
        """
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._post(event)
        except TimeoutError:
            result = Attempt(False, True, error="TimeoutError: the attempt took too long")
        if self.metrics is not None:
            self.metrics.published(result.delivered)
        return result

    async def _post(self, event: Event) -> Attempt:
        import httpx  # already loaded by start(): a dictionary lookup

        assert self._client is not None, "Publisher.start() was not called"  # noqa: S101
        try:
            headers, body = to_binary(event)
        except Unencodable as exc:  # permanent: dead-lettered on this first attempt
            return failure(exc)
        bearer = self.token.header()
        if bearer is not None:
            headers.append((b"authorization", bearer.encode()))
        try:
            response = await self._client.post(self.sink, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(False, True, error=f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(True, False, status)
        text = response.text[:1024]
        if status in (401, 403):
            return self._refused(status, text)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        retryable = status in RETRYABLE or status >= 500
        return Attempt(False, retryable, status, retry_after, f"HTTP {status}: {text}")

    def _refused(self, status: int, text: str) -> Attempt:
        """A 401/403: the sink refused the function's identity (no OIDC token, an expired one, an
        EventPolicy that does not let it in). Fixed outside the event, so neither retried at once
        nor dead-lettered: the event waits in the outbox, `PUBLISH_REFUSED_HOLD_SECONDS` between
        tries, with the sink's answer as its error, counted and logged."""
        if self.metrics is not None:
            self.metrics.sink_unauthorized += 1
        log.error(
            "publish_unauthorized",
            sink=self.sink,
            status=status,
            identity="no token file" if self.token.missing else "token sent",
        )
        hold = self._settings.publish_refused_hold_seconds
        return Attempt(False, True, status, hold, f"HTTP {status} (identity refused): {text}")
