"""The handler's contract: errors that steer the broker, events it emits, its event's context,
its own settings, lifespan and outgoing client.

An "orders" function of the suite's own: `order.placed` (replied with `order.accepted`) whose
handler rejects an unknown SKU, asks for a retry while pricing is down, and emits
`inventory.reserve` events; every door (ingress, facade, WebSocket) answers the same way.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventfn import (
    Catalogue,
    EventContext,
    EventSpec,
    Registry,
    Reject,
    Retry,
    create_app,
)
from eventfn.dispatch import dispatcher
from eventfn.testing import app_client, isolated_settings
from tests.helpers.faults import fill, tmpfs
from tests.helpers.live import function_socket, receive, send, socket
from tests.helpers.sink import Sink, running_sink
from tests.helpers.support import captured_logs


class Order(BaseModel):
    sku: str
    quantity: int = 1


class Accepted(BaseModel):
    order: str
    price: float


class Reserve(BaseModel):
    sku: str
    quantity: int


class Audit(BaseModel):
    note: str


class OrderSettings(BaseSettings):
    """The function's own settings: what `make manifests` renders into the ConfigMap."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_")
    pricing_url: str = "http://pricing.invalid"
    discount: float = 0.0


ACCEPTED = EventSpec("com.example.order.accepted", Accepted, "An order was accepted.")
ORDER = EventSpec(
    "com.example.order.placed", Order, "An order.", consumes=True, reply=ACCEPTED, name="order"
)
RESERVE = EventSpec("com.example.inventory.reserve", Reserve, "Reserve stock for an order.")
AUDIT = EventSpec("com.example.audit", Audit, "Audited.", consumes=True)
UNDECLARED = EventSpec("com.example.undeclared", Reserve, "In no catalogue.")
CATALOGUE = Catalogue((ORDER, RESERVE, AUDIT))
PRICES = {"book": 12.5, "pen": 1.0}


class Behaviour:
    """What the handlers do this test (and what they saw)."""

    def __init__(self) -> None:
        self.pricing_up = True
        self.fail_after_emit = False
        self.emit_undeclared = False
        self.calls = 0
        self.contexts: list[EventContext] = []


def orders_registry(behaviour: Behaviour, *, settings: type[BaseSettings] | None = None) -> Any:
    registry = Registry(CATALOGUE, settings=settings)

    @registry.handles(ORDER)
    async def place(order: Order, ctx: EventContext) -> Accepted:
        behaviour.calls += 1
        behaviour.contexts.append(ctx)
        if order.sku not in PRICES:
            raise Reject(f"unknown SKU {order.sku!r}")
        if not behaviour.pricing_up:
            raise Retry("the pricing service is down", retry_after=5)
        await ctx.publish(RESERVE, Reserve(sku=order.sku, quantity=order.quantity))
        await ctx.publish(RESERVE, Reserve(sku=order.sku, quantity=0), subject="hold")
        if behaviour.emit_undeclared:
            await ctx.publish(UNDECLARED, Reserve(sku=order.sku, quantity=1))
        if behaviour.fail_after_emit:
            raise RuntimeError("boom")
        return Accepted(order=ctx.idempotency_key, price=PRICES[order.sku] * order.quantity)

    @registry.handles(AUDIT)
    async def audit(note: Audit) -> None:
        if note.note == "gone":
            raise Reject("the audited thing is gone", status=410)
        if note.note == "busy":
            raise Retry("too busy", status=429, retry_after=2.5)
        if note.note == "bug":
            raise KeyError("internal detail that must not leak")

    return registry


def binary(data: Any, *, type: str = ORDER.type, id: str | None = None, **ext: str) -> dict:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": id or str(uuid.uuid4()),
        "ce-source": "/shop",
        "ce-type": type,
        "content-type": "application/json",
        "prefer": "reply",
    }
    headers.update({f"ce-{k}": v for k, v in ext.items()})
    return {"headers": headers, "content": orjson.dumps(data)}


