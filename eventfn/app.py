"""The app factory: `create_app(settings)` assembles the function; nothing happens at import.

The function is one ASGI app, `FunctionApp`, in two parts:

* the entry, which answers what Knative sends without any framework: the lifespan, the drain
  (503 to new work once SIGTERM came), header limits, and the fast paths (`POST /` the
  CloudEvents ingress, `POST /deadletter`, the health probes and `GET /metrics`);
* the facade (`eventfn.facade.factory`: `/api/v1`, the WebSocket, OpenAPI and the docs), a FastAPI
  app built on the first request that needs it.

Why the facade waits: a replica that only receives broker deliveries never imports FastAPI,
which is most of the cold start and of the idle memory (the figures:
docs/internals/decisions/lazy-facade.md). Scale-from-zero waits for the cold start of every new
pod; the UI's first request waits once per pod for the facade (a few hundred milliseconds).
"""

from __future__ import annotations

import traceback
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from eventfn.auth.policy import header, log_posture
from eventfn.binding import is_json, loads
from eventfn.core.clock import Clocks
from eventfn.core.config import Settings
from eventfn.core.errors import (
    ClientError,
    FunctionError,
    MalformedEvent,
    PayloadTooLarge,
    TransientError,
    problem_response,
)
from eventfn.core.http import Receive, Scope, Send, declared_length, send_response
from eventfn.dispatch.catalogue import FACADE_PREFIX
from eventfn.dispatch.registry import Registry
from eventfn.ingress import probes as health
from eventfn.ingress.deadletter_sink import DeadLetterSink
from eventfn.ingress.deadline import BodyDeadline
from eventfn.ingress.endpoint import Ingress
from eventfn.ingress.limits import HeaderLimits
from eventfn.ingress.metrics import MetricsEndpoint
from eventfn.observability.logs import configure_logging
from eventfn.runtime import Runtime

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from fastapi import FastAPI

    from eventfn.core.http import ASGIApp


# Probes and metrics keep answering while draining: they report the drain, they are not work.
_ALWAYS_SERVED = ("/health", "/metrics")


async def _refuse_while_draining(scope: Any, send: Any) -> None:
    """Once SIGTERM came (see eventfn.server.drain), new requests get 503 + Retry-After: the broker
    retries them on another replica. Requests already inside finish normally."""
    error = TransientError("the function is shutting down; retry", retry_after=1)
    status, headers, body = problem_response(error, instance=scope["path"])
    headers.append((b"connection", b"close"))
    await send_response(send, status, headers, body)


