"""The one retry policy of everything the function sends (publishes and outbox redeliveries).

    2xx                                   delivered
    404 408 409 429 5xx, network errors   retried: exponential backoff, full jitter, capped,
                                          at least what Retry-After asked; same event id
    any other 4xx                         permanent: never retried

Knative's broker retries exactly that status set, so a sink behind a broker behaves the same
whether the broker or this function does the retrying.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

RETRYABLE = frozenset({404, 408, 409, 429})


@dataclass(frozen=True, slots=True)
class Attempt:
    """The result of one HTTP attempt to deliver an event."""

    delivered: bool
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    error: str = ""


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


@dataclass
class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog), capped."""

    base: float
    cap: float
    rng: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Wait before retry number `attempt` (0-based); at least what Retry-After asked."""
        # The exponent is bounded: an outbox event can count thousands of attempts.
        jittered = self.rng() * min(self.cap, self.base * 2 ** min(attempt, 48))
        return float(jittered if retry_after is None else max(jittered, retry_after))
