"""The redeliverer: the background loop (a Component) that empties the outbox into the sink.

It runs in every replica. With the Redis outbox, `take_due` leases each event to one replica at a
time, so replicas share the work without sending an event twice at the same moment.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from eventfn.binding import Event
from eventfn.core.errors import StoreUnavailable
from eventfn.delivery.retry import Attempt, Backoff
from eventfn.observability.logs import get_logger
from eventfn.stores.outbox import Outbox

log = get_logger("eventfn.delivery.redeliver")


class Sender(Protocol):
    """What the redeliverer needs from the publisher."""

    @property
    def backoff(self) -> Backoff: ...

    async def attempt(self, event: Event) -> Attempt: ...

    async def reject(self, event: Event, result: Attempt) -> None: ...


class Redeliverer:
    """The background loop (a Component) that empties the outbox into the sink.

    Each poll takes the due events, tries each once, and removes, reschedules (exponential
    backoff with jitter, at least the sink's Retry-After) or dead-letters it. Depth, attempts and
    failures go to the logs.
    """

    def __init__(
        self, outbox: Outbox, sender: Sender, *, poll: float, batch: int, lease: float,
        backoff_max: float, flush: float,
    ) -> None:  # fmt: skip
        self.outbox = outbox
        self.sender = sender
        self._poll = poll
        self._batch = batch
        self._lease = lease
        self._backoff_max = backoff_max
        self._flush = flush
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="outbox-redeliver")

    async def stop(self) -> None:
        """Stop polling, then give the due events one last chance within the flush budget."""
        self._stopping.set()
        if self._task is not None:
            # The loop ends at its next check; cancelling is only the fallback for a stuck pass.
            done, _ = await asyncio.wait({self._task}, timeout=self._flush)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
        try:
            async with asyncio.timeout(self._flush):
                await self.run_once()
        except (TimeoutError, StoreUnavailable):
            log.warning("outbox_flush_incomplete")

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except StoreUnavailable:
                pass  # already logged where it happened; the next poll tries again
            except Exception:  # a bug must not stop redelivery for the life of the process
                log.exception("outbox_loop_failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._stopping.wait()

    async def run_once(self) -> int:
        """One pass over the due events; returns how many were delivered."""
        due = await self.outbox.take_due(self._batch, self._lease)
        if not due:
            return 0
        delivered = failed = 0
        for item in due:
            if self._stopping.is_set() and self._task is not None and not self._task.done():
                break  # the rest stays leased and is due again right after the lease
            result = await self.sender.attempt(item.event)
            attempts = item.attempts + 1
            if result.delivered:
                delivered += 1
                await self.outbox.remove(item.key)
                log.info("outbox_delivered", id=item.event.id, attempts=attempts)
            elif result.retryable:
                failed += 1
                delay = min(self._backoff_max, self.sender.backoff.delay(attempts, None))
                delay = max(delay, result.retry_after or 0.0)
                await self.outbox.reschedule(
                    item.key, attempts=attempts, delay=delay, error=result.error
                )
            else:
                failed += 1
                await self.sender.reject(item.event, result)
                await self.outbox.remove(item.key)
        depth = await self.outbox.depth()
        log_method = log.warning if failed else log.info
        log_method("outbox_pass", taken=len(due), delivered=delivered, failed=failed, depth=depth)
        return delivered
