"""eventfn.testing.LocalBroker: a function's flows through what the Knative Broker does."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import BaseModel

import manifests
from eventfn import (
    CESQL,
    Catalogue,
    Delivery,
    EventSpec,
    Exact,
    Registry,
    Reject,
    Retry,
    Route,
)
from eventfn.core.http import Receive, Scope, Send
from eventfn.testing import LocalBroker, local_broker

ORDER_TYPE = "com.acme.order.placed"
DELIVERY = {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT1S"}


class Order(BaseModel):
    sku: str


class Accepted(BaseModel):
    sku: str


ACCEPTED = EventSpec("com.acme.order.accepted", Accepted, "Accepted.", consumes=True)
ORDER = EventSpec(
    ORDER_TYPE,
    Order,
    "An order.",
    consumes=True,
    reply=ACCEPTED,
    routes=(Route("eu-urgent", Exact("region", "eu"), CESQL("priority > 3")),),
)
CATALOGUE = Catalogue((ORDER, ACCEPTED))


class Shop:
    """The handlers' behaviour this test: `busy` Retry answers first, then an acceptance."""

    def __init__(self, busy: int = 0) -> None:
        self.busy = busy
        self.accepted: list[str] = []

    def registry(self) -> Registry:
        registry = Registry(CATALOGUE)

        @registry.handles(ORDER)
        async def place(order: Order) -> Accepted:
            if order.sku == "unknown":
                raise Reject("unknown SKU")
            if self.busy:
                self.busy -= 1
                raise Retry("busy")
            return Accepted(sku=order.sku)

        @registry.handles(ACCEPTED)
        async def accepted(event: Accepted) -> None:
            self.accepted.append(event.sku)

        return registry


def order(sku: str = "book", **attributes: Any) -> dict[str, Any]:
    """An urgent European order unless `attributes` say otherwise."""
    return {
        "specversion": "1.0",
        "id": f"order-{sku}",
        "source": "/shop",
        "type": ORDER_TYPE,
        "datacontenttype": "application/json",
        "region": "eu",
        "priority": 5,
        **attributes,
        "data": {"sku": sku},
    }


class Sleeps:
    """An injected sleep: records what the broker waits, waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Recorder:
    """An ASGI subscriber that records requests and answers `status` (and `body`, `headers`)."""

    def __init__(self, status: int = 202, body: bytes = b"", headers: Any = ()) -> None:
        self.status, self.body, self.headers = status, body, list(headers)
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def shop_broker(tmp_path: Path, sleeps: Sleeps) -> AsyncIterator[tuple[LocalBroker, Shop]]:
    """The shop function behind a broker of its catalogue's Triggers, retrying 3 times."""
    shop = Shop()
    async with local_broker(
        shop.registry(), settings={"data_dir": tmp_path}, delivery=DELIVERY, sleep=sleeps
    ) as broker:
        yield broker, shop


def catalogue_broker(subscriber: Any, delivery: dict[str, Any], **options: Any) -> LocalBroker:
    """A broker of CATALOGUE's Triggers delivering to `subscriber` (an ASGI app)."""
    return LocalBroker.from_catalogue(CATALOGUE, app=subscriber, delivery=delivery, **options)


# --- Filters and replies ---------------------------------------------------------------------


async def test_a_matching_event_reaches_its_route_and_the_reply_comes_back(
    shop_broker: tuple[LocalBroker, Shop],
) -> None:
    """The order goes to its route's Trigger; its reply re-enters the broker and is delivered."""
    broker, shop = shop_broker
    placed, accepted = await broker.send(order())
    assert placed.trigger == "com-acme-order-placed-eu-urgent"
    assert placed.reply is not None
    assert placed.reply["type"] == ACCEPTED.type
    assert accepted.trigger == "com-acme-order-accepted"
    assert shop.accepted == ["book"]


async def test_an_event_no_filter_passes_is_delivered_nowhere(
    shop_broker: tuple[LocalBroker, Shop],
) -> None:
    """A non-urgent order matches no Trigger: nothing is delivered."""
    broker, shop = shop_broker
    assert await broker.send(order(priority=1)) == []
    assert shop.accepted == []


async def test_the_subscriber_gets_binary_mode_with_prefer_reply_and_no_ttl() -> None:
    """Deliveries are binary, ask for a reply, and carry no knativebrokerttl."""
    recorder = Recorder()
    async with catalogue_broker(recorder, {}) as broker:
        await broker.send(order(knativebrokerttl=7))
    [(headers, body)] = recorder.requests
    assert headers["prefer"] == "reply"
    assert headers["ce-type"] == ORDER_TYPE
    assert "ce-knativebrokerttl" not in headers
    assert orjson.loads(body) == {"sku": "book"}