@contextlib.asynccontextmanager
async def orders(
    tmp_path: Path, behaviour: Behaviour, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        isolated_settings(data_dir=tmp_path, **settings), registry=orders_registry(behaviour)
    )
    async with app_client(app) as client:
        yield client


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as started:
        yield started


# -- errors that steer the broker -----------------------------------------------------------


async def test_reject_is_a_422_with_the_handlers_detail(tmp_path: Path) -> None:
    """`Reject` answers 422 problem+json carrying its detail: the broker dead-letters at once."""
    async with orders(tmp_path, Behaviour()) as client:
        response = await client.post("/", **binary({"sku": "nope"}))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "retry-after" not in response.headers
    problem = response.json()
    assert problem["type"].endswith("/rejected")
    assert problem["detail"] == "unknown SKU 'nope'"


async def test_reject_takes_another_4xx_the_broker_does_not_retry(tmp_path: Path) -> None:
    """`Reject(status=410)` answers 410."""
    async with orders(tmp_path, Behaviour()) as client:
        response = await client.post("/", **binary({"note": "gone"}, type=AUDIT.type))
    assert response.status_code == 410
    assert response.json()["detail"] == "the audited thing is gone"


@pytest.mark.parametrize("status", [200, 404, 408, 409, 429, 500, 503])
def test_reject_refuses_a_status_the_broker_would_retry_or_that_is_no_error(status: int) -> None:
    """A Reject with a retried 4xx (or no 4xx at all) is a programming error, said at once."""
    with pytest.raises(ValueError, match="Reject takes a 4xx"):
        Reject("x", status=status)


async def test_retry_is_a_503_with_retry_after(tmp_path: Path) -> None:
    """`Retry(retry_after=5)` answers 503 with `Retry-After: 5` and the detail."""
    behaviour = Behaviour()
    behaviour.pricing_up = False
    async with orders(tmp_path, behaviour) as client:
        response = await client.post("/", **binary({"sku": "book"}))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"] == "the pricing service is down"


async def test_retry_may_answer_429_and_rounds_retry_after_up(tmp_path: Path) -> None:
    """`Retry(status=429, retry_after=2.5)` answers 429 with `Retry-After: 3`."""
    async with orders(tmp_path, Behaviour()) as client:
        response = await client.post("/", **binary({"note": "busy"}, type=AUDIT.type))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"


def test_retry_answers_503_or_429_only() -> None:
    """Any other status for a Retry is a programming error."""
    with pytest.raises(ValueError, match="503 or 429"):
        Retry("x", status=500)


async def test_any_other_exception_stays_a_500_that_discloses_nothing(tmp_path: Path) -> None:
    """A handler's own exception is `500 handler-failed`, its text kept out of the answer."""
    async with orders(tmp_path, Behaviour()) as client:
        response = await client.post("/", **binary({"note": "bug"}, type=AUDIT.type))
    assert response.status_code == 500
    assert response.json()["type"].endswith("/handler-failed")
    assert "internal detail" not in response.text


async def test_a_rejected_event_runs_again_only_if_redelivered(tmp_path: Path) -> None:
    """A Reject releases the claim: the same event delivered again runs the handler again."""
    behaviour = Behaviour()
    request = binary({"sku": "nope"}, id="same")
    async with orders(tmp_path, behaviour) as client:
        first = await client.post("/", **request)
        second = await client.post("/", **request)
    assert (first.status_code, second.status_code) == (422, 422)
    assert behaviour.calls == 2


async def test_the_facade_answers_what_the_handler_raised(tmp_path: Path) -> None:
    """`POST /api/v1/order` answers Reject's 422 and Retry's 503 + Retry-After too."""
    behaviour = Behaviour()
    async with orders(tmp_path, behaviour) as client:
        rejected = await client.post("/api/v1/order", json={"sku": "nope"})
        behaviour.pricing_up = False
        retried = await client.post("/api/v1/order", json={"sku": "book"})
    assert rejected.status_code == 422
    assert rejected.json()["detail"] == "unknown SKU 'nope'"
    assert retried.status_code == 503
    assert retried.headers["retry-after"] == "5"


