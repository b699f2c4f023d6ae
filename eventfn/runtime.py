"""The per-process runtime: stores, dispatcher, delivery and lifecycle, assembled in one place.

`Runtime(settings, registry)` builds every collaborator in its constructor and does no I/O (so
importing and creating the app stay cheap); `lifespan` opens what needs opening, flips readiness,
and closes everything on the way out. What is built later (the facade, on its first request)
joins through `attach`, which starts it at once when the runtime is already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

from eventfn.auth.policy import FacadeAuth, build_auth
from eventfn.core.clock import Clocks
from eventfn.core.config import Settings, following_deliveries
from eventfn.core.http import Scope
from eventfn.delivery.build import build_delivery
from eventfn.delivery.outgoing import OutgoingHTTP
from eventfn.delivery.publisher import Publisher
from eventfn.dispatch.catalogue import Catalogue
from eventfn.dispatch.dispatcher import Dispatcher
from eventfn.dispatch.registry import Registry, Route
from eventfn.observability.feed import LiveFeed
from eventfn.observability.logs import get_logger
from eventfn.observability.metrics import Metrics
from eventfn.stores.deadletters import DeadLetterStore
from eventfn.stores.dedupe import DedupeStore, MemoryDedupeStore

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


# Refreshes numbers that live in a component right before a scrape of GET /metrics.
Sample = Callable[[Metrics], Awaitable[None]]


def build_redis(settings: Settings) -> Any:
    """The one Redis client every store of a runtime shares, when `redis_url` is set (no I/O:
    it connects on first use); each store holds it, and the pool closes with the last."""
    if not settings.redis_url:
        return None
    from eventfn.stores.redis import build_client

    return build_client(settings)


def build_dedupe(
    settings: Settings, redis: Any = None, clock: Callable[[], float] = time.monotonic
) -> DedupeStore:
    """The dedupe store the settings ask for: Redis (shared by replicas) when `redis_url` is
    set, on the runtime's client `redis` (or one of its own), else in memory, its leases on
    `clock` (a Redis lease is the server's)."""
    if settings.redis_url:
        from eventfn.stores.dedupe_redis import RedisDedupeStore
        from eventfn.stores.redis import client_for

        return RedisDedupeStore(
            client_for(settings, redis),
            ttl=settings.dedupe_ttl_seconds,
            lease=settings.dedupe_lease_seconds,
        )
    return MemoryDedupeStore(
        ttl=settings.dedupe_ttl_seconds,
        lease=settings.dedupe_lease_seconds,
        max_entries=settings.dedupe_max_entries,
        max_bytes=settings.dedupe_max_bytes,
        clock=clock,
    )


def build_feed_client(settings: Settings, redis: Any = None) -> Any:
    """The Redis client of the live feed (shared by replicas) when `redis_url` is set."""
    if not settings.redis_url:
        return None
    from eventfn.stores.redis import client_for

    return client_for(settings, redis)


class Runtime:
    """Everything a request needs that outlives the request."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        clocks: Clocks = Clocks(),  # noqa: B008 (frozen: one shared default is the point)
    ) -> None:
        # The dedupe window and lease follow the catalogue's delivery policies (unless set).
        settings = following_deliveries(settings, registry.catalogue.deliveries)
        redis = build_redis(settings)  # one client and pool for every store built here
        self.settings = settings
        self.catalogue: Catalogue = registry.catalogue
        self.routes: Mapping[str, Route] = registry.routes()
        self.ready = False
        # The drain, one signal: `begin_drain` flips it (a plain bool: every request reads it),
        # `drain` also runs, once, what must happen before connections close (`on_drain`).
        self.draining = False
        self.on_drain: list[Callable[[], Awaitable[None]]] = []
        self._drained: asyncio.Task[None] | None = None
        self.metrics = Metrics(self.catalogue)
        # The live event feed the WebSocket subscribes to; the dispatcher offers it every event.
        self.feed = LiveFeed(settings, client=build_feed_client(settings, redis))
        self.dedupe = build_dedupe(settings, redis, clocks.monotonic)
        delivery = build_delivery(
            settings, redis=redis, metrics=self.metrics, observe=self.feed.offer
        )
        # None without K_SINK; the dead-letter inbox is always there.
        self.publisher: Publisher | None = delivery.publisher
        self.deadletters: DeadLetterStore = delivery.deadletters
        # The function's own: its settings (validated now: a bad value stops the start-up),
        # its lifespan, and the outgoing client its handlers share.
        self.registry = registry
        self.outgoing = OutgoingHTTP(settings, self.metrics)
        self.dispatcher = Dispatcher(
            self.routes,
            self.dedupe,
            settings,
            metrics=self.metrics,
            observe=self.feed.offer,
            catalogue=self.catalogue,
            emit=None if self.publisher is None else self.publisher.enqueue_all,
            function_settings=registry.build_settings(),
            http=self.outgoing.client,
        )
        auth = build_auth(settings, clocks=clocks)
        # None means deliveries are not authenticated (local development).
        self.delivery_auth: DeliveryAuth | None = auth.delivery
        # None means the facade and WebSocket are open (neither API_KEYS nor OIDC_AUDIENCE set).
        self.facade_auth: FacadeAuth | None = auth.facade
        self.components: list[Component] = [
            self.feed,
            *([auth.verifier] if auth.verifier is not None else []),
            *delivery.components,
            self.outgoing,
        ]
        self.samples: list[Sample] = []
        # While running: what stops the started components, and how many of them were started.
        self._stack: AsyncExitStack | None = None
        self._started = 0

    async def sample(self, metrics: Metrics) -> None:
        """Refresh the numbers that live in the components, right before a scrape of /metrics:
        the dedupe window, the feed's and the outbox's, and those of attached components."""
        for own in self.samples:  # attached components (the WebSocket sessions)
            await own(metrics)
        metrics.dedupe_window_seconds = self.dedupe.window()
        metrics.dedupe_evicted_early = self.dedupe.evicted_early
        metrics.feed_events_dropped = self.feed.overflows
        metrics.feed_subscribers_dropped = self.feed.slow_subscribers
        if self.publisher is not None:
            # A store outage must not fail the scrape: the gauge keeps its last value.
            with contextlib.suppress(Exception):
                metrics.outbox_depth = await self.publisher.outbox.depth()

    def begin_drain(self) -> bool:
        """Stop taking work: readiness 503, new requests 503. False if it had begun already.

        Safe in a signal handler (no awaiting); `drain` does the rest.
        """
        if self.draining:
            return False
        self.draining = True
        self.ready = False
        return True

    async def drain(self, grace: float | None = None) -> None:
        """Begin the drain and run the `on_drain` hooks once (WebSockets answer and close 1001
        before the server closes connections); every caller waits for that one run."""
        self.begin_drain()
        if self._drained is None:
            self._drained = asyncio.create_task(self._run_drain_hooks(grace), name="drain")
        await asyncio.shield(self._drained)

    async def _run_drain_hooks(self, grace: float | None) -> None:
        for hook in self.on_drain:
            try:
                await asyncio.wait_for(hook(), grace)
            except Exception:  # a hook failing must not keep the process from exiting
                log.exception("drain_hook_failed")

    async def attach(
        self,
        component: Component,
        *,
        sample: Sample | None = None,
        on_drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Add a component built after the runtime (the facade's WebSocket sessions).

        It starts now when the runtime is running (else with the others at start-up) and stops
        with them; `sample` feeds GET /metrics, `on_drain` runs when draining starts.
        """
        self.components.append(component)
        if sample is not None:
            self.samples.append(sample)
        if on_drain is not None:
            self.on_drain.append(on_drain)
        await self._start_components()

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
            await self._start_components()
            # The function's own start-up, after the runtime's (its handlers may publish) and
            # before readiness; its shutdown after the drain, before the runtime's stops.
            state = await stack.enter_async_context(
                self.registry.open_lifespan(self.dispatcher.function_settings)
            )
            self.dispatcher.state = state
            self.ready = True
            try:
                yield
            finally:
                # Served by any ASGI server (not only `python -m eventfn`): the drain runs here
                # at the latest, before the components stop.
                await self.drain(self.settings.shutdown_grace_seconds)
                self._stack = None
        log.info("stopped")

    async def _start_components(self) -> None:
        """Start the components registered since the last call; they stop at shutdown.

        Outside the lifespan this does nothing: they wait for it.
        """
        while self._stack is not None and self._started < len(self.components):
            component = self.components[self._started]
            self._started += 1
            await component.start()
            self._stack.push_async_callback(component.stop)
