"""The broker's delivery policy, and the dedupe window that follows from it.

`make manifests` renders these into every Trigger and the Broker (`spec.delivery`); the function
derives from the same numbers how long it must remember a handled event. A redelivery is only
recognised while the event's record lives, so the window must cover the broker's whole retry
span: every attempt may run up to the handler's time budget, and the waits between attempts
grow exponentially from the first backoff.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BrokerDelivery:
    """How the broker redelivers an event the function did not take: a Trigger's `delivery`.

    `retry` retries after the first attempt, `backoff_policy` exponential (Knative: the n-th
    retry waits backoff_delay * 2**(n-1)) or linear (backoff_delay * n), then the dead-letter
    sink; `timeout`, when set, bounds each attempt (Knative's `delivery.timeout`). The manifests
    render exactly this; the dedupe claim lease and window are derived from it. A consumed type
    may carry its own (`EventSpec(delivery=Delivery(retry=2, backoff_delay=1.0))`).
    """

    retry: int
    backoff_delay: float
    backoff_policy: Literal["exponential", "linear"] = "exponential"
    timeout: float | None = None

    def __post_init__(self) -> None:
        if self.retry < 1:
            raise ValueError("retry must be 1 or more: the claim lease derives from the retries")
        if self.backoff_delay <= 0 or (self.timeout is not None and self.timeout <= 0):
            raise ValueError("backoff_delay and timeout are positive numbers of seconds")
        if self.backoff_policy not in ("exponential", "linear"):
            raise ValueError(
                f"backoff_policy is exponential or linear, not {self.backoff_policy!r}"
            )

    @property
    def iso_backoff_delay(self) -> str:
        """`backoffDelay` as the ISO 8601 duration the Trigger spells it."""
        return f"PT{self.backoff_delay:g}S"

    def wait(self, n: int) -> float:
        """Seconds the broker waits before retry `n` (0 for the first retry)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * (n + 1)
        return float(self.backoff_delay * 2**n)

    def retry_offsets(self) -> list[float]:
        """When each retry comes, in seconds after the first attempt (request times left out)."""
        offsets, at = [], 0.0
        for n in range(self.retry):
            at += self.wait(n)
            offsets.append(at)
        return offsets

    def to_trigger(self) -> dict[str, object]:
        """The Trigger's `delivery` fields for this policy (the dead-letter sink added apart)."""
        fields: dict[str, object] = {
            "retry": self.retry,
            "backoffPolicy": self.backoff_policy,
            "backoffDelay": self.iso_backoff_delay,
        }
        if self.timeout is not None:
            fields["timeout"] = f"PT{self.timeout:g}S"
        return fields

    def claim_lease(self) -> float:
        """The dedupe claim lease this delivery policy allows: half its last retry interval.

        A claim orphaned by a replica that died (or by a Redis stall that ran the claim after
        the client gave up) then expires before the broker's last retry, whichever earlier
        attempt orphaned it: the event costs a retry or two, never a dead letter unhandled. A
        handler that works longer keeps its claim by renewing it (every third of the lease).
        """
        return self.wait(self.retry - 1) / 2

    def span(self, handler_timeout: float) -> float:
        """Longest time from the first delivery of an event to its last redelivery's answer."""
        attempt = handler_timeout if self.timeout is None else min(self.timeout, handler_timeout)
        return sum(self.wait(n) for n in range(self.retry)) + (self.retry + 1) * attempt


# A consumed type's own delivery policy, as function authors spell it (`eventfn.Delivery`).
Delivery = BrokerDelivery


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


def window_for(deliveries: Iterable[BrokerDelivery], handler_timeout: float) -> float:
    """The dedupe TTL for Triggers with these policies: the longest span wins, so a redelivery
    of any type is still recognised (with the margin, in whole minutes)."""
    longest = max((d.span(handler_timeout) for d in deliveries), default=0.0)
    return math.ceil(longest * MARGIN / 60) * 60


def lease_for(deliveries: Iterable[BrokerDelivery]) -> float:
    """The claim lease for Triggers with these policies: the shortest lease wins, so a claim
    orphaned on any type still expires before that type's last retry (the store has one)."""
    return min((d.claim_lease() for d in deliveries), default=BROKER_DELIVERY.claim_lease())