async def test_the_websocket_answers_what_the_handler_raised(tmp_path: Path) -> None:
    """A WebSocket query gets the Reject's problem (422, its detail) as its error message."""
    registry = orders_registry(Behaviour())
    async with (
        function_socket(registry, data_dir=tmp_path) as (_, address),
        socket(address) as ws,
    ):
        await send(ws, {"id": "q1", "type": "order", "data": {"sku": "nope"}})
        message = await receive(ws)
    assert message["type"] == "error"
    assert message["error"]["status"] == 422
    assert message["error"]["detail"] == "unknown SKU 'nope'"


async def test_the_rejects_detail_reaches_the_dead_letter_inbox(tmp_path: Path) -> None:
    """What the broker dead-letters (the 422's body as `knativeerrordata`) shows the detail."""
    async with orders(tmp_path, Behaviour()) as client:
        request = binary({"sku": "nope"}, id="bad-sku")
        rejected = await client.post("/", **request)
        # The broker's dead-letter delivery: the event plus the knativeerror* extensions.
        letter = dict(request["headers"])
        letter["ce-knativeerrorcode"] = str(rejected.status_code)
        letter["ce-knativeerrordest"] = "http://orders.default.svc/"
        letter["ce-knativeerrordata"] = base64.b64encode(rejected.content).decode()
        stored = await client.post("/deadletter", headers=letter, content=request["content"])
        assert stored.status_code == 202
        page = (await client.get("/api/v1/deadletters")).json()
    (item,) = page["items"]
    assert item["error"]["code"] == 422
    assert "unknown SKU 'nope'" in item["error"]["data"]


# -- the event's context --------------------------------------------------------------------


async def test_the_context_carries_the_events_attributes(tmp_path: Path, sink: Sink) -> None:
    """id, source, type, subject, time, extensions and the trace reach the handler."""
    behaviour = Behaviour()
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    request = binary(
        {"sku": "book"}, id="o-1", subject="cart-7", time="2026-12-04T10:00:00Z",
        tenant="acme", traceparent=trace,
    )  # fmt: skip
    async with orders(tmp_path, behaviour, k_sink=sink.url) as client:
        response = await client.post("/", **request)
    assert response.status_code == 200
    (ctx,) = behaviour.contexts
    assert (ctx.id, ctx.source, ctx.type) == ("o-1", "/shop", ORDER.type)
    assert (ctx.subject, ctx.time) == ("cart-7", "2026-12-04T10:00:00Z")
    assert dict(ctx.extensions) == {"tenant": "acme", "traceparent": trace}
    assert ctx.traceparent == trace
    assert ctx.broker is True


async def test_the_idempotency_key_is_the_same_for_every_delivery_of_an_event(
    tmp_path: Path,
) -> None:
    """Two deliveries of one event share a key; another event gets another key."""
    behaviour = Behaviour()
    behaviour.pricing_up = False  # 503: the claim is released, so the retry runs again
    async with orders(tmp_path, behaviour) as client:
        await client.post("/", **binary({"sku": "book"}, id="o-1"))
        await client.post("/", **binary({"sku": "book"}, id="o-1"))
        await client.post("/", **binary({"sku": "book"}, id="o-2"))
    first, again, other = (c.idempotency_key for c in behaviour.contexts)
    assert first == again != other


async def test_a_facade_call_gets_a_context_without_broker_attributes(
    tmp_path: Path, sink: Sink
) -> None:
    """The facade's context: its request id and route, no subject, time or extensions."""
    behaviour = Behaviour()
    async with orders(tmp_path, behaviour, k_sink=sink.url) as client:
        response = await client.post(
            "/api/v1/order", json={"sku": "book"}, headers={"x-request-id": "req-9"}
        )
    assert response.status_code == 200
    (ctx,) = behaviour.contexts
    assert (ctx.id, ctx.source, ctx.broker) == ("req-9", "/api/v1/order", False)
    assert (ctx.subject, ctx.time, dict(ctx.extensions)) == (None, None, {})


