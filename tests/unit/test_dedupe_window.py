"""The dedupe window follows the delivery policy the manifests render, not a round number."""

from __future__ import annotations

import re

from eventfn.core import policy
from eventfn.core.config import Settings
from manifests import objects
from tests.functions import CATALOGUE


def rendered_delivery() -> dict[str, object]:
    spec = CATALOGUE.consumed[0]
    delivery: dict[str, object] = objects.trigger(spec)["spec"]["delivery"]
    return delivery


def seconds(duration: object) -> float:
    found = re.fullmatch(r"PT([0-9.]+)S", str(duration))
    assert found is not None
    return float(found.group(1))


def test_the_trigger_renders_the_policy_the_window_is_derived_from() -> None:
    """The Trigger's retry, backoff policy and delay are the policy module's numbers."""
    delivery = rendered_delivery()
    assert delivery["retry"] == policy.RETRY
    assert delivery["backoffPolicy"] == policy.BACKOFF_POLICY
    assert seconds(delivery["backoffDelay"]) == policy.BACKOFF_DELAY_SECONDS


def test_the_default_ttl_outlives_the_longest_redelivery_of_the_rendered_trigger() -> None:
    """Every redelivery the broker can make (each attempt up to the handler timeout) is seen."""
    delivery, settings = rendered_delivery(), Settings()
    retry, delay = int(str(delivery["retry"])), seconds(delivery["backoffDelay"])
    waits = sum(delay * 2**attempt for attempt in range(retry))
    longest = waits + (retry + 1) * settings.handler_timeout_seconds
    assert settings.dedupe_ttl_seconds >= policy.MARGIN * longest
    assert settings.dedupe_ttl_seconds < 3600  # hours of keys would cost memory for nothing


def test_the_window_is_whole_minutes() -> None:
    """The derived window is rounded up to a whole minute."""
    assert policy.dedupe_window(30) == 420
    assert policy.dedupe_window(1) % 60 == 0
