"""The orders example behind a local Knative Broker: its Trigger, its retries, its reply."""

from __future__ import annotations

from pathlib import Path

# --8<-- [start:broker]
from eventfn.testing import local_broker
from examples.orders.functions import registry


def order(event_id: str, sku: str) -> dict:
    """A structured CloudEvent of an order, as a producer sends it to the Broker."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "/shop",
        "type": "com.example.order.placed",
        "data": {"sku": sku, "quantity": 1},
    }


async def test_an_unknown_sku_is_not_retried(tmp_path: Path) -> None:
    """The broker does not retry a Reject: one attempt, answered 422, no reply."""
    async with local_broker(registry, settings={"data_dir": tmp_path}) as broker:
        [dispatch] = await broker.send(order("1", "kite"))
    assert [attempt.status for attempt in dispatch.attempts] == [422]
    assert dispatch.reply is None


# --8<-- [end:broker]


async def test_a_known_sku_is_answered_through_the_broker(tmp_path: Path) -> None:
    """A good order reaches its Trigger and the acceptance comes back as the reply."""
    # Nothing listens at K_SINK: the emitted inventory.reserve waits in the outbox.
    settings = {"data_dir": tmp_path, "k_sink": "http://127.0.0.1:9/"}
    async with local_broker(registry, settings=settings) as broker:
        [dispatch] = await broker.send(order("2", "book"))
    assert dispatch.delivered
    assert dispatch.reply is not None
    assert dispatch.reply["type"] == "com.example.order.accepted"