def test_a_handler_that_cannot_be_called_fails_at_registration() -> None:
    """A parameter nothing would fill is refused when the handler registers, not per event."""
    registry = Registry(CATALOGUE)
    with pytest.raises(TypeError, match="nothing is passed to 'tenant'"):

        @registry.handles(AUDIT)
        async def audit(note: Audit, tenant: str) -> None: ...


def test_postponed_annotations_are_resolved_at_registration() -> None:
    """Under `from __future__ import annotations` (this module) the context is still found."""
    registry = Registry(CATALOGUE)

    @registry.handles(AUDIT)
    async def audit(note: Audit, ctx: EventContext) -> None: ...

    @registry.handles(ORDER)
    async def place(order: Order) -> None: ...

    assert audit.__annotations__["ctx"] == "EventContext"
    routes = registry.routes()
    assert (routes[AUDIT.type].context, routes[ORDER.type].context) == ("ctx", None)


# -- emitting events --------------------------------------------------------------------------


async def test_emitted_events_reach_k_sink_with_ids_from_the_request(
    tmp_path: Path, sink: Sink
) -> None:
    """Both emitted events reach K_SINK, with ids derived from (source, id, position)."""
    async with orders(tmp_path, Behaviour(), k_sink=sink.url) as client:
        response = await client.post("/", **binary({"sku": "book", "quantity": 2}, id="o-1"))
        assert response.status_code == 200
        received = await sink.wait_for(2)
    # Sent side by side in the background: they may arrive in either order.
    by_quantity = {orjson.loads(r.body)["quantity"]: r for r in received}
    assert sorted(by_quantity) == [0, 2]
    assert {r.headers["ce-type"] for r in received} == {RESERVE.type}
    assert by_quantity[0].headers["ce-subject"] == "hold"
    ids = {r.id for r in received}
    # The same request elsewhere (another replica, after a crash) derives the same ids.
    async with orders(tmp_path / "other", Behaviour(), k_sink=sink.url) as client:
        await client.post("/", **binary({"sku": "book", "quantity": 2}, id="o-1"))
        again = await sink.wait_for(4)
    assert {r.id for r in again[2:]} == ids
    assert len(ids) == 2


async def test_a_redelivered_event_emits_nothing_again(tmp_path: Path, sink: Sink) -> None:
    """A handled event delivered again is answered from the dedupe store: no second emit."""
    behaviour = Behaviour()
    request = binary({"sku": "book"}, id="o-1")
    async with orders(tmp_path, behaviour, k_sink=sink.url) as client:
        first = await client.post("/", **request)
        second = await client.post("/", **request)
        await sink.wait_for(2)
    assert first.json() == second.json()
    assert behaviour.calls == 1
    assert len(sink.ids()) == 2


async def test_a_handler_that_fails_emits_nothing(tmp_path: Path, sink: Sink) -> None:
    """Events emitted before the handler raised never leave."""
    behaviour = Behaviour()
    behaviour.fail_after_emit = True
    async with orders(tmp_path, behaviour, k_sink=sink.url) as client:
        response = await client.post("/", **binary({"sku": "book"}))
        behaviour.fail_after_emit = False
        await client.post("/", **binary({"sku": "pen"}))  # a successful one, to wait on
        received = await sink.wait_for(2)
    assert response.status_code == 500
    assert {orjson.loads(r.body)["sku"] for r in received} == {"pen"}


async def test_the_facade_emits_like_the_ingress(tmp_path: Path, sink: Sink) -> None:
    """A facade call's emitted events and its answer event all reach K_SINK."""
    async with orders(tmp_path, Behaviour(), k_sink=sink.url) as client:
        response = await client.post("/api/v1/order", json={"sku": "pen"})
        received = await sink.wait_for(3)
    assert response.status_code == 200
    assert sorted(r.headers["ce-type"] for r in received) == sorted(
        [ACCEPTED.type, RESERVE.type, RESERVE.type]
    )


