"""The redeliverer: the background loop (a Component) that empties the outbox into the sink.

It runs in every replica. Events are taken one at a time, each with a lease that covers the one
attempt made with it (`RetryPolicy.attempt_lease`; the attempt is cut at its timeout): with the
Redis outbox, replicas share the work without ever sending one event at the same moment, however
long a pass takes. Records the publisher's fast path still owns are not due yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from eventfn.binding import Event
from eventfn.core.errors import StoreUnavailable
from eventfn.delivery.retry import Attempt, RetryPolicy, failure
from eventfn.observability.logs import get_logger
from eventfn.stores.outbox import Outbox

log = get_logger("eventfn.delivery.redeliver")


class Sender(Protocol):
    """What the redeliverer needs from the publisher."""

    @property
    def policy(self) -> RetryPolicy: ...

    async def attempt(self, event: Event) -> Attempt: ...

    async def reject(self, event: Event, result: Attempt) -> None: ...


class Redeliverer:
    """The background loop (a Component) that empties the outbox into the sink.

    Each poll takes up to `batch` due events, one by one, tries each once, and removes,
    reschedules (the sender's policy: exponential backoff with jitter, at least the sink's
    Retry-After) or dead-letters it. Depth, attempts and failures go to the logs.
    """

    def __init__(
        self, outbox: Outbox, sender: Sender, *, poll: float, batch: int, flush: float
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self._poll = poll
        self._batch = batch
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
        policy = self.sender.policy
        taken = delivered = failed = 0
        while taken < self._batch:
            if self._stopping.is_set() and self._task is not None and not self._task.done():
                break  # stopping: the final pass in `stop` takes over
            # One event per take: its lease covers exactly the attempt made with it.
            due = await self.outbox.take_due(1, policy.attempt_lease)
            if not due:
                break
            item = due[0]
            taken += 1
            try:
                result = await self.sender.attempt(item.event)
            except Exception as exc:  # the policy classifies it: one event never stops the loop
                log.exception("outbox_attempt_failed", id=item.event.id)
                result = failure(exc)
            attempts = item.attempts + 1
            if result.delivered:
                delivered += 1
                await self.outbox.remove(item.key)
                log.info("outbox_delivered", id=item.event.id, attempts=attempts)
            elif result.retryable:
                failed += 1
                await self.outbox.reschedule(
                    item.key,
                    attempts=attempts,
                    delay=policy.redelivery_delay(attempts, result.retry_after),
                    error=result.error,
                )
            else:
                failed += 1
                await self.sender.reject(item.event, result)  # dead-lettered, then removed
        if not taken:
            return 0
        depth = await self.outbox.depth()
        log_method = log.warning if failed else log.info
        log_method("outbox_pass", taken=taken, delivered=delivered, failed=failed, depth=depth)
        return delivered
