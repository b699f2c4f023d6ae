"""A function of three event types: every door serves every type, with nothing naming one.

    com.example.order.placed   -> com.example.order.accepted    a reply (named `order`)
    com.example.audit.recorded                                  fire-and-forget: 202, no reply
    com.example.stock.checked  -> com.example.stock.level       a second reply type, unnamed

The core behaviours of the ingress, the facade, the WebSocket, the API descriptions and the
manifests, run against this catalogue: what a user gets after "Adding an event type".
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel, ConfigDict, Field

import manifests
from eventfn import Catalogue, EventSpec, Registry
from eventfn.testing import app_client
from tests.helpers.live import function_socket, receive, send, socket
from tests.helpers.support import (
    BATCH,
    STRUCTURED,
    binary_headers,
    dumps,
    event_json,
    make_app,
    new_id,
    suite_settings,
)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)


class Accepted(BaseModel):
    order: str


class Audit(BaseModel):
    actor: str


class StockQuery(BaseModel):
    sku: str


class StockLevel(BaseModel):
    sku: str
    level: int


ACCEPTED = EventSpec("com.example.order.accepted", Accepted, "An order was accepted.")
ORDER = EventSpec(
    "com.example.order.placed", Order, "An order.", consumes=True, reply=ACCEPTED, name="order"
)
AUDIT = EventSpec("com.example.audit.recorded", Audit, "An audit record.", consumes=True)
LEVEL = EventSpec("com.example.stock.level", StockLevel, "How many are in stock.")
STOCK = EventSpec(
    "com.example.stock.checked", StockQuery, "A stock check.", consumes=True, reply=LEVEL
)
CATALOGUE = Catalogue((ORDER, AUDIT, STOCK))
CONSUMED = sorted(s.type for s in (ORDER, AUDIT, STOCK))


class Calls:
    """The three handlers, counting what they handled."""

    def __init__(self) -> None:
        self.orders: list[str] = []
        self.audits: list[str] = []
        self.registry = Registry(CATALOGUE)
        self.registry.handles(ORDER)(self.order)
        self.registry.handles(AUDIT)(self.audit)
        self.registry.handles(STOCK)(self.stock)

    async def order(self, order: Order) -> Accepted:
        self.orders.append(order.sku)
        return Accepted(order=f"{order.quantity} x {order.sku}")

    async def audit(self, audit: Audit) -> None:
        self.audits.append(audit.actor)

    async def stock(self, query: StockQuery) -> StockLevel:
        return StockLevel(sku=query.sku, level=7)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def client(calls: Calls) -> Any:
    async with app_client(make_app(suite_settings(), registry=calls.registry)) as c:
        yield c


ORDER_DATA = {"sku": "book", "quantity": 2}


async def post_binary(client: httpx.AsyncClient, spec: EventSpec, data: Any, **kw: Any) -> Any:
    return await client.post("/", headers=binary_headers(type=spec.type, **kw), content=dumps(data))


# -------------------------------------------------------------------------------------------
# The ingress
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "data", "reply"),
    [
        (ORDER, ORDER_DATA, {"order": "2 x book"}),
        (STOCK, {"sku": "pen"}, {"sku": "pen", "level": 7}),
    ],
    ids=["order", "stock"],
)
async def test_each_reply_type_answers_200_with_its_own_reply(
    client: httpx.AsyncClient, spec: EventSpec, data: Any, reply: Any
) -> None:
    """A binary event of a type with a reply gets 200 and the reply event of that type."""
    response = await post_binary(client, spec, data)
    assert response.status_code == 200
    assert spec.reply is not None
    assert response.headers["ce-type"] == spec.reply.type
    assert response.json() == reply


async def test_a_fire_and_forget_type_answers_202(client: httpx.AsyncClient, calls: Calls) -> None:
    """A consumed type without a reply runs its handler and answers 202 with no body."""
    response = await post_binary(client, AUDIT, {"actor": "ada"})
    assert response.status_code == 202
    assert response.content == b""
    assert calls.audits == ["ada"]


async def test_a_structured_event_of_any_type_is_answered_in_structured_mode(
    client: httpx.AsyncClient,
) -> None:
    """Structured mode serves every type: the reply comes back as a structured event."""
    event = event_json({"sku": "pen"}, type=STOCK.type)
    response = await client.post("/", headers={"content-type": STRUCTURED}, content=dumps(event))
    assert response.status_code == 200
    assert response.json()["type"] == LEVEL.type


async def test_a_batch_of_mixed_types_gets_the_replies_of_those_that_have_one(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    """A batch of the three types answers the two replies, in order; the audit is handled."""
    batch = [
        event_json(ORDER_DATA, type=ORDER.type),
        event_json({"actor": "ada"}, type=AUDIT.type),
        event_json({"sku": "pen"}, type=STOCK.type),
    ]
    response = await client.post("/", headers={"content-type": BATCH}, content=dumps(batch))
    assert response.status_code == 200
    assert [e["type"] for e in response.json()] == [ACCEPTED.type, LEVEL.type]
    assert calls.audits == ["ada"]


async def test_redeliveries_of_each_type_are_answered_without_running_again(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    """The dedupe serves every type: the same reply again, or 202 again, and one handler run."""
    order_id, audit_id = new_id(), new_id()
    first = await post_binary(client, ORDER, ORDER_DATA, id=order_id)
    again = await post_binary(client, ORDER, ORDER_DATA, id=order_id)
    assert again.headers["ce-id"] == first.headers["ce-id"]
    assert (await post_binary(client, AUDIT, {"actor": "a"}, id=audit_id)).status_code == 202
    assert (await post_binary(client, AUDIT, {"actor": "a"}, id=audit_id)).status_code == 202
    assert calls.orders == ["book"]
    assert calls.audits == ["a"]


async def test_an_unknown_type_lists_every_consumed_type(client: httpx.AsyncClient) -> None:
    """A type outside the catalogue is a 400 naming the three accepted types."""
    response = await post_binary(client, LEVEL, {"sku": "x", "level": 1})
    assert response.status_code == 400
    assert response.json()["accepted_types"] == CONSUMED


async def test_each_type_is_validated_by_its_own_model(client: httpx.AsyncClient) -> None:
    """An order with a stock-check payload fails the order's schema, field by field."""
    response = await post_binary(client, ORDER, {"sku": "pen"})
    assert response.status_code == 400
    assert [e["loc"] for e in response.json()["errors"]] == [["data", "quantity"]]


