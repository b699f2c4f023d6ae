"""Publishing to K_SINK (SinkBinding): retries that resend the same event, and nothing lost.

    publish(event) ── written to the outbox first (durable, not due while the fast path runs)
                   ── POST (binary mode, one shared httpx client) ──▶ K_SINK
        2xx                                   delivered: removed from the outbox
        404 408 409 429 5xx, network errors   retried in memory (the fast path): exponential
                                              backoff, full jitter, Retry-After honoured; same
                                              event id every time
        retries exhausted / shutting down     rescheduled in the outbox, redelivered later
        any other 4xx                         permanent: logged as an error and kept as a dead
                                              letter (GET /api/v1/deadletters), never retried
        the process dies                      the outbox record is due once the fast path's
                                              lease is over: the next start (or another
                                              replica, with Redis) redelivers it

Write-ahead: the event is durable before its first attempt, so a crash at any instant loses
nothing (a duplicate downstream is possible, with the same id; a loss is not). The fast path
owns the record for `RetryPolicy.fast_path_lease` and gives up before it ends, so the
redeliverer never sends an event the fast path is still retrying.

Knative's broker retries exactly that status set, so a sink behind a broker behaves the same
whether the broker or this publisher does the retrying. One POST and the reading of its answer
are `eventfn.delivery.sink.SinkClient`'s; what to do about the answer is the publisher's.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from eventfn.binding import Event
from eventfn.core.config import Settings
from eventfn.core.errors import FunctionError, StoreUnavailable
from eventfn.delivery.retry import LEASE_SLACK_SECONDS, Attempt, RetryPolicy
from eventfn.delivery.sink import SinkClient
from eventfn.observability.logs import get_logger
from eventfn.observability.metrics import Metrics
from eventfn.stores.deadletters import DeadLetter, DeadLetterStore, letter_id
from eventfn.stores.outbox import Outbox
from eventfn.stores.records import event_key

if TYPE_CHECKING:  # httpx is imported when a publisher starts (only with K_SINK)
    import httpx

log = get_logger("eventfn.delivery.publisher")
# Seconds a client is told to wait when the outbox cannot write, and readiness stays degraded.
OUTBOX_RETRY_AFTER = 5


def parse_overrides(raw: str | None) -> dict[str, Any]:
    """The extensions of `K_CE_OVERRIDES` (`{"extensions": {...}}`); bad JSON fails at start-up."""
    if not raw:
        return {}
    doc = orjson.loads(raw)
    extensions = doc.get("extensions", {}) if isinstance(doc, dict) else None
    if not isinstance(extensions, dict):
        raise ValueError(  # noqa: TRY004 - a bad setting, reported like other bad settings
            'K_CE_OVERRIDES must be {"extensions": {name: value, ...}}'
        )
    return extensions


class Publisher:
    """Delivers events to K_SINK; a Component (its `SinkClient` owns the one httpx client)."""

    def __init__(
        self,
        settings: Settings,
        *,
        sink: str,
        outbox: Outbox,
        deadletters: DeadLetterStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
        observe: Callable[[Event], None] | None = None,
    ) -> None:
        self.sink = sink
        self.outbox = outbox
        self.deadletters = deadletters
        self._settings = settings
        self._overrides = parse_overrides(settings.k_ce_overrides)
        # Every wait and lease of every send, the redeliverer's too (it reads it from here).
        self.policy = RetryPolicy.from_settings(settings, rng)
        self.client = SinkClient(
            settings,
            sink=sink,
            timeout=self.policy.attempt_timeout,
            transport=transport,
            metrics=metrics,
        )
        self._pending: set[asyncio.Task[str]] = set()
        # When a write-ahead last failed (monotonic seconds): readiness reports the outbox
        # unusable for a while after it (`outbox_failing`).
        self._write_failed_at: float | None = None
        self._stopping = asyncio.Event()
        # Delivery attempts are counted there (GET /metrics).
        self.metrics = metrics
        # Told of every event the sink accepted (the live feed shows published events too).
        self.observe = observe

    async def start(self) -> None:
        await self.client.start()

    async def stop(self) -> None:
        """Flush: pending publishes get `publish_flush_seconds`, then park what is left."""
        self._stopping.set()  # backoff waits end now: undelivered events go to the outbox
        if self._pending:
            log.info("publisher_flushing", pending=len(self._pending))
            _, late = await asyncio.wait(
                self._pending, timeout=self._settings.publish_flush_seconds
            )
            for task in late:
                task.cancel()  # the cancelled publish parks its event on the way out
            if late:
                await asyncio.wait(late, timeout=1.0)
        await self.client.stop()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def prepare(self, event: Event) -> Event:
        """`event` with the K_CE_OVERRIDES extensions applied."""
        if not self._overrides:
            return event
        return Event({**event.attributes, **self._overrides}, event.data, event.json_data)

    async def attempt(self, event: Event) -> Attempt:
        """One POST of `event` (`SinkClient.attempt`), for the redeliverer."""
        return await self.client.attempt(event)

    async def publish(self, event: Event, *, written: bool = False) -> str:
        """Deliver `event` with retries: "delivered", "queued" (in the outbox) or "rejected".

        `written`: `event` (prepared) is in the outbox already, by `enqueue`.
        """
        policy = self.policy
        loop = asyncio.get_running_loop()
        # The fast path stops before its lease ends: then the record is the redeliverer's.
        deadline = loop.time() + policy.fast_path_lease - LEASE_SLACK_SECONDS
        if not written:
            event = self.prepare(event)
            await self._write_ahead(event)
        result = Attempt(False, True, error="not attempted")
        made = 0
        try:
            while made < policy.attempts and loop.time() < deadline:
                result = await self.client.attempt(event)
                made += 1
                if result.delivered:
                    log.debug("published", id=event.id, type=event.type, attempts=made)
                    if self.observe is not None:
                        self.observe(event)
                    await self._forget(event)
                    return "delivered"
                if not result.retryable:
                    await self.reject(event, result)
                    return "rejected"
                log.info("publish_retry", id=event.id, attempt=made, error=result.error)
                delay = policy.retry_delay(made - 1, result.retry_after)
                if delay is None or loop.time() + delay >= deadline or not await self._wait(delay):
                    break
        except asyncio.CancelledError:
            await self.park(event, made, result, delay=0.0)  # a cancelled flush loses nothing
            raise
        await self.park(event, made, result)
        return "queued"

    async def _write_ahead(self, event: Event, *, required: bool = False) -> None:
        """Make `event` durable before its first attempt, not due while the fast path owns it.

        `required`: the caller is about to acknowledge the event (a 202, a facade answer), so a
        failure raises StoreUnavailable (a 503: nothing is acknowledged that cannot be kept).
        Otherwise sending now is still better than not sending; if the fast path fails too,
        `park` tries the outbox again (and counts the loss if it is still down).
        """
        try:
            await self.outbox.park(
                event, attempts=0, delay=self.policy.fast_path_lease, error="in flight"
            )
        except FunctionError as exc:
            self._write_failed_at = time.monotonic()
            if self.metrics is not None:
                self.metrics.outbox_write_failures += 1
            log.warning("outbox_write_ahead_failed", id=event.id, error=exc.detail)
            if required:
                raise StoreUnavailable(
                    "the outbox cannot keep the event to publish; retry later",
                    retry_after=OUTBOX_RETRY_AFTER,
                ) from None
        else:
            self._write_failed_at = None

    @property
    def outbox_failing(self) -> bool:
        """Whether a write-ahead failed within the last `OUTBOX_RETRY_AFTER` seconds."""
        failed = self._write_failed_at
        return failed is not None and time.monotonic() - failed < OUTBOX_RETRY_AFTER

    async def _forget(self, event: Event) -> None:
        """Delivered: drop the durable record (if that fails, a redelivery sends it again)."""
        try:
            await self.outbox.remove(event_key(event.source, event.id))
        except FunctionError as exc:
            log.warning("outbox_remove_failed", id=event.id, error=exc.detail)

    def publish_soon(self, event: Event) -> None:
        """Publish in the background (the caller does not wait); `stop` flushes it."""
        self._spawn(self.publish(event))

    async def enqueue(self, event: Event) -> None:
        """Make `event` durable now and deliver it in the background: the caller waits for the
        outbox, never for the sink. What a caller about to answer uses, so that an answer given
        is an answer published, even if the process dies the next instant; StoreUnavailable
        (503) when the outbox cannot keep it."""
        await self.enqueue_all((event,))

    async def enqueue_all(self, events: Sequence[Event]) -> None:
        """`enqueue` for several events: all are durable before the first is sent."""
        prepared = [self.prepare(event) for event in events]
        for event in prepared:
            await self._write_ahead(event, required=True)
        for event in prepared:
            self._spawn(self.publish(event, written=True))

    def _spawn(self, publish: Coroutine[Any, Any, str]) -> None:
        task = asyncio.get_running_loop().create_task(publish)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[str]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("publish_crashed", error=repr(task.exception()))

    async def _wait(self, delay: float) -> bool:
        """Sleep `delay` seconds; False when shutdown began."""
        try:
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        except TimeoutError:
            return True
        return False

    async def park(
        self, event: Event, attempts: int, result: Attempt, *, delay: float | None = None
    ) -> None:
        """Leave `event` to the outbox, due after the policy's redelivery delay (or `delay`).

        The loss is logged as an error if even that fails.
        """
        if delay is None:
            delay = self.policy.redelivery_delay(attempts, result.retry_after)
        try:
            await self.outbox.park(event, attempts=attempts, delay=delay, error=result.error)
        except FunctionError as exc:
            if self.metrics is not None:
                self.metrics.events_lost += 1
            log.exception("event_lost", id=event.id, type=event.type, error=exc.detail)
            raise
        log.warning("publish_parked", id=event.id, type=event.type, error=result.error)

    async def reject(self, event: Event, result: Attempt) -> None:
        """A permanent 4xx: retrying cannot help; keep the event as a dead letter."""
        log.error(
            "publish_rejected", id=event.id, type=event.type, sink=self.sink, error=result.error
        )
        if self.deadletters is not None:
            letter = DeadLetter(
                letter_id(event), time.time(), event, self.sink, result.status, result.error[:1024]
            )
            try:
                await self.deadletters.add(letter)
            except FunctionError:
                # The dead-letter store is down: the outbox keeps the event instead of losing it
                # (its redelivery meets the same 4xx later and dead-letters it then).
                await self.park(event, self.policy.attempts, result)
                return
            if self.metrics is not None:
                self.metrics.dead_letter_stored()  # counted like the broker's dead letters
        await self._forget(event)
