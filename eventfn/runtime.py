"""The per-process runtime: stores, dispatcher and lifecycle state, built once by the app factory.

Building it does no I/O (so importing and creating the app stay cheap); `lifespan` opens what
needs opening, flips readiness, and closes everything on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventfn.auth.checks import FacadeAuth, build_auth
from eventfn.core.asgi import Scope
from eventfn.core.config import Settings
from eventfn.delivery.build import build_delivery
from eventfn.delivery.publisher import Publisher
from eventfn.dispatch.dispatcher import Dispatcher
from eventfn.dispatch.registry import Registry, Route
from eventfn.observability.feed import LiveFeed
from eventfn.observability.logs import get_logger
from eventfn.observability.metrics import Metrics
from eventfn.stores.deadletters import DeadLetterStore
from eventfn.stores.dedupe import DedupeStore, MemoryDedupeStore
from schemas import Catalogue

log = get_logger("eventfn.runtime")


class DeliveryAuth(Protocol):
    """Authenticates a broker delivery (ingress, dead-letter sink) from its ASGI scope.

    Raises `Unauthenticated` (401), `Forbidden` (403) or a `TransientError` (issuer unreachable).
    """

    async def check(self, scope: Scope) -> None: ...


class Component(Protocol):
    """Something with a lifecycle (stores, publisher, outbox worker, live feed...).

    `start` runs at start-up in registration order, before readiness turns true; `stop` runs in
    reverse order at shutdown, after readiness turned false and in-flight requests finished.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_dedupe(settings: Settings) -> DedupeStore:
    """The dedupe store the settings ask for: Redis (shared by replicas) when `redis_url` is set."""
    if settings.redis_url:
        from eventfn.stores.dedupe_redis import RedisDedupeStore
        from eventfn.stores.redis import redis_client

        return RedisDedupeStore(
            redis_client(settings.redis_url, settings.redis_timeout_seconds),
            ttl=settings.dedupe_ttl_seconds,
            lease=settings.dedupe_lease_seconds,
        )
    return MemoryDedupeStore(
        ttl=settings.dedupe_ttl_seconds,
        lease=settings.dedupe_lease_seconds,
        max_entries=settings.dedupe_max_entries,
        max_bytes=settings.dedupe_max_bytes,
    )


@dataclass
class Runtime:
    """Everything a request needs that outlives the request."""

    settings: Settings
    catalogue: Catalogue
    routes: Mapping[str, Route]
    dedupe: DedupeStore
    dispatcher: Dispatcher
    ready: bool = False
    draining: bool = False
    components: list[Component] = field(default_factory=list)
    # None means deliveries are not authenticated (local development).
    delivery_auth: DeliveryAuth | None = None
    # None means the facade and WebSocket are open (neither API_KEYS nor OIDC_AUDIENCE set).
    facade_auth: FacadeAuth | None = None
    # The live event feed the WebSocket subscribes to; the dispatcher offers it every event.
    feed: LiveFeed | None = None
    # Run once when draining starts, before the server closes connections (WebSockets get a
    # clean 1001 instead of uvicorn's 1012).
    on_drain: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Delivery guarantees (issue 3): None without K_SINK; the dead-letter inbox is always there.
    publisher: Publisher | None = None
    deadletters: DeadLetterStore | None = None
    # Observability (issue 7): the counters behind GET /metrics, one set per app.
    metrics: Metrics = field(default_factory=lambda: Metrics(()))
    # The open WebSockets (eventfn.facade.ws.endpoint.Sessions), once the facade is built.
    ws_sessions: Any = None
    # While running: what stops the started components, and how many of them were started.
    _stack: AsyncExitStack | None = None
    _started: int = 0

    @classmethod
    def build(cls, settings: Settings, registry: Registry, catalogue: Catalogue) -> Runtime:
        from eventfn.stores.redis import shared_redis

        with shared_redis(settings):  # one Redis client and pool for every store built here
            return cls._build(settings, registry, catalogue)

    @classmethod
    def _build(cls, settings: Settings, registry: Registry, catalogue: Catalogue) -> Runtime:
        routes = registry.routes(catalogue)
        dedupe = build_dedupe(settings)
        runtime = cls(
            settings=settings,
            catalogue=catalogue,
            routes=routes,
            dedupe=dedupe,
            dispatcher=Dispatcher(routes, dedupe, settings),
        )
        runtime.metrics = runtime.dispatcher.metrics = Metrics(catalogue)
        runtime.feed = LiveFeed(settings)
        runtime.dispatcher.observe = runtime.feed.offer
        runtime.components.append(runtime.feed)
        auth = build_auth(settings)
        runtime.delivery_auth, runtime.facade_auth = auth.delivery, auth.facade
        if auth.verifier is not None:
            runtime.components.append(auth.verifier)
        delivery = build_delivery(settings)
        runtime.publisher, runtime.deadletters = delivery.publisher, delivery.deadletters
        if runtime.publisher is not None:
            runtime.publisher.metrics = runtime.metrics
        if runtime.publisher is not None:
            runtime.publisher.observe = runtime.feed.offer
        runtime.components.extend(delivery.components)
        return runtime

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """Start-up, readiness, and drain: the ASGI lifespan of the function."""
        log.info(
            "starting",
            consumes=sorted(self.routes),
            source=self.settings.event_source,
            dedupe=type(self.dedupe).__name__,
        )
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self.dedupe.aclose)
            self._stack, self._started = stack, 0
            await self.start_components()
            self.ready = True
            try:
                yield
            finally:
                self.ready = False
                self.draining = True
                self._stack = None
        log.info("stopped")

    async def start_components(self) -> None:
        """Start the components registered since the last call; they stop at shutdown.

        All of them at start-up; later, those the facade registers when it is built on its first
        request (see `eventfn.app`). Outside the lifespan this does nothing: they wait for it.
        """
        while self._stack is not None and self._started < len(self.components):
            component = self.components[self._started]
            self._started += 1
            await component.start()
            self._stack.push_async_callback(component.stop)