async def test_a_result_from_a_fire_and_forget_handler_is_a_500() -> None:
    """A handler of a type without a reply that returns something is a bug: 500, retried."""
    registry = Registry(Catalogue((AUDIT,)))

    @registry.handles(AUDIT)
    async def chatty(audit: Audit) -> Audit:
        return audit

    async with app_client(make_app(suite_settings(), registry=registry)) as client:
        response = await post_binary(client, AUDIT, {"actor": "a"})
    assert response.status_code == 500


# -------------------------------------------------------------------------------------------
# The facade
# -------------------------------------------------------------------------------------------


async def test_every_consumed_type_has_its_facade_route(client: httpx.AsyncClient) -> None:
    """/api/v1/order (named), /api/v1/events/<type> (unnamed); 204 for the one without reply."""
    order = await client.post("/api/v1/order", json=ORDER_DATA)
    stock = await client.post(f"/api/v1/events/{STOCK.type}", json={"sku": "pen"})
    audit = await client.post(f"/api/v1/events/{AUDIT.type}", json={"actor": "ada"})
    assert (order.status_code, order.json()) == (200, {"order": "2 x book"})
    assert (stock.status_code, stock.json()) == (200, {"sku": "pen", "level": 7})
    assert (audit.status_code, audit.content) == (204, b"")


async def test_a_facade_route_validates_with_its_type_model(client: httpx.AsyncClient) -> None:
    """A bad body is 400 problem+json listing the field errors of that type's model."""
    response = await client.post("/api/v1/order", json={"sku": "book", "quantity": 0})
    assert response.status_code == 400
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "quantity"]]


async def test_a_plain_json_post_to_root_asks_the_default_type(client: httpx.AsyncClient) -> None:
    """Not a CloudEvent: POST / with plain JSON is the first consumed type's facade route."""
    response = await client.post("/", json=ORDER_DATA)
    assert (response.status_code, response.json()) == (200, {"order": "2 x book"})