async def test_emitting_an_undeclared_type_fails_the_handler(tmp_path: Path, sink: Sink) -> None:
    """A type the catalogue does not declare as produced is a 500, and nothing leaves."""
    behaviour = Behaviour()
    behaviour.emit_undeclared = True
    async with orders(tmp_path, behaviour, k_sink=sink.url) as client:
        with captured_logs(dispatcher) as logs:
            response = await client.post("/", **binary({"sku": "book"}))
    assert response.status_code == 500
    assert sink.ids() == []
    (failed,) = [line for line in logs if line["event"] == "handler_failed"]
    assert failed["error"] == "UndeclaredEvent"


async def test_emitting_without_k_sink_is_a_clear_error(tmp_path: Path) -> None:
    """Without K_SINK an emitting handler fails (500) rather than dropping what it emitted, and
    the handler's log line says why."""
    behaviour = Behaviour()
    async with orders(tmp_path, behaviour) as client:
        with captured_logs(dispatcher) as logs:
            response = await client.post("/", **binary({"sku": "book"}))
    assert response.status_code == 500
    (failed,) = [line for line in logs if line["event"] == "handler_failed"]
    assert (failed["type"], failed["error"]) == (ORDER.type, "RuntimeError")
    # What that RuntimeError says (its traceback is in the line): the context of a function
    # without K_SINK refuses to emit, naming the variable.
    context = EventContext(
        id="1", source="/s", type=ORDER.type, catalogue=CATALOGUE, event_source="/f", can_emit=False
    )
    with pytest.raises(RuntimeError, match="K_SINK is not set"):
        await context.publish(RESERVE, Reserve(sku="book", quantity=1))


async def test_emitted_events_are_counted(tmp_path: Path, sink: Sink) -> None:
    """`function_events_emitted` counts what handlers emitted."""
    async with orders(tmp_path, Behaviour(), k_sink=sink.url) as client:
        await client.post("/", **binary({"sku": "book"}))
        metrics = (await client.get("/metrics")).text
    assert "function_events_emitted_total 2.0" in metrics


# -- the function's own settings, lifespan and outgoing client --------------------------------