class FunctionApp:
    """The function's ASGI app: fast paths at the entry, the FastAPI facade behind them.

    `POST /` is the hot path: one replica should do the work of three. Starlette's middleware and
    routing cost more per request than the whole ingress, so the paths Knative calls are
    dispatched here, at the ASGI entry, and everything else goes to the facade.
    """

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self._runtime = runtime
        self.state = SimpleNamespace(runtime=runtime)  # Starlette's place for it, for callers
        self.body_limit = settings.max_body_bytes
        self.header_limits = HeaderLimits(settings.max_header_count, settings.max_header_bytes)
        self.body_deadline = BodyDeadline(settings.body_timeout_seconds)
        scrape = MetricsEndpoint(runtime.metrics, runtime.sample)
        self.fast_paths: dict[str, Any] = {
            "/": Ingress(runtime, plain_json=self._plain_json),
            "/metrics": scrape,
            **health.probes(runtime),
        }
        if runtime.deadletters is not None:
            self.fast_paths["/deadletter"] = DeadLetterSink(runtime, runtime.deadletters)
        self._facade: FastAPI | None = None
        self._facade_entry: Any = None  # the facade behind uvicorn's ProxyHeadersMiddleware
        self._facade_components: list[Any] = []  # built with the facade, not yet attached
        self._trusted_proxies = settings.forwarded_allow_ips

    @property
    def facade(self) -> FastAPI:
        """The FastAPI app of the facade, built on first use (see the module docstring)."""
        if self._facade is None:
            self._build_facade()
        assert self._facade is not None  # noqa: S101 - just built
        return self._facade

    def _build_facade(self) -> None:
        """Build the facade and its entry: the facade behind uvicorn's ProxyHeadersMiddleware
        (the client and scheme a trusted proxy forwarded), which `serve` leaves off so that the
        fast paths do not parse X-Forwarded-* for nothing."""
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        from eventfn.facade.factory import build_facade

        facade, self._facade_components = build_facade(self._runtime)
        self._facade = facade
        # FastAPI types its ASGI signature more loosely than Starlette: an ASGI app all the same.
        self._facade_entry = ProxyHeadersMiddleware(facade, self._trusted_proxies)  # type: ignore[arg-type]

    async def _entry(self) -> ASGIApp:
        """The facade's entry, built on first use; what it brings joins the runtime then."""
        if self._facade_entry is None:
            self._build_facade()
        while self._facade_components:
            component, sample, on_drain = self._facade_components.pop(0)
            await self._runtime.attach(component, sample=sample, on_drain=on_drain)
        entry: ASGIApp = self._facade_entry
        return entry

    def lifespan_context(self) -> AbstractAsyncContextManager[None]:
        """Start-up and shutdown of the function (what the ASGI lifespan protocol runs)."""
        return self._runtime.lifespan(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._runtime.draining and not scope["path"].startswith(_ALWAYS_SERVED):
                await _refuse_while_draining(scope, send)
                return
            # uvicorn's httptools parser bounds no header, so every HTTP request is checked here.
            too_large = self.header_limits.exceeded(scope["headers"])
            if too_large is not None:
                await self.header_limits.reject(scope, send, too_large)
                return
            endpoint = self.fast_paths.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
            await self._http_to_facade(scope, receive, send)
            return
        if kind == "websocket":
            # A handshake is an HTTP request too: the same bounds, refused before the facade.
            too_large = self.header_limits.exceeded(scope["headers"])
            if too_large is not None:
                await self.header_limits.reject_handshake(scope, send, too_large)
                return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        await (await self._entry())(scope, receive, send)

    async def _http_to_facade(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An HTTP request for the facade, its body held to the limit."""
        error = self._body_error(scope["headers"])
        if error is not None:
            await send_response(send, *problem_response(error, instance=scope["path"]))
            return
        await (await self._entry())(scope, self._bounded(scope, receive), send)

    async def _plain_json(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A plain JSON `POST /` (not a CloudEvent, see `Ingress`) is the facade's default route:
        the same validation, handler, errors and authentication as `POST <facade_path>`."""
        default = self._runtime.catalogue.default
        assert default is not None  # noqa: S101 - the ingress asks only when there is one
        path = default.facade_path
        await self._http_to_facade(
            {**scope, "path": path, "raw_path": path.encode()}, receive, send
        )

    async def _lifespan(self, receive: Any, send: Any) -> None:
        """The ASGI lifespan protocol around `lifespan_context` (as Starlette's router runs it)."""
        await receive()  # lifespan.startup
        context = self.lifespan_context()
        try:
            await context.__aenter__()
        except BaseException:
            await send({"type": "lifespan.startup.failed", "message": traceback.format_exc()})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await context.__aexit__(None, None, None)
        except BaseException:
            await send({"type": "lifespan.shutdown.failed", "message": traceback.format_exc()})
            raise
        await send({"type": "lifespan.shutdown.complete"})

    def _body_error(self, headers: list[tuple[bytes, bytes]]) -> FunctionError | None:
        """A declared Content-Length over the limit is refused before anything reads it."""
        try:
            length = declared_length(headers)
        except FunctionError as error:
            return error
        if length > self.body_limit:
            return PayloadTooLarge(f"the body exceeds {self.body_limit} bytes")
        return None

    def _bounded(self, scope: Scope, receive: Any) -> Any:
        """`receive` that raises PayloadTooLarge once a streamed body passes the limit, and
        RequestTimeout (408) when it does not arrive within BODY_TIMEOUT_SECONDS.

        Raised while a route reads its body, the error reaches the exception handlers and is
        answered in problem+json (FastAPI's own `max_body_size` would answer text/plain). The
        credentials of an `/api/v1` request are checked before its first byte of body is read:
        FastAPI reads a body before it runs the route's dependencies (the authentication), so
        an unauthenticated client could otherwise hold a connection sending it slowly.
        """
        limit, seen = self.body_limit, 0
        timed = self.body_deadline.receive(receive)
        auth = self._runtime.facade_auth
        if not scope["path"].startswith(FACADE_PREFIX + "/"):
            auth = None
        # A JSON body is held to the one JSON dialect of every door (`eventfn.binding.loads`:
        # no NaN, Infinity or 1e400) before FastAPI's own parser, which takes them, reads it.
        content_type = header(scope["headers"], b"content-type")
        chunks: list[bytes] | None = [] if content_type and is_json(content_type) else None

        async def bounded_receive() -> Any:
            nonlocal seen, auth
            if auth is not None:
                checking, auth = auth, None
                await checking.check_headers(scope["headers"])
            message = await timed()
            body = message.get("body", b"")
            seen += len(body)
            if seen > limit:
                raise PayloadTooLarge(f"the body exceeds {limit} bytes")
            if chunks is not None and message["type"] == "http.request":
                chunks.append(body)
                if not message.get("more_body", False) and seen:
                    try:
                        loads(b"".join(chunks))
                    except MalformedEvent as error:  # not a CloudEvent here: a plain 400
                        raise ClientError(error.detail) from None
            return message

        return bounded_receive


def create_app(
    settings: Settings,
    registry: Registry,
    *,
    clocks: Clocks = Clocks(),  # noqa: B008 (frozen: one shared default is the point)
) -> FunctionApp:
    """Build the function: the one composition root of the runtime.

    `registry` is the function's handlers on its catalogue. The runtime never imports the user's
    code itself: the entry points resolve it from an import string (`eventfn.loading`).
    `clocks` are what every component that reads time is given (`eventfn.core.clock.Clocks`); a
    test passes clocks it moves by hand.
    """
    configure_logging(settings)
    log_posture(settings)
    return FunctionApp(Runtime(settings, registry, clocks=clocks))
