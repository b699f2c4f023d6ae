"""Redis at scale, for real: every store against one server, a 3-master Cluster and Sentinel.

The Cluster and the Sentinel set are real `redis-server` processes started once for this module
(see tests/helpers/redis_servers.py); the function reaches them with REDIS_MODE and nothing else
changed. A failover during load is a real SIGKILL of the master.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from eventfn.binding import Event
from eventfn.core.config import Settings
from eventfn.observability.feed import LiveFeed
from eventfn.runtime import build_feed_client
from eventfn.stores import redis_outage
from eventfn.stores.deadletters import RedisDeadLetterStore, dead_letter_of
from eventfn.stores.outbox import RedisOutbox
from eventfn.stores.redis import build_client
from tests.helpers import redis_servers, support
from tests.helpers.support import (
    Counting,
    captured_logs,
    cloud_event,
    deliver,
    handler_client,
    new_id,
    until,
)

pytestmark = pytest.mark.redis

MODES = ["standalone", "cluster", "sentinel"]


@pytest.fixture(scope="module")
def cluster_ports() -> Iterator[list[int]]:
    with redis_servers.cluster() as ports:
        yield ports


@pytest.fixture(scope="module")
def sentinels() -> Iterator[redis_servers.SentinelSet]:
    with redis_servers.sentinel_set() as found:
        yield found


@pytest.fixture(params=MODES)
def redis_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings that point the function at a standalone server, a Cluster or Sentinel."""
    if request.param == "standalone":
        return {"redis_url": support.redis_url(9)}
    if request.param == "cluster":
        port = request.getfixturevalue("cluster_ports")[0]
        return {"redis_mode": "cluster", "redis_url": f"redis://127.0.0.1:{port}/0"}
    found = request.getfixturevalue("sentinels")
    return {
        "redis_mode": "sentinel",
        "redis_url": "redis://ignored:1/0",
        "redis_sentinels": found.sentinel_setting,
        "redis_sentinel_master": redis_servers.MASTER_NAME,
    }


async def test_a_redelivery_to_another_replica_replays_the_reply(
    redis_settings: dict[str, Any],
) -> None:
    """Dedupe across two replicas: the redelivery gets the first reply, the handler ran once."""
    handler, event_id = Counting(suspends=True), new_id()
    async with (
        handler_client(handler, **redis_settings) as a,
        handler_client(handler, **redis_settings) as b,
    ):
        first = await deliver(a, event_id, "once")
        again = await deliver(b, event_id, "once")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert handler.handled == ["once"]


