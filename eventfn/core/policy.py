"""The broker's delivery policy, and the dedupe window that follows from it.

`make manifests` renders these into every Trigger and the Broker (`spec.delivery`); the function
derives from the same numbers how long it must remember a handled event. A redelivery is only
recognised while the event's record lives, so the window must cover the broker's whole retry
span: every attempt may run up to the handler's time budget, and the waits between attempts
grow exponentially from the first backoff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BrokerDelivery:
    """How the broker redelivers an event the function did not take: the Triggers' `delivery`.

    `retry` retries after the first attempt, exponential from `backoff_delay` seconds (Knative:
    the n-th retry waits backoff_delay * 2**(n-1)), then the dead-letter sink. The manifests
    render exactly this, and the dedupe claim lease is derived from it (`claim_lease`).
    """

    retry: int
    backoff_delay: float

    @property
    def iso_backoff_delay(self) -> str:
        """`backoffDelay` as the ISO 8601 duration the Trigger spells it."""
        return f"PT{self.backoff_delay:g}S"

    def retry_offsets(self) -> list[float]:
        """When each retry comes, in seconds after the first attempt (request times left out)."""
        offsets, at = [], 0.0
        for n in range(self.retry):
            at += self.backoff_delay * 2**n
            offsets.append(at)
        return offsets

    def claim_lease(self) -> float:
        """The dedupe claim lease this delivery policy allows: half its last retry interval.

        A claim orphaned by a replica that died (or by a Redis stall that ran the claim after
        the client gave up) then expires before the broker's last retry, whichever earlier
        attempt orphaned it: the event costs a retry or two, never a dead letter unhandled. A
        handler that works longer keeps its claim by renewing it (every third of the lease).
        """
        return float(self.backoff_delay * 2 ** (self.retry - 1) / 2)


# The broker's redelivery of the rendered Triggers and Broker: 5 retries, 0.5+1+2+4+8 s.
BROKER_DELIVERY = BrokerDelivery(retry=5, backoff_delay=0.5)

RETRY = BROKER_DELIVERY.retry
BACKOFF_POLICY = "exponential"
BACKOFF_DELAY_SECONDS = BROKER_DELIVERY.backoff_delay
# The window is this many times the longest span, rounded up to a whole minute: clocks, queues
# in front of the function and the broker's own dispatch delays are not in the formula.
MARGIN = 2.0


def backoff_delay() -> str:
    """The backoff delay as Knative spells it (ISO 8601 duration)."""
    return BROKER_DELIVERY.iso_backoff_delay


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
