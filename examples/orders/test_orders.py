"""The orders example through the doors a user tries first: `POST /` and the facade."""

from __future__ import annotations

import pytest

# --8<-- [start:test]
from eventfn.testing import function_client
from examples.orders.functions import AUDIT_TRAIL, registry


def order_event(event_id: str, data: bytes, event_type: str = "com.example.order.placed") -> dict:
    """The request parts of a binary-mode CloudEvent."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/me",
        "ce-type": event_type,
        "content-type": "application/json",
    }
    return {"headers": headers, "content": data}


async def test_an_order_is_answered_with_its_acceptance(tmp_path) -> None:
    """A placed order gets 200 and a com.example.order.accepted reply event."""
    async with function_client(registry, data_dir=tmp_path) as client:
        response = await client.post("/", **order_event("1", b'{"sku": "book", "quantity": 2}'))
    assert response.status_code == 200
    assert response.headers["ce-type"] == "com.example.order.accepted"
    assert response.json() == {"order_id": "book-2"}


# --8<-- [end:test]


async def test_an_audit_record_is_acknowledged_without_a_reply(tmp_path) -> None:
    """An audit record is handled and answered 202 with no body."""
    body = b'{"actor": "ada", "action": "login"}'
    async with function_client(registry, data_dir=tmp_path) as client:
        response = await client.post("/", **order_event("2", body, "com.example.audit.recorded"))
    assert response.status_code == 202
    assert response.content == b""
    assert "ada did login" in AUDIT_TRAIL


async def test_the_facade_serves_the_named_type(tmp_path) -> None:
    """`POST /api/v1/order` answers the reply's data."""
    async with function_client(registry, data_dir=tmp_path) as client:
        response = await client.post("/api/v1/order", json={"sku": "book", "quantity": 2})
    assert response.status_code == 200
    assert response.json() == {"order_id": "book-2"}


@pytest.mark.parametrize("data", [b'{"sku": "", "quantity": 2}', b'{"sku": "book", "quantity": 0}'])
async def test_an_invalid_order_is_a_400_problem(tmp_path, data: bytes) -> None:
    """An order that fails its model is a 400 problem+json: the broker dead-letters it."""
    async with function_client(registry, data_dir=tmp_path) as client:
        response = await client.post("/", **order_event("3", data))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