async def test_replies_stop_at_the_hop_limit() -> None:
    """A subscriber that always replies is cut off when knativebrokerttl reaches 0."""
    echo = Recorder(
        200,
        b'{"sku": "again"}',
        [
            (b"ce-specversion", b"1.0"),
            (b"ce-id", b"r"),
            (b"ce-source", b"/echo"),
            (b"ce-type", ORDER_TYPE.encode()),
            (b"ce-region", b"eu"),
            (b"ce-priority", b"9"),
            (b"content-type", b"application/json"),
        ],
    )
    async with catalogue_broker(echo, {}, ttl=3) as broker:
        dispatches = await broker.send(order())
    assert len(dispatches) == 3
    [(dropped, why)] = broker.dropped
    assert dropped["source"] == "/echo"
    assert "knativebrokerttl" in why


# --- Retries and backoff ---------------------------------------------------------------------


# --8<-- [start:retries]
async def test_a_retry_answer_is_redelivered_with_exponential_backoff(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    """Two 503s then a 200: the broker waited 1 s and 2 s (the Trigger's PT1S, doubling)."""
    shop = Shop(busy=2)
    async with local_broker(
        shop.registry(), settings={"data_dir": tmp_path}, delivery=DELIVERY, sleep=sleeps
    ) as broker:
        placed, _accepted = await broker.send(order())
    assert [a.status for a in placed.attempts] == [503, 503, 200]
    assert sleeps.waits == [1.0, 2.0]
    assert shop.accepted == ["book"]


# --8<-- [end:retries]


async def test_linear_backoff_retries_the_first_time_at_once(sleeps: Sleeps) -> None:
    """Linear: the n-th retry waits delay * (n - 1), as Knative's dispatcher counts."""
    async with catalogue_broker(
        Recorder(500), {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT2S"}, sleep=sleeps
    ) as broker:
        [failed] = await broker.send(order())
    assert [a.waited for a in failed.attempts] == [0.0, 0.0, 2.0, 4.0]
    assert sleeps.waits == [2.0, 4.0]


@pytest.mark.parametrize("status", [404, 408, 409, 429, 500, 502, 503, 504])
async def test_statuses_knative_retries_are_retried(status: int, sleeps: Sleeps) -> None:
    """5xx, 404, 408, 409 and 429 are redelivered until the retries run out."""
    async with catalogue_broker(Recorder(status), DELIVERY, sleep=sleeps) as broker:
        [failed] = await broker.send(order())
    assert [a.status for a in failed.attempts] == [status] * 4


@pytest.mark.parametrize("status", [400, 401, 403, 410, 413, 415, 422])
async def test_other_client_errors_are_not_retried(status: int, sleeps: Sleeps) -> None:
    """Any other 4xx fails at once: one attempt, no wait."""
    async with catalogue_broker(Recorder(status), DELIVERY, sleep=sleeps) as broker:
        [failed] = await broker.send(order())
    assert [a.status for a in failed.attempts] == [status]
    assert sleeps.waits == []


async def test_a_2xx_that_is_not_a_cloudevent_counts_as_a_502(sleeps: Sleeps) -> None:
    """A body that is no event makes the Broker answer 502, which is retried."""
    async with catalogue_broker(Recorder(200, b"hello"), DELIVERY, sleep=sleeps) as broker:
        [failed] = await broker.send(order())
    assert [a.status for a in failed.attempts] == [502] * 4


async def test_retry_after_is_honoured_up_to_retry_after_max(sleeps: Sleeps) -> None:
    """With retryAfterMax, a 429's Retry-After (bounded) replaces a shorter backoff."""
    busy = Recorder(429, headers=[(b"retry-after", b"30")])
    delivery = {**DELIVERY, "retry": 1, "retryAfterMax": "PT10S"}
    async with catalogue_broker(busy, delivery, sleep=sleeps) as broker:
        await broker.send(order())
    assert sleeps.waits == [10.0]


def failing_transport(error: Callable[[httpx.Request], Exception]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error(request)

    return httpx.MockTransport(handler)


async def test_no_response_is_retried_then_dead_lettered_as_a_500(sleeps: Sleeps) -> None:
    """A connection error is retried; the dead letter says 500 and the dispatch error."""
    sink = Recorder()
    delivery = {**DELIVERY, "retry": 1, "deadLetterSink": {"ref": {"name": "dls"}}}
    async with LocalBroker.from_catalogue(
        CATALOGUE,
        subscriber="https://orders.example/",
        delivery=delivery,
        subscribers={"https://orders.example/": "https://orders.example/", "dls": sink},
        transport=failing_transport(lambda r: httpx.ConnectError("refused", request=r)),
        sleep=sleeps,
    ) as broker:
        [failed] = await broker.send(order())
    assert [a.status for a in failed.attempts] == [None, None]
    assert failed.dead_letter is not None
    assert failed.dead_letter["knativeerrorcode"] == 500
    assert base64.b64decode(failed.dead_letter["knativeerrordata"]).startswith(b"dispatch error")


async def test_a_timeout_is_retried(sleeps: Sleeps) -> None:
    """An attempt that times out counts as no response, and is redelivered."""
    delivery = {**DELIVERY, "retry": 2, "timeout": "PT5S"}
    async with LocalBroker.from_catalogue(
        CATALOGUE,
        subscriber="https://orders.example/",
        delivery=delivery,
        subscribers={"https://orders.example/": "https://orders.example/"},
        transport=failing_transport(lambda r: httpx.ReadTimeout("slow", request=r)),
        sleep=sleeps,
    ) as broker:
        [failed] = await broker.send(order())
    assert [a.status for a in failed.attempts] == [None, None, None]
    assert all((a.error or "").startswith("timeout") for a in failed.attempts)
    assert broker.dropped[0][1].endswith("no dead-letter sink")


# --- The dead-letter sink --------------------------------------------------------------------


async def test_a_failure_goes_to_the_dead_letter_sink_with_the_knative_error_extensions() -> None:
    """knativeerrorcode, knativeerrordest and knativeerrordata (the body, base64) are added."""
    sink = Recorder()
    subscriber = Recorder(422, b'{"title": "unknown SKU"}')
    delivery = {"retry": 2, "deadLetterSink": {"ref": {"name": "dls"}}}
    async with catalogue_broker(subscriber, delivery, subscribers={"dls": sink}) as broker:
        [failed] = await broker.send(order())
    [(headers, body)] = sink.requests
    assert headers["ce-knativeerrorcode"] == "422"
    assert headers["ce-knativeerrordest"] == "http://function/"
    assert base64.b64decode(headers["ce-knativeerrordata"]) == b'{"title": "unknown SKU"}'
    assert orjson.loads(body) == {"sku": "book"}
    assert broker.dead_letters == [failed.dead_letter]


async def test_knative_error_data_is_cut_at_1024_characters() -> None:
    """A long error body is kept to its first 1024 base64 characters."""
    subscriber = Recorder(400, b"x" * 5000)
    delivery = {"deadLetterSink": {"ref": {"name": "dls"}}}
    async with catalogue_broker(subscriber, delivery, subscribers={"dls": Recorder()}) as broker:
        [failed] = await broker.send(order())
    assert failed.dead_letter is not None
    assert len(failed.dead_letter["knativeerrordata"]) == 1024


# --8<-- [start:eventing]
async def test_the_rendered_eventing_delivers_and_dead_letters_to_the_function(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    """From `make manifests` output: the route, and a rejected order in the function's DLS."""
    eventing = tmp_path / "eventing"
    manifests.write(eventing, manifests.render(CATALOGUE))
    shop = Shop()
    async with local_broker(
        shop.registry(), eventing=eventing, settings={"data_dir": tmp_path}, sleep=sleeps
    ) as broker:
        placed, _accepted = await broker.send(order())
        [rejected] = await broker.send(order("unknown"))
    assert placed.trigger == f"{manifests.NAME}-com-acme-order-placed-eu-urgent"
    assert [a.status for a in rejected.attempts] == [422]
    assert rejected.dead_letter_status == 202
    assert shop.accepted == ["book"]


# --8<-- [end:eventing]


async def test_a_types_own_delivery_policy_is_its_triggers(sleeps: Sleeps) -> None:
    """Without delivery=, from_catalogue takes EventSpec.delivery (retries, backoff)."""
    spec = EventSpec(ORDER_TYPE, Order, "An order.", consumes=True, delivery=Delivery(2, 0.25))
    async with LocalBroker.from_catalogue(
        Catalogue((spec,)), app=Recorder(503), sleep=sleeps
    ) as broker:
        [failed] = await broker.send(order())
    assert len(failed.attempts) == 3
    assert sleeps.waits == [0.25, 0.5]