async def test_openapi_documents_every_type_with_its_schemas(client: httpx.AsyncClient) -> None:
    """Each facade route is in /openapi.json with its request model and, if any, its reply."""
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    schemas = document["components"]["schemas"]
    order = paths["/api/v1/order"]["post"]
    assert order["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("Order")
    assert order["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "Accepted"
    )
    assert "204" in paths[f"/api/v1/events/{AUDIT.type}"]["post"]["responses"]
    assert f"/api/v1/events/{STOCK.type}" in paths
    assert {"Order", "Accepted", "Audit", "StockQuery", "StockLevel"} <= set(schemas)


async def test_schemas_lists_the_five_types_with_their_direction(
    client: httpx.AsyncClient,
) -> None:
    """/api/v1/schemas: three consumed, two produced, and each one's JSON Schema."""
    listed = (await client.get("/api/v1/schemas")).json()["types"]
    directions = {t["type"]: t["direction"] for t in listed}
    assert directions == {
        ORDER.type: "consumed",
        ACCEPTED.type: "produced",
        AUDIT.type: "consumed",
        STOCK.type: "consumed",
        LEVEL.type: "produced",
    }
    schema = (await client.get(f"/api/v1/schemas/{AUDIT.type}")).json()
    assert schema["title"] == AUDIT.type


async def test_asyncapi_describes_a_message_for_every_consumed_type(
    client: httpx.AsyncClient,
) -> None:
    """The WebSocket's AsyncAPI document has one message per consumed type, by message type."""
    document = (await client.get("/api/v1/asyncapi.json")).json()
    messages = document["channels"]["ws"]["messages"]
    assert {"order", AUDIT.type, STOCK.type} <= set(messages)
    assert messages["order"]["payload"]["properties"]["type"] == {"const": "order"}
    result = messages["result"]["payload"]["properties"]["data"]["oneOf"]
    assert {s.get("title") for s in result} >= {ACCEPTED.type, LEVEL.type}


# -------------------------------------------------------------------------------------------
# The WebSocket
# -------------------------------------------------------------------------------------------


async def test_the_websocket_handles_each_type_by_its_message_type(calls: Calls) -> None:
    """`type` names the event type to handle (short name or type); `data` or inline fields."""
    async with function_socket(calls.registry) as (_, address), socket(address) as ws:
        await send(ws, {"id": "1", "type": "order", **ORDER_DATA})
        await send(ws, {"id": "2", "type": STOCK.type, "data": {"sku": "pen"}})
        await send(ws, {"id": "3", "type": AUDIT.type, "actor": "ada"})
        await send(ws, {"id": "4", "sku": "mug", "quantity": 1})  # no type: the default
        got = {m["id"]: m for m in [await receive(ws) for _ in range(4)]}
    assert got["1"]["data"] == {"order": "2 x book"}
    assert got["2"]["data"] == {"sku": "pen", "level": 7}
    assert (got["3"]["type"], got["3"]["data"]) == ("result", None)
    assert got["4"]["data"] == {"order": "1 x mug"}
    assert calls.audits == ["ada"]


async def test_an_unknown_websocket_message_type_lists_what_may_be_asked(calls: Calls) -> None:
    """An unknown `type` is an error naming every consumed type and the control messages."""
    async with function_socket(calls.registry) as (_, address), socket(address) as ws:
        await send(ws, {"id": "1", "type": LEVEL.type})
        message = await receive(ws)
    assert message["type"] == "error"
    assert set(message["error"]["accepted_types"]) >= {"order", AUDIT.type, STOCK.type, "ping"}


# -------------------------------------------------------------------------------------------
# The manifests
# -------------------------------------------------------------------------------------------


def test_the_manifests_have_a_trigger_per_consumed_type_and_an_event_type_for_all() -> None:
    """make manifests renders three Triggers and five EventTypes and schema files."""
    files = manifests.render(CATALOGUE, suite_settings())
    triggers = {f for f in files if f.startswith("trigger-")}
    event_types = {f for f in files if f.startswith("eventtype-")}
    assert triggers == {f"trigger-{s.slug}.yaml" for s in (ORDER, AUDIT, STOCK)}
    assert event_types == {
        f"eventtype-{s.slug}.yaml" for s in (ORDER, ACCEPTED, AUDIT, STOCK, LEVEL)
    }
    assert orjson.loads(files[f"schemas/{AUDIT.slug}.json"])["title"] == AUDIT.type
