"""The outbox: parked events survive restarts and reach the sink once it is back.

Both implementations (SQLite under a tmp DATA_DIR, Redis DB 11) run the same specification; the
end-to-end tests use a real local HTTP sink that is down (nothing listening) and then comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventfn.binding import Event
from eventfn.stores.outbox import Outbox, RedisOutbox, SQLiteOutbox
from eventfn.stores.redis import redis_client
from eventfn.testing import app_client
from tests.helpers import support
from tests.helpers.sink import Sink
from tests.helpers.support import (
    RESPONSE,
    cloud_event,
    make_app,
    query,
    suite_client,
    suite_settings,
    until,
)

STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


def event(data: bytes = b'{"n":1}') -> Event:
    return cloud_event(data, source="/tests/outbox", cluster="a")


@pytest.fixture(params=STORES)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings choosing the outbox under test: SQLite in tmp_path, or Redis DB 11."""
    if request.param == "redis":
        return {"redis_url": support.redis_url(11), "data_dir": tmp_path}
    return {"data_dir": tmp_path}


@pytest.fixture
def open_outbox(store_settings: dict[str, Any]) -> Callable[[], Outbox]:
    """Opens the store of `store_settings` (again and again: a restart is a new instance)."""

    def opener() -> Outbox:
        url = store_settings.get("redis_url")
        if url:
            return RedisOutbox(redis_client(url, 1.0))
        return SQLiteOutbox(store_settings["data_dir"] / "outbox.sqlite3")

    return opener


@pytest.fixture
async def outbox(open_outbox: Callable[[], Outbox]) -> AsyncIterator[Outbox]:
    box = open_outbox()
    await box.start()
    yield box
    await box.stop()


async def test_a_parked_event_comes_back_byte_for_byte(outbox: Outbox) -> None:
    """What is parked is what is taken: attributes, extensions and data bytes."""
    parked = event(b'{"exact": "bytes" }')
    await outbox.park(parked, attempts=3, delay=0, error="HTTP 503")
    [item] = await outbox.take_due(10, lease=5)
    assert item.event == parked
    assert (item.attempts, item.last_error) == (3, "HTTP 503")


async def test_events_are_due_only_after_their_delay(outbox: Outbox) -> None:
    """An event parked with a delay is not handed out before it."""
    await outbox.park(event(), attempts=1, delay=60, error="x")
    assert await outbox.take_due(10, lease=5) == []
    assert await outbox.depth() == 1


async def test_taking_an_event_leases_it(outbox: Outbox) -> None:
    """A taken event is not handed out again during its lease (no two senders at once)."""
    await outbox.park(event(), attempts=1, delay=0, error="x")
    assert len(await outbox.take_due(10, lease=5)) == 1
    assert await outbox.take_due(10, lease=5) == []


async def test_reschedule_and_remove(outbox: Outbox) -> None:
    """A rescheduled event keeps its attempts and error; a removed one is gone."""
    parked = event()
    await outbox.park(parked, attempts=1, delay=0, error="first")
    [item] = await outbox.take_due(10, lease=5)
    await outbox.reschedule(item.key, attempts=2, delay=0, error="second")
    [again] = await outbox.take_due(10, lease=5)
    assert (again.attempts, again.last_error) == (2, "second")
    await outbox.remove(again.key)
    assert await outbox.depth() == 0


async def test_parking_the_same_event_twice_keeps_one(outbox: Outbox) -> None:
    """An event is identified by source + id: parking it again replaces it."""
    parked = event()
    await outbox.park(parked, attempts=1, delay=0, error="a")
    await outbox.park(parked, attempts=2, delay=0, error="b")
    assert await outbox.depth() == 1


async def test_the_outbox_survives_a_restart(open_outbox: Callable[[], Outbox]) -> None:
    """A new instance on the same file / Redis finds what the previous one parked."""
    first = open_outbox()
    await first.start()
    parked = event()
    await first.park(parked, attempts=4, delay=0, error="down")
    await first.stop()
    second = open_outbox()
    await second.start()
    [item] = await second.take_due(10, lease=5)
    await second.stop()
    assert item.event == parked


