"""The one retry policy of everything the function sends (publishes and outbox redeliveries).

`RetryPolicy` decides every wait: the publisher's in-memory retries, the delay of an event it
hands to the outbox, and the redeliverer's reschedules; and the leases that keep two senders off
one event.

    2xx                                   delivered
    404 408 409 429 5xx, network errors   retried: exponential backoff, full jitter, capped,
                                          at least what Retry-After asked; same event id
    any other 4xx                         permanent: never retried
    the event cannot be sent at all       permanent (`failure`): an event no header can carry
                                          fails the same way every time; dead-lettered at once

Knative's broker retries exactly that status set, so a sink behind a broker behaves the same
whether the broker or this function does the retrying.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventfn.core.config import Settings

RETRYABLE = frozenset({404, 408, 409, 429})


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one HTTP attempt to deliver an event."""

    delivered: bool
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    error: str = ""


def failure(error: Exception) -> Attempt:
    """The attempt an exception ended before any answer came: permanent when the event itself
    is at fault (a `ClientError`: it cannot be encoded, so every try fails alike), else retried
    like a network error (with backoff: never a loop that crashes on one event for ever)."""
    from eventfn.core.errors import ClientError

    permanent = isinstance(error, ClientError)
    return Attempt(False, not permanent, error=f"{type(error).__name__}: {error}"[:1024])


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# Slack added to the leases below: the event loop's own delays, a clock read late.
LEASE_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """When to try an event again, for every sender of the process: one object, three users.

    - the publisher's fast path: `attempts` tries in memory, `retry_delay` between them (None:
      stop and leave the event to the outbox);
    - the publisher parking an event whose fast path is over, and the redeliverer rescheduling a
      failed redelivery: `redelivery_delay`;
    - the leases that keep two senders off one event: `fast_path_lease` (the whole fast path, the
      durable record is not due before it ends) and `attempt_lease` (one redelivery attempt).
    """

    base: float
    cap: float
    attempts: int
    attempt_timeout: float
    redelivery_cap: float
    rng: Callable[[], float] = field(default=random.random)

    @classmethod
    def from_settings(
        cls, settings: Settings, rng: Callable[[], float] = random.random
    ) -> RetryPolicy:
        return cls(
            base=settings.publish_backoff_seconds,
            cap=settings.publish_backoff_max_seconds,
            attempts=settings.publish_attempts,
            attempt_timeout=settings.publish_timeout_seconds,
            redelivery_cap=settings.outbox_backoff_max_seconds,
            rng=rng,
        )

    def _jittered(self, attempt: int, cap: float) -> float:
        # The exponent is bounded: an outbox event can count thousands of attempts.
        return float(self.rng() * min(cap, self.base * 2 ** min(attempt, 48)))

    def retry_delay(self, attempt: int, retry_after: float | None) -> float | None:
        """The wait before fast-path retry `attempt + 1` (0-based), or None: give up for now.

        None after the last attempt, and when the sink asked for more than `cap` (Retry-After):
        the outbox waits that long instead of a task holding the event in memory.
        """
        if attempt + 1 >= self.attempts:
            return None
        delay = self._jittered(attempt, self.cap)
        if retry_after is not None:
            if retry_after > self.cap:
                return None
            delay = max(delay, retry_after)
        return delay

    def redelivery_delay(self, attempts: int, retry_after: float | None) -> float:
        """The wait before the next redelivery of an event already tried `attempts` times."""
        return max(self._jittered(attempts, self.redelivery_cap), retry_after or 0.0)

    @property
    def fast_path_lease(self) -> float:
        """How long the fast path may own an event: every attempt and every wait, bounded."""
        return (
            self.attempts * self.attempt_timeout
            + (self.attempts - 1) * self.cap
            + (LEASE_SLACK_SECONDS)
        )

    @property
    def attempt_lease(self) -> float:
        """How long one redelivery attempt may own an event (the attempt is cut at its timeout)."""
        return self.attempt_timeout + LEASE_SLACK_SECONDS
