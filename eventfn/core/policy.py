"""The broker's delivery policy, and the dedupe window that follows from it.

`make manifests` renders these into every Trigger and the Broker (`spec.delivery`); the function
derives from the same numbers how long it must remember a handled event. A redelivery is only
recognised while the event's record lives, so the window must cover the broker's whole retry
span: every attempt may run up to the handler's time budget, and the waits between attempts
grow exponentially from the first backoff.
"""

from __future__ import annotations

import math

# Broker redelivery: 5 retries, exponential from 0.5 s (0.5 + 1 + 2 + 4 + 8 s), then the
# dead-letter sink.
RETRY = 5
BACKOFF_POLICY = "exponential"
BACKOFF_DELAY_SECONDS = 0.5
# The window is this many times the longest span, rounded up to a whole minute: clocks, queues
# in front of the function and the broker's own dispatch delays are not in the formula.
MARGIN = 2.0


def backoff_delay() -> str:
    """The backoff delay as Knative spells it (ISO 8601 duration)."""
    return f"PT{BACKOFF_DELAY_SECONDS:g}S"


def backoff_span(retry: int = RETRY, delay: float = BACKOFF_DELAY_SECONDS) -> float:
    """Seconds the broker waits in all between the first attempt and the last."""
    if BACKOFF_POLICY == "exponential":
        return delay * ((1 << retry) - 1)
    return delay * retry  # pragma: no cover - linear: the same delay each time


def redelivery_span(handler_timeout: float, retry: int = RETRY) -> float:
    """Longest time from the first delivery of an event to its last redelivery's answer."""
    return backoff_span(retry) + (retry + 1) * handler_timeout


def dedupe_window(handler_timeout: float, retry: int = RETRY) -> float:
    """The dedupe TTL: the longest redelivery span with the margin, in whole minutes."""
    return math.ceil(redelivery_span(handler_timeout, retry) * MARGIN / 60) * 60
