"""Publishing to K_SINK: binary mode, retries on Knative's retryable statuses, nothing lost.

The retry logic is driven with respx (the sink's answers are scripted); the stores behind the
publisher (SQLite outbox and dead letters in tmp_path) are real. The facade test publishes to a
real local HTTP sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx

from eventfn.binding import Event
from eventfn.delivery.publisher import Publisher
from eventfn.delivery.retry import RetryPolicy, parse_retry_after
from eventfn.dispatch.replies import reply_id
from eventfn.stores.deadletters import SQLiteDeadLetterStore
from eventfn.stores.outbox import SQLiteOutbox
from eventfn.testing import app_client
from tests.functions import ASK
from tests.helpers.sink import running_sink
from tests.helpers.support import (
    RESPONSE,
    cloud_event,
    free_port,
    make_app,
    query,
    suite_client,
    suite_settings,
    until,
)

SINK = "http://sink.test/events"


def event(**extra: Any) -> Event:
    """A published event with JSON data."""
    return cloud_event(b'{"result":{"answer":42}}', source="/tests/publisher", **extra)


@pytest.fixture
async def publisher(tmp_path: Path) -> AsyncIterator[Publisher]:
    """A started publisher with real SQLite outbox and dead letters, no jitter, short waits."""
    settings = suite_settings(
        k_sink=SINK,
        data_dir=tmp_path,
        publish_attempts=3,
        publish_backoff_seconds=0.01,
        publish_backoff_max_seconds=2.0,
        k_ce_overrides='{"extensions": {"cluster": "test-1"}}',
    )
    outbox = SQLiteOutbox(tmp_path / "outbox.sqlite3")
    deadletters = SQLiteDeadLetterStore(tmp_path / "deadletters.sqlite3")
    p = Publisher(settings, sink=SINK, outbox=outbox, deadletters=deadletters, rng=lambda: 1.0)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()
        await outbox.stop()
        await deadletters.stop()


def statuses(*codes: int, **headers: str) -> list[httpx.Response]:
    return [httpx.Response(code, headers=headers) for code in codes]


@respx.mock
async def test_503_503_202_is_delivered_once_with_the_same_id(publisher: Publisher) -> None:
    """Two 503s then 202: three attempts, all the same event id, delivered, nothing parked."""
    route = respx.post(SINK).mock(side_effect=statuses(503, 503, 202))
    sent = event()
    assert await publisher.publish(sent) == "delivered"
    assert route.call_count == 3
    assert {call.request.headers["ce-id"] for call in route.calls} == {sent.id}
    assert await publisher.outbox.depth() == 0


@respx.mock
async def test_events_are_sent_in_binary_mode_with_k_ce_overrides(publisher: Publisher) -> None:
    """Attributes travel as ce- headers (plus the K_CE_OVERRIDES extensions), data as the body."""
    route = respx.post(SINK).mock(return_value=httpx.Response(202))
    sent = event(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    await publisher.publish(sent)
    request = route.calls.last.request
    assert request.headers["ce-specversion"] == "1.0"
    assert request.headers["ce-type"] == RESPONSE
    assert request.headers["ce-source"] == "/tests/publisher"
    assert request.headers["ce-cluster"] == "test-1"
    assert request.headers["ce-traceparent"] == sent.attributes["traceparent"]
    assert request.headers["content-type"] == "application/json"
    assert request.content == sent.data


@pytest.mark.parametrize("status", [404, 408, 409, 429, 500, 502, 504])
@respx.mock
async def test_knative_retryable_statuses_are_retried(publisher: Publisher, status: int) -> None:
    """404, 408, 409, 429 and 5xx are retried, like the broker does."""
    route = respx.post(SINK).mock(side_effect=statuses(status, 200))
    assert await publisher.publish(event()) == "delivered"
    assert route.call_count == 2


@respx.mock
async def test_connection_errors_are_retried(publisher: Publisher) -> None:
    """A refused connection or a timeout is retried like a 503."""
    route = respx.post(SINK).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(202)]
    )
    assert await publisher.publish(event()) == "delivered"
    assert route.call_count == 3


@respx.mock
async def test_retry_after_is_honoured(publisher: Publisher) -> None:
    """A 429 with Retry-After: 1 makes the next attempt wait at least one second."""
    waits: list[float] = []

    async def wait(delay: float) -> bool:  # the backoff's wait, recorded instead of slept
        waits.append(delay)
        return True

    publisher._wait = wait  # type: ignore[method-assign]
    route = respx.post(SINK).mock(
        side_effect=[httpx.Response(429, headers={"retry-after": "1"}), httpx.Response(202)]
    )
    assert await publisher.publish(event()) == "delivered"
    assert route.call_count == 2
    assert len(waits) == 1
    assert waits[0] >= 1.0


@respx.mock
async def test_a_retry_after_beyond_the_cap_parks_the_event_for_later(publisher: Publisher) -> None:
    """A Retry-After longer than the backoff cap parks the event instead of holding a task."""
    route = respx.post(SINK).mock(return_value=httpx.Response(503, headers={"retry-after": "120"}))
    assert await publisher.publish(event()) == "queued"
    assert route.call_count == 1
    assert await publisher.outbox.depth() == 1
    assert await publisher.outbox.take_due(10, 1.0) == []  # not due before Retry-After


@respx.mock
async def test_exhausted_retries_park_the_event_in_the_outbox(publisher: Publisher) -> None:
    """After the last attempt fails the event is parked (durably) with its last error."""
    route = respx.post(SINK).mock(return_value=httpx.Response(503, text="sink overloaded"))
    sent = event()
    assert await publisher.publish(sent) == "queued"
    assert route.call_count == 3
    assert await publisher.outbox.depth() == 1


@respx.mock
async def test_a_permanent_4xx_is_not_retried_and_becomes_a_dead_letter(
    publisher: Publisher,
) -> None:
    """A 400 is final: one attempt, nothing parked, the event kept as a dead letter."""
    route = respx.post(SINK).mock(return_value=httpx.Response(400, text="bad event"))
    sent = event()
    assert await publisher.publish(sent) == "rejected"
    assert route.call_count == 1
    assert await publisher.outbox.depth() == 0
    assert publisher.deadletters is not None
    letters, _ = await publisher.deadletters.page(10, None)
    assert [(letter.event.id, letter.code, letter.destination) for letter in letters] == [
        (sent.id, 400, SINK)
    ]
    assert "bad event" in (letters[0].data or "")


@respx.mock
async def test_stop_parks_what_is_still_retrying(tmp_path: Path) -> None:
    """At shutdown a publish in backoff stops waiting and its event is parked, not dropped."""
    settings = suite_settings(
        k_sink=SINK, publish_attempts=10, publish_backoff_seconds=1.0, publish_flush_seconds=10.0
    )
    outbox = SQLiteOutbox(tmp_path / "outbox.sqlite3")
    publisher = Publisher(settings, sink=SINK, outbox=outbox, rng=lambda: 1.0)
    route = respx.post(SINK).mock(return_value=httpx.Response(503))
    await publisher.start()
    publisher.publish_soon(event())
    await until(lambda: route.call_count == 1)  # failed once; now waiting 1 s before the next
    await publisher.stop()
    # A publish still waiting would have made its second attempt 1 s in, well within the
    # flush's 10 s: one attempt in all means the backoff ended when the stop began.
    assert route.call_count == 1
    assert await outbox.depth() == 1
    await outbox.stop()


def policy(rng: float, **overrides: float) -> RetryPolicy:
    values: dict[str, float] = {
        "base": 1.0, "cap": 4.0, "attempts": 10, "attempt_timeout": 1.0, "redelivery_cap": 8.0
    }  # fmt: skip
    values.update(overrides)
    return RetryPolicy(**values, rng=lambda: rng)  # type: ignore[arg-type]


def test_backoff_is_exponential_capped_and_fully_jittered() -> None:
    """Delays double from the base up to the cap; the jitter scales them down to zero."""
    top = policy(1.0)
    assert [top.retry_delay(n, None) for n in range(5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy(0.0).retry_delay(3, None) == 0.0
    assert policy(0.0).retry_delay(3, retry_after=2.5) == 2.5
    assert top.redelivery_delay(10_000, None) == 8.0  # a long outage's count does not overflow


def test_the_fast_path_gives_up_after_its_attempts_or_a_long_retry_after() -> None:
    """No wait after the last attempt, nor for a Retry-After beyond the cap: the outbox waits."""
    assert policy(1.0, attempts=3).retry_delay(2, None) is None
    assert policy(1.0).retry_delay(0, retry_after=5.0) is None
    assert policy(1.0).redelivery_delay(0, retry_after=120.0) == 120.0


def test_the_fast_path_lease_covers_every_attempt_and_every_wait() -> None:
    """The durable record is not due before the fast path could have ended."""
    p = policy(1.0, attempts=3, attempt_timeout=2.0, cap=4.0)
    assert p.fast_path_lease >= 3 * 2.0 + 2 * 4.0
    assert p.attempt_lease > p.attempt_timeout


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    """Retry-After is delta-seconds or an HTTP date; garbage is ignored."""
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_a_facade_answer_is_published_without_waiting_for_the_sink(tmp_path: Path) -> None:
    """With K_SINK, /api/v1/query answers at once and the answer reaches the sink as an event."""
    with running_sink() as sink:
        sink.delay = 2.0  # a slow sink must not slow the user down
        async with suite_client(k_sink=sink.url, data_dir=tmp_path) as client:
            response = await client.post(
                "/api/v1/query", json=query("hi"), headers={"x-request-id": "req-1"}
            )
            # The sink records a request once it has held it: answered, not yet published.
            recorded_when_answered = len(sink.received)
            received = await sink.wait_for(1)
    assert response.status_code == 200
    assert recorded_when_answered == 0
    [published] = received
    assert published.headers["ce-type"] == RESPONSE
    assert uuid.UUID(published.headers["ce-id"]).version == 5  # one id per answer (see below)
    assert published.headers["ce-id"] != reply_id(ASK.facade_path, "req-1")
    assert orjson.loads(published.body) == response.json()


async def test_without_k_sink_nothing_is_published(tmp_path: Path) -> None:
    """No K_SINK: the facade answers and there is no publisher at all."""
    app = make_app(suite_settings(data_dir=tmp_path))
    async with app_client(app) as client:
        response = await client.post("/api/v1/query", json=query("hi"))
    assert response.status_code == 200
    assert app.state.runtime.publisher is None


@respx.mock
async def test_delivered_events_are_shown_to_the_observer_and_failed_ones_are_not(
    publisher: Publisher,
) -> None:
    """The observer (the live feed) sees an event once the sink took it, never a failed one."""
    seen: list[str] = []
    publisher.observe = lambda e: seen.append(e.id)
    respx.post(SINK).mock(side_effect=statuses(503, 202, 400))
    delivered, refused = event(), event()
    assert await publisher.publish(delivered) == "delivered"
    assert await publisher.publish(refused) == "rejected"
    assert seen == [delivered.id]


@respx.mock
async def test_a_refused_event_is_parked_when_the_dead_letter_store_is_down(tmp_path: Path) -> None:
    """A permanent 4xx with the dead-letter store unreachable parks the event in the outbox."""
    from eventfn.stores.deadletters import RedisDeadLetterStore
    from eventfn.stores.redis import redis_client

    respx.post(SINK).mock(side_effect=statuses(400))
    settings = suite_settings(k_sink=SINK, data_dir=tmp_path, publish_attempts=2)
    outbox = SQLiteOutbox(tmp_path / "outbox.sqlite3")
    down = redis_client(f"redis://127.0.0.1:{free_port()}/0", 0.5)
    deadletters = RedisDeadLetterStore(down)
    p = Publisher(settings, sink=SINK, outbox=outbox, deadletters=deadletters, rng=lambda: 1.0)
    await p.start()
    try:
        assert await p.publish(event()) == "rejected"
        assert await outbox.depth() == 1
    finally:
        await p.stop()
        await outbox.stop()
        await down.aclose()


async def test_two_answers_sharing_a_request_id_are_two_events_in_the_outbox(
    tmp_path: Path,
) -> None:
    """With the sink down, two answers sent with one X-Request-Id both wait in the outbox."""
    down = f"http://127.0.0.1:{free_port()}/"
    settings = suite_settings(
        k_sink=down, data_dir=tmp_path, publish_attempts=1, publish_timeout_seconds=0.5
    )
    app = make_app(settings)
    async with app_client(app) as client:
        for text in ("first", "second"):
            response = await client.post(
                "/api/v1/query", json={"query": text}, headers={"x-request-id": "same"}
            )
            assert response.status_code == 200
        publisher = app.state.runtime.publisher
        # Both publishes fail fast (nothing listens), then park.
        await until(lambda: not publisher.pending)
        depth = await publisher.outbox.depth()
    assert depth == 2