async def test_the_functions_settings_are_read_and_handed_to_handlers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Registry(..., settings=Model)` is built from the environment; handlers see it."""
    monkeypatch.setenv("ORDERS_PRICING_URL", "http://pricing.shop.svc")
    behaviour = Behaviour()
    registry = orders_registry(behaviour, settings=OrderSettings)
    app = create_app(isolated_settings(data_dir=tmp_path), registry=registry)
    async with app_client(app) as client:
        await client.post("/api/v1/order", json={"sku": "nope"})
    (ctx,) = behaviour.contexts
    assert isinstance(ctx.settings, OrderSettings)
    assert ctx.settings.pricing_url == "http://pricing.shop.svc"


def test_a_bad_setting_of_the_function_stops_the_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value that fails the function's settings model fails `create_app`, naming it."""
    monkeypatch.setenv("ORDERS_DISCOUNT", "a lot")
    registry = orders_registry(Behaviour(), settings=OrderSettings)
    with pytest.raises(ValidationError, match="discount"):
        create_app(isolated_settings(data_dir=tmp_path), registry=registry)


async def test_the_lifespan_opens_before_readiness_and_closes_after_the_drain(
    tmp_path: Path,
) -> None:
    """The function's lifespan runs inside the runtime's; handlers see what it yielded."""
    seen: list[str] = []
    registry = Registry(CATALOGUE)

    @registry.lifespan
    async def clients(settings: Any) -> AsyncIterator[dict[str, str]]:
        seen.append("open")
        yield {"pricing": "client"}
        seen.append("closed")

    @registry.handles(ORDER)
    async def place(order: Order, ctx: EventContext) -> Accepted:
        seen.append(ctx.state["pricing"])
        return Accepted(order="o", price=1.0)

    @registry.handles(AUDIT)
    async def audit(note: Audit) -> None: ...

    app = create_app(isolated_settings(data_dir=tmp_path), registry=registry)
    async with app_client(app) as client:
        ready = await client.get("/health/readiness")
        await client.post("/", **binary({"sku": "book"}))
        assert seen == ["open", "client"]
    assert ready.status_code == 200
    assert seen == ["open", "client", "closed"]


def test_a_registry_has_one_lifespan() -> None:
    """A second lifespan is refused: one function, one start-up."""
    registry = Registry(CATALOGUE)

    @registry.lifespan
    async def first(settings: Any) -> AsyncIterator[None]:
        yield

    with pytest.raises(ValueError, match="one per function"):

        @registry.lifespan
        async def second(settings: Any) -> AsyncIterator[None]:
            yield


async def test_the_outgoing_client_carries_the_trace_and_counts_by_host(tmp_path: Path) -> None:
    """`ctx.http` sends the event's traceparent and is counted per host in /metrics."""
    registry = Registry(CATALOGUE)
    seen: list[httpx.Request] = []

    @registry.handles(ORDER)
    async def place(order: Order, ctx: EventContext) -> Accepted:
        response = await ctx.http.get("http://pricing.test/price", params={"sku": order.sku})
        return Accepted(order="o", price=response.json()["price"])

    @registry.handles(AUDIT)
    async def audit(note: Audit) -> None: ...

    def pricing(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"price": 9.5})

    app = create_app(isolated_settings(data_dir=tmp_path), registry=registry)
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with respx.mock(assert_all_called=True) as mock:
        mock.get("http://pricing.test/price").mock(side_effect=pricing)
        async with app_client(app) as client:
            response = await client.post("/", **binary({"sku": "book"}, traceparent=trace))
            metrics = (await client.get("/metrics")).text
    assert response.json()["price"] == 9.5
    assert seen[0].headers["traceparent"] == trace
    assert 'function_outgoing_requests_total{host="pricing.test",status="2xx"} 1.0' in metrics


# -- nothing acknowledged that cannot be kept -------------------------------------------------


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test: a DATA_DIR that can be filled up."""
    with tmpfs(size="2m") as mount:
        yield mount


@pytest.mark.chaos
async def test_a_full_disk_answers_503_and_acknowledges_nothing(
    small_disk: Path, sink: Sink
) -> None:
    """With the outbox unable to write, an emitting event is 503 (retried), readiness says so,
    the failure is counted; once the disk has room, the broker's retry emits and answers."""
    behaviour = Behaviour()
    request = binary({"sku": "book"}, id="o-full")
    async with orders(small_disk, behaviour, k_sink=sink.url) as client:
        filler = fill(small_disk)
        refused = await client.post("/", **request)
        ready = await client.get("/health/readiness")
        metrics = (await client.get("/metrics")).text
        filler.unlink()
        retried = await client.post("/", **request)
        received = await sink.wait_for(2)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert (ready.status_code, ready.json()["status"]) == (503, "outbox-unavailable")
    assert "function_outbox_write_failures_total 1.0" in metrics
    assert retried.status_code == 200
    assert behaviour.calls == 2  # the 503 released the claim: the retry ran the handler again
    assert len({r.id for r in received}) == 2


@pytest.mark.chaos
async def test_a_full_disk_does_not_acknowledge_an_unrequested_reply(
    small_disk: Path, sink: Sink
) -> None:
    """A delivery without `Prefer: reply` whose reply cannot be kept for K_SINK is 503, not 202;
    its retry gets the stored reply published."""
    request = binary({"note": "fine"}, type=AUDIT.type)
    registry = Registry(CATALOGUE)

    @registry.handles(ORDER)
    async def place(order: Order) -> Accepted:
        return Accepted(order="o", price=1.0)

    @registry.handles(AUDIT)
    async def audit(note: Audit) -> None: ...

    app = create_app(isolated_settings(data_dir=small_disk, k_sink=sink.url), registry=registry)
    order = binary({"sku": "pen"}, id="o-unrequested")
    del order["headers"]["prefer"]
    async with app_client(app) as client:
        filler = fill(small_disk)
        refused = await client.post("/", **order)
        filler.unlink()
        retried = await client.post("/", **order)
        (published,) = await sink.wait_for(1)
        assert (await client.post("/", **request)).status_code == 202
    assert refused.status_code == 503
    assert retried.status_code == 202
    assert published.headers["ce-type"] == ACCEPTED.type