async def test_many_events_spread_over_the_slots_are_each_handled_once(
    redis_settings: dict[str, Any],
) -> None:
    """Fifty events at once (keys on every node of a Cluster): fifty 200s, fifty calls."""
    handler = Counting(suspends=True)
    async with handler_client(handler, **redis_settings) as client:
        responses = await asyncio.gather(*(deliver(client, new_id(), f"e{n}") for n in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert sorted(handler.handled) == sorted(f"e{n}" for n in range(50))


async def test_readiness_is_200_on_a_usable_redis(redis_settings: dict[str, Any]) -> None:
    """Readiness checks Redis for real, in every mode."""
    async with handler_client(Counting(suspends=True), **redis_settings) as client:
        response = await client.get("/health/readiness")
    assert response.status_code == 200


def event(n: int) -> Event:
    return cloud_event(b'{"n": %d}' % n, id=f"e-{n}-{new_id()}", source="/t", type="x")


async def test_the_dead_letter_inbox_works_in_every_mode(redis_settings: dict[str, Any]) -> None:
    """Add, page (newest first), get and delete dead letters."""
    client = build_client(Settings(**redis_settings))
    client.holders = 1
    store = RedisDeadLetterStore(client, prefix=f"knfn:dl-{new_id()}:")
    letters = [dead_letter_of(event(n)) for n in range(3)]
    for letter in letters:
        await store.add(letter)
    page, cursor = await store.page(2, None)
    assert [x.id for x in page] == [letters[2].id, letters[1].id]
    rest, _ = await store.page(2, cursor)
    assert [x.id for x in rest] == [letters[0].id]
    assert await store.get(letters[1].id) is not None
    assert await store.delete(letters[1].id)
    assert await store.get(letters[1].id) is None
    await store.stop()


async def test_the_outbox_works_in_every_mode(redis_settings: dict[str, Any]) -> None:
    """Park, take when due (leased), reschedule, remove: the scripts run on one slot."""
    client = build_client(Settings(**redis_settings))
    client.holders = 1
    outbox = RedisOutbox(client, prefix=f"knfn:ob-{new_id()}:")
    parked = event(1)
    await outbox.park(parked, attempts=1, delay=0, error="sink down")
    taken = await outbox.take_due(10, lease=30)
    assert [p.event.id for p in taken] == [parked.id]
    assert await outbox.take_due(10, lease=30) == []  # leased
    await outbox.reschedule(taken[0].key, attempts=2, delay=0, error="again")
    assert [p.attempts for p in await outbox.take_due(10, lease=30)] == [2]
    await outbox.remove(taken[0].key)
    assert await outbox.depth() == 0
    await outbox.stop()


async def test_the_live_feed_crosses_replicas_in_every_mode(
    redis_settings: dict[str, Any],
) -> None:
    """An event offered on one replica reaches a subscriber of another through Redis."""
    settings = Settings(
        **redis_settings, feed_channel=f"knfn-test-{new_id()}", feed_probe_seconds=0.05
    )
    sender = LiveFeed(settings, client=build_feed_client(settings))
    receiver = LiveFeed(settings, client=build_feed_client(settings))
    await sender.start()
    await receiver.start()
    try:
        subscription = receiver.subscribe()
        sent = event(7)
        # The sender publishes once its probe has seen the receiver listen on the channel.
        await until(lambda: sender.listeners_elsewhere > 0, what="the sender sees a listener")
        sender.offer(sent)
        message = await subscription.queue.get()
        assert message is not None
        assert sent.id.encode() in message
    finally:
        await receiver.stop()
        await sender.stop()


async def test_a_cluster_node_reached_as_one_server_is_not_ready(
    cluster_ports: list[int],
) -> None:
    """REDIS_URL of a Cluster node without REDIS_MODE=cluster: readiness 503, not 200, however
    often probed; the logs say why once, not once per probe."""
    url = f"redis://127.0.0.1:{cluster_ports[0]}/0"
    async with handler_client(Counting(suspends=True), redis_url=url) as client:
        with captured_logs(redis_outage) as logs:  # once the app has configured its logging
            responses = [await client.get("/health/readiness") for _ in range(5)]
    assert [r.status_code for r in responses] == [503] * 5
    assert responses[0].json() == {"status": "redis-unavailable"}
    (line,) = [line for line in logs if line["event"] == "redis_unavailable"]
    assert (line["store"], line["error"]) == ("dedupe", "WrongMode")
    assert "REDIS_MODE=cluster" in line["detail"]


async def test_an_unreachable_redis_is_not_ready() -> None:
    """Readiness turns 503 when Redis cannot be reached at all."""
    url = f"redis://127.0.0.1:{support.free_port()}/0"
    async with handler_client(
        Counting(suspends=True), redis_url=url, redis_timeout_seconds=0.5
    ) as client:
        response = await client.get("/health/readiness")
    assert response.status_code == 503


async def test_more_deliveries_than_connections_wait_instead_of_failing() -> None:
    """110 deliveries at once over a pool of 2 connections: every one 200, none 503."""
    handler = Counting(suspends=True)
    overrides = {"redis_url": support.redis_url(9), "redis_max_connections": 2}
    async with handler_client(handler, **overrides) as client:
        responses = await asyncio.gather(*(deliver(client, new_id(), f"c{n}") for n in range(110)))
    assert [r.status_code for r in responses] == [200] * 110
    assert len(handler.handled) == 110


async def test_a_sentinel_failover_under_load_costs_only_retries(
    sentinels: redis_servers.SentinelSet,
) -> None:
    """The master killed mid-load: only 2xx or 503 + Retry-After, each event handled once,
    and the function recovers on the promoted replica without a restart."""
    handler = Counting(suspends=True)
    overrides = {
        "redis_mode": "sentinel",
        "redis_url": "redis://ignored:1/0",
        "redis_sentinels": sentinels.sentinel_setting,
        "redis_sentinel_master": redis_servers.MASTER_NAME,
        "redis_timeout_seconds": 0.5,
    }
    statuses: list[int] = []
    done: set[str] = set()
    ids = [f"f{n}-{new_id()}" for n in range(60)]
    async with handler_client(handler, **overrides) as client:

        async def broker(event_id: str) -> None:
            """Deliver like the broker: retry a 5xx/409 until a 2xx (bounded)."""
            for _ in range(200):
                response = await deliver(client, event_id, event_id)
                statuses.append(response.status_code)
                if response.status_code == 503:
                    assert "retry-after" in response.headers
                if response.status_code < 300:
                    done.add(event_id)
                    return
                # The broker's retry backoff while real Sentinels promote a replica: their
                # failover has no event the test could await.
                await asyncio.sleep(0.1)

        first, rest = ids[:20], ids[20:]
        await asyncio.gather(*(broker(i) for i in first))
        old = sentinels.current_master()
        sentinels.servers.kill(old)
        await asyncio.gather(*(broker(i) for i in rest))
    assert sentinels.current_master() != old
    assert done == set(ids)
    assert set(statuses) <= {200, 409, 503}
    assert 500 not in statuses
    assert sorted(handler.handled) == sorted(ids)  # none twice, none lost