def fast(**overrides: Any) -> dict[str, Any]:
    """Settings overrides for quick end-to-end publishing tests."""
    return {
        "publish_attempts": 2,
        "publish_backoff_seconds": 0.01,
        "publish_timeout_seconds": 1.0,
        "outbox_poll_seconds": 0.05,
        "outbox_backoff_max_seconds": 0.1,
        "publish_flush_seconds": 0.5,
        **overrides,
    }


async def test_a_sink_down_for_a_while_gets_every_event_once_back(
    store_settings: dict[str, Any],
) -> None:
    """Queries answered while the sink is down are all delivered, once each, when it is back."""
    sink = Sink()  # not started: nothing listens on its port yet
    app = make_app(suite_settings(**fast(k_sink=sink.url, **store_settings)))
    publisher = app.state.runtime.publisher
    async with app_client(app) as client:
        for n in range(5):
            response = await client.post("/api/v1/query", json=query(f"q{n}"))
            assert response.status_code == 200

        async def all_parked() -> bool:
            return publisher.pending == 0 and await publisher.outbox.depth() == 5

        await until(all_parked)
        sink.start()
        try:
            received = await sink.wait_for(5)

            async def empty() -> bool:
                return await publisher.outbox.depth() == 0

            await until(empty)
        finally:
            sink.stop()
    ids = [r.id for r in received]
    assert len(ids) == len(set(ids)) == 5
    answers = sorted(orjson.loads(r.body)["result"]["message"] for r in received)
    assert answers == [f"Processed query: q{n}" for n in range(5)]


async def test_parked_events_are_delivered_after_a_restart(store_settings: dict[str, Any]) -> None:
    """Events parked by one run are delivered by the next run of the function."""
    sink = Sink()
    settings = fast(k_sink=sink.url, **store_settings)
    async with suite_client(**settings) as client:
        await client.post("/api/v1/query", json=query("before restart"))
    # The function stopped with the sink still down: the event is on disk / in Redis.
    sink.start()
    try:
        async with suite_client(**settings):
            [received] = await sink.wait_for(1)
    finally:
        sink.stop()
    assert orjson.loads(received.body)["result"]["message"] == "Processed query: before restart"


async def test_a_flaky_real_sink_503_503_202_gets_the_event_once(tmp_path: Path) -> None:
    """A real sink answering 503, 503, 202 sees three attempts of one event; nothing is parked."""
    sink = Sink().start()
    sink.script = [503, 503]
    app = make_app(suite_settings(**fast(k_sink=sink.url, data_dir=tmp_path, publish_attempts=3)))
    try:
        async with app_client(app) as client:
            await client.post("/api/v1/query", json=query("flaky"))
            received = await sink.wait_for(3)
            outbox = app.state.runtime.publisher.outbox

            # The record leaves once the 2xx is back in the publisher, a moment after the sink.
            async def emptied() -> bool:
                return await outbox.depth() == 0

            await until(emptied)
            depth = await outbox.depth()
    finally:
        sink.stop()
    assert len({r.id for r in received}) == 1
    assert depth == 0


async def test_a_parked_event_the_sink_then_refuses_becomes_a_dead_letter(
    store_settings: dict[str, Any],
) -> None:
    """A parked event answered 400 on redelivery leaves the outbox for the dead-letter inbox."""
    sink = Sink()  # down while the query is answered
    sink.status = 400
    app = make_app(suite_settings(**fast(k_sink=sink.url, **store_settings)))
    publisher = app.state.runtime.publisher
    async with app_client(app) as client:
        await client.post("/api/v1/query", json=query("refused"))

        async def parked() -> bool:
            return publisher.pending == 0 and await publisher.outbox.depth() == 1

        await until(parked)
        sink.start()
        try:
            await sink.wait_for(1)

            async def moved() -> bool:
                return await publisher.outbox.depth() == 0

            await until(moved)
            letters = (await client.get("/api/v1/deadletters")).json()["items"]
        finally:
            sink.stop()
    assert [(item["type"], item["error"]["code"]) for item in letters] == [(RESPONSE, 400)]
    assert letters[0]["error"]["destination"] == sink.url
