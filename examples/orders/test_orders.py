"""The orders example through the doors a user tries first: `POST /` and the facade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import respx

from examples.orders.functions import AUDIT_TRAIL, PRICING

SINK = "http://sink.example/"


@pytest.fixture
def sink() -> Iterator[respx.Route]:
    """K_SINK, answering 202 to every event the function publishes."""
    with respx.mock(assert_all_called=False) as mock:
        yield mock.post(SINK).mock(return_value=httpx.Response(202))


@pytest.fixture
def pricing_down() -> Iterator[None]:
    """The pricing service is unreachable for the test."""
    PRICING.up = False
    yield
    PRICING.up = True


# --8<-- [start:test]
from eventfn.testing import function_client  # noqa: E402
from examples.orders.functions import registry  # noqa: E402


def order_event(event_id: str, data: bytes, event_type: str = "com.example.order.placed") -> dict:
    """The request parts of a binary-mode CloudEvent, as a Broker delivers it."""
    headers = {
        "prefer": "reply",  # every Broker delivery says so: the reply goes in the response
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/me",
        "ce-type": event_type,
        "content-type": "application/json",
    }
    return {"headers": headers, "content": data}


async def test_an_order_is_accepted_and_its_stock_reserved(tmp_path: Path, sink) -> None:
    """A placed order gets its acceptance as the reply, and inventory.reserve goes to K_SINK."""
    async with function_client(registry, data_dir=tmp_path, k_sink=SINK) as client:
        response = await client.post("/", **order_event("1", b'{"sku": "book", "quantity": 2}'))
    assert response.status_code == 200
    assert response.headers["ce-type"] == "com.example.order.accepted"
    assert response.json()["total_cents"] == 2400
    published = sink.calls.last.request  # the app's shutdown flushed the publisher
    assert published.headers["ce-type"] == "com.example.inventory.reserve"
    assert orjson.loads(published.content) == {"sku": "book", "quantity": 2}


# --8<-- [end:test]


async def test_a_redelivered_order_is_the_same_order(tmp_path: Path, sink) -> None:
    """Two deliveries of one event get one order id (the idempotency key) and one reply."""
    event = order_event("2", b'{"sku": "pen", "quantity": 1}')
    async with function_client(registry, data_dir=tmp_path, k_sink=SINK) as client:
        first = await client.post("/", **event)
        again = await client.post("/", **event)
    assert first.json() == again.json()


async def test_an_unknown_sku_is_rejected_for_the_dead_letters(tmp_path: Path, sink) -> None:
    """An unknown SKU is a 422 problem (Reject): not retried, and nothing is published."""
    async with function_client(registry, data_dir=tmp_path, k_sink=SINK) as client:
        response = await client.post("/", **order_event("3", b'{"sku": "kite", "quantity": 1}'))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "kite" in response.json()["detail"]
    assert not sink.called


@pytest.mark.usefixtures("pricing_down")
async def test_a_pricing_outage_asks_the_broker_to_retry(tmp_path: Path, sink) -> None:
    """With pricing down the order is a 503 with Retry-After (Retry): the broker redelivers."""
    async with function_client(registry, data_dir=tmp_path, k_sink=SINK) as client:
        response = await client.post("/", **order_event("4", b'{"sku": "book", "quantity": 1}'))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert not sink.called


async def test_an_audit_record_is_acknowledged_without_a_reply(tmp_path: Path) -> None:
    """An audit record is handled and answered 202 with no body."""
    body = b'{"actor": "ada", "action": "login"}'
    async with function_client(registry, data_dir=tmp_path) as client:
        response = await client.post("/", **order_event("5", body, "com.example.audit.recorded"))
    assert response.status_code == 202
    assert response.content == b""
    assert "ada did login" in AUDIT_TRAIL


async def test_the_facade_serves_the_named_type(tmp_path: Path, sink) -> None:
    """`POST /api/v1/order` answers the reply's data."""
    async with function_client(registry, data_dir=tmp_path, k_sink=SINK) as client:
        response = await client.post("/api/v1/order", json={"sku": "book", "quantity": 2})
    assert response.status_code == 200
    assert response.json()["total_cents"] == 2400


@pytest.mark.parametrize("data", [b'{"sku": "", "quantity": 2}', b'{"sku": "book", "quantity": 0}'])
async def test_an_invalid_order_is_a_400_problem(tmp_path: Path, data: bytes) -> None:
    """An order that fails its model is a 400 problem+json: the broker dead-letters it."""
    async with function_client(registry, data_dir=tmp_path) as client:
        response = await client.post("/", **order_event("6", data))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
