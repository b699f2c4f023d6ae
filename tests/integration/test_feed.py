"""The live feed: in-process fan-out, slow consumers dropped, Redis pub/sub across replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from eventfn.binding import Event
from eventfn.core.config import Settings
from eventfn.observability.feed import LiveFeed, Subscription, channel_name
from eventfn.runtime import build_feed_client
from tests.helpers.support import (
    QUERY,
    RESPONSE,
    cloud_event,
    free_port,
    redis_url,
    suite_settings,
    until,
)


def event(n: int = 0, type_: str = QUERY) -> Event:
    return cloud_event(b'{"n": %d}' % n, id=f"e{n}", type=type_)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[LiveFeed]:
    feed = LiveFeed(settings, client=build_feed_client(settings))
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()


async def next_event(subscription: Subscription, wait: float = 5.0) -> dict[str, Any]:
    """The next feed message of `subscription`, parsed."""
    message = await asyncio.wait_for(subscription.queue.get(), wait)
    assert message is not None
    parsed: dict[str, Any] = orjson.loads(message)
    return parsed


class TestInProcess:
    async def test_a_subscriber_receives_offered_events_as_websocket_messages(self) -> None:
        """An offered event arrives as `{"type": "event", "event": <structured CloudEvent>}`."""
        async with running(suite_settings()) as feed:
            subscription = feed.subscribe()
            feed.offer(event(1))
            message = await next_event(subscription)
        assert message["type"] == "event"
        assert message["event"]["id"] == "e1"
        assert message["event"]["data"] == {"n": 1}

    async def test_events_offered_while_nobody_listens_are_not_kept(self) -> None:
        """With no subscriber the feed does nothing; a later subscriber sees only later events."""
        async with running(suite_settings()) as feed:
            feed.offer(event(1))
            subscription = feed.subscribe()
            feed.offer(event(2))
            message = await next_event(subscription)
        assert message["event"]["id"] == "e2"

    async def test_subscribers_get_only_the_types_they_asked_for(self) -> None:
        """A subscription to replies skips requests; an empty list means every type."""
        async with running(suite_settings()) as feed:
            replies, everything = feed.subscribe([RESPONSE]), feed.subscribe()
            feed.offer(event(1, QUERY))
            feed.offer(event(2, RESPONSE))
            assert (await next_event(replies))["event"]["id"] == "e2"
            assert [(await next_event(everything))["event"]["id"] for _ in range(2)] == ["e1", "e2"]

    async def test_a_slow_subscriber_is_dropped_without_holding_back_others(self) -> None:
        """A full subscriber queue ends that subscription (marked by None); others get all."""
        async with running(suite_settings(feed_subscriber_queue=2)) as feed:
            slow, fast = feed.subscribe(), feed.subscribe()
            received: list[str] = []
            for n in range(5):
                feed.offer(event(n))
                received.append((await next_event(fast))["event"]["id"])
            await until(lambda: feed.subscribers == 1)
        assert received == [f"e{n}" for n in range(5)]
        assert slow.dropped
        assert slow.queue.get_nowait() is None
        assert feed.slow_subscribers == 1  # what /metrics reports

    async def test_offer_never_waits_when_the_pump_falls_behind(self) -> None:
        """Offering more than the queue holds drops the surplus and counts it."""
        async with running(suite_settings(feed_queue_size=2)) as feed:
            feed.subscribe()
            for n in range(5):
                feed.offer(event(n))  # synchronous: the pump cannot run in between
            assert feed.overflows == 3

    async def test_an_unserialisable_event_does_not_stop_the_feed(self) -> None:
        """The pump logs a batch it cannot serialise and carries on with the next."""
        async with running(suite_settings()) as feed:
            subscription = feed.subscribe()
            broken = Event({**event(0).attributes, "weird": object()})
            feed.offer(broken)
            # Once the queue is empty the pump holds the broken event as a batch of its own.
            await until(lambda: feed.backlog == 0)
            feed.offer(event(1))
            message = await next_event(subscription)
        assert message["event"]["id"] == "e1"

    async def test_offering_never_waits_and_queues_nothing_while_nobody_listens(self) -> None:
        """Idle, `offer` queues nothing; with listeners and a full queue it drops, never waits."""
        async with running(suite_settings(feed_queue_size=1)) as feed:
            item = event()
            for _ in range(10):  # synchronous calls: the pump gets no chance to drain
                feed.offer(item)
            assert feed.overflows == 0  # nothing was queued, so nothing overflowed
            feed.subscribe()
            for _ in range(10):
                feed.offer(item)
            assert feed.overflows == 9  # one queued, nine dropped: the ingress never waited


async def publishes(client: Any) -> int:
    """How many PUBLISH commands the Redis server has run (INFO commandstats)."""
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


@pytest.mark.redis
class TestAcrossReplicas:
    def settings(self, url: str) -> Settings:
        return suite_settings(redis_url=url, feed_probe_seconds=0.05)

    async def test_an_event_offered_on_one_replica_reaches_subscribers_of_another(self) -> None:
        """Two feeds sharing Redis: subscribe on A, offer on B, A's subscriber gets it."""
        url = redis_url(13)
        async with running(self.settings(url)) as a, running(self.settings(url)) as b:
            subscription = a.subscribe()
            await until(lambda: b.listeners_elsewhere > 0)
            b.offer(event(7))
            message = await next_event(subscription)
        assert message["event"]["id"] == "e7"

    async def test_a_replicas_own_events_are_delivered_once(self) -> None:
        """Local subscribers get local events directly, not a second time through Redis."""
        url = redis_url(13)
        async with running(self.settings(url)) as a, running(self.settings(url)) as b:
            mine = a.subscribe()
            theirs = b.subscribe()  # someone elsewhere listens, so A publishes to Redis too
            await until(lambda: a.listeners_elsewhere > 0 and b.listeners_elsewhere > 0)
            a.offer(event(1))
            a.offer(event(2))
            ids = [(await next_event(mine))["event"]["id"] for _ in range(2)]
            assert [(await next_event(theirs))["event"]["id"] for _ in range(2)] == ids
            # B saw A's two PUBLISHes, so a third from B reaches A's listener after any echo
            # of them: the next thing A's subscriber gets is B's event, nothing in between.
            b.offer(event(3))
            assert (await next_event(mine))["event"]["id"] == "e3"
            assert ids == ["e1", "e2"]
            assert mine.queue.empty()

    async def test_nothing_is_published_while_no_replica_listens(self) -> None:
        """Without subscribers anywhere, offered events never reach Redis.

        Only what `offer` queues is ever published (the pump reads the queue and nothing else),
        so an empty queue after the offers is the proof: nothing exists that could be published
        later. The Redis server's own count of PUBLISH commands says the same of the past.
        """
        url = redis_url(13)
        import redis.asyncio as aioredis

        async with running(self.settings(url)) as feed:
            watcher = aioredis.Redis.from_url(url, socket_timeout=2)
            try:
                before = await publishes(watcher)
                for n in range(50):
                    feed.offer(event(n))
                assert feed.backlog == 0  # nothing queued: nothing the pump could publish
                assert feed.overflows == 0
                after = await publishes(watcher)
            finally:
                await watcher.aclose()
        assert after == before

    async def test_the_channel_is_qualified_by_the_database(self) -> None:
        """Pub/sub ignores SELECT, so the channel name carries the database number."""
        assert channel_name(suite_settings(redis_url="redis://h:6379/13")).endswith(":13")
        assert channel_name(suite_settings(redis_url="redis://h:6379")).endswith(":0")

    async def test_redis_down_leaves_local_delivery_working(self) -> None:
        """With Redis unreachable, local subscribers still get every event."""
        down = f"redis://127.0.0.1:{free_port()}/13"
        async with running(self.settings(down)) as feed:
            subscription = feed.subscribe()
            feed.offer(event(3))
            message = await next_event(subscription)
        assert message["event"]["id"] == "e3"


async def test_stop_ends_the_probe_even_when_redis_turns_its_cancellation_into_an_error() -> None:
    """A Redis call interrupted by the cancellation may raise a connection error instead, which
    the probe survives by design; stop() must still end it, and the closed client is never used
    again (it would reconnect, or fail on None)."""
    import redis

    calls: list[str] = []
    asked = asyncio.Event()

    class Swallowing:
        async def pubsub_numsub(self, channel: str) -> list[Any]:
            calls.append(channel)
            asked.set()
            try:
                await asyncio.Event().wait()  # a Redis call that hangs until cancelled
            except asyncio.CancelledError:
                raise redis.ConnectionError("connection closed while reading") from None
            return []

        async def aclose(self) -> None:
            pass

    feed = LiveFeed(suite_settings(feed_probe_seconds=0.01, redis_timeout_seconds=1))
    feed._redis = Swallowing()
    probe = asyncio.create_task(feed._probe())
    feed._tasks.append(probe)
    await asyncio.wait_for(asked.wait(), 10)
    await feed.stop()
    # stop() waits at most redis_timeout_seconds for its tasks and returns anyway: a probe that
    # survived the error and went on would still be running then, not done.
    assert probe.done()
    assert not probe.cancelled()
    assert probe.exception() is None
    # The probe has ended, so no call can follow: the closed client was asked once only.
    assert len(calls) == 1
