"""The live event feed: every event the function handles or publishes, fanned out to subscribers.

The ingress hands each event to `LiveFeed.offer`, which must never slow it down: it is one flag
test while nobody listens, and one `put_nowait` into a bounded queue while someone does (a full
queue drops the event, the ingress never waits). A background pump serialises the events once,
delivers them to the local subscribers' bounded queues (a subscriber whose queue is full is
dropped: a slow UI must not hold the others back) and, with `REDIS_URL`, PUBLISHes them so the
UIs connected to other replicas see them too. Both kinds of loss are counted (`overflows`,
`slow_subscribers`) and read by `/metrics` at scrape time.

Across replicas: a replica listens on the Redis channel only while it has local subscribers, so
`PUBSUB NUMSUB` tells every replica whether anyone elsewhere wants its events; it probes that
every `FEED_PROBE_SECONDS` and publishes nothing to Redis while the answer is no. The feed is
best-effort by design (Redis down or a full queue loses feed events, never handled ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterable
from typing import Any

import orjson

from eventfn.binding import Event, to_json_object
from eventfn.core.config import Settings
from eventfn.observability.logs import get_logger

log = get_logger("eventfn.observability.feed")

# Most events serialised and published in one pump iteration (one Redis pipeline).
_BATCH = 100


class Subscription:
    """One subscriber's bounded queue of ready-to-send feed messages (JSON bytes).

    `None` in the queue means the feed dropped this subscriber for being too slow.
    """

    def __init__(self, types: Iterable[str], size: int) -> None:
        self.types = frozenset(types)  # empty: every type
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.dropped = False

    def wants(self, event_type: str) -> bool:
        return not self.types or event_type in self.types

    def push(self, message: bytes) -> bool:
        """Queue `message`; False (and the subscriber marked dropped) when the queue is full."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            # What is queued is stale now; make room for the one marker the consumer must see.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False
        return True


def feed_message(event_json: Any) -> bytes:
    """The WebSocket message carrying one event."""
    return orjson.dumps({"type": "event", "event": event_json})


def channel_name(settings: Settings) -> str:
    """The pub/sub channel, qualified by the Redis database number.

    Redis pub/sub ignores SELECT: two deployments (or test runs) sharing one server on different
    databases would otherwise see each other's events.
    """
    url = settings.redis_url or ""
    database = url.rsplit("/", 1)[-1].split("?", 1)[0] if url.count("/") >= 3 else ""
    return f"{settings.feed_channel}:{database or '0'}"


class LiveFeed:
    """In-process fan-out, plus Redis pub/sub across replicas when `settings.redis_url` is set."""

    def __init__(self, settings: Settings, *, client: Any = None) -> None:
        self._settings = settings
        self._queue: asyncio.Queue[Event] = asyncio.Queue(settings.feed_queue_size)
        self._subscriptions: set[Subscription] = set()
        self._remote = 0  # replicas (other than this one) listening on the channel
        self._wanted = False  # the one flag the hot path reads
        self._origin = f"{os.getpid()}-{secrets.token_hex(6)}".encode()
        self._channel = channel_name(settings)
        self._redis: Any = None
        # The runtime's shared Redis client (given by the runtime: see eventfn.stores.redis), in
        # use from start(); None keeps the feed to this process.
        self._client: Any = client
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        # Set by stop(): the background loops end at their next turn. Cancelling is not enough on
        # its own: a Redis call may turn the cancellation into a connection error, which the
        # loops survive by design, and would then go on with a closed client (and reconnect).
        self._stopped = False
        self.overflows = 0  # events the hot path dropped because the pump fell behind
        self.slow_subscribers = 0  # subscribers dropped because their queue was full

    # -- the hot path --------------------------------------------------------------------------

    def offer(self, event: Event) -> None:
        """Hand `event` to the feed without waiting; free while nobody listens anywhere."""
        if self._wanted:
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                self.overflows += 1

    # -- subscribers ---------------------------------------------------------------------------

    def subscribe(self, types: Iterable[str] = ()) -> Subscription:
        """A new subscription to the events of `types` (all types when empty)."""
        subscription = Subscription(types, self._settings.feed_subscriber_queue)
        self._subscriptions.add(subscription)
        self._changed()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self._changed()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    @property
    def listeners_elsewhere(self) -> int:
        """Replicas (other than this one) listening on the channel, as the last probe found."""
        return self._remote

    @property
    def backlog(self) -> int:
        """Events offered and not yet taken by the pump."""
        return self._queue.qsize()

    def _changed(self) -> None:
        self._wanted = bool(self._subscriptions) or self._remote > 0
        if self._redis is None or self._stopped:
            return
        if self._subscriptions and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="feed-listen")
        elif not self._subscriptions and self._listener is not None:
            self._listener.cancel()
            self._listener = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None:
            # Commands never hang on a stuck Redis (the client's socket timeout); the listener's
            # blocking read is exempt.
            self._redis = self._client
            if self._settings.redis_mode == "cluster":
                # Cluster pub/sub is broadcast: a message PUBLISHed on any node reaches the
                # subscribers of every node, but PUBSUB NUMSUB counts one node's only. Every
                # replica uses the node REDIS_URL names, so they all count the same listeners.
                import redis.asyncio as aioredis

                timeout = self._settings.redis_timeout_seconds
                self._redis = aioredis.Redis.from_url(
                    str(self._settings.redis_url),
                    socket_connect_timeout=timeout,
                    socket_timeout=timeout,
                )
            self._tasks.append(asyncio.create_task(self._probe(), name="feed-probe"))
        self._tasks.append(asyncio.create_task(self._pump(), name="feed-pump"))
        self._changed()

    async def stop(self) -> None:
        self._stopped = True
        tasks = [*self._tasks, *([self._listener] if self._listener else [])]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: a Redis call stuck in cancellation must not hold up shutdown
            await asyncio.wait(tasks, timeout=self._settings.redis_timeout_seconds)
        self._tasks.clear()
        self._listener = None
        if self._redis is not None and self._redis is not self._client:
            await self._redis.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = self._redis = None

    # -- background work -----------------------------------------------------------------------

    async def _pump(self) -> None:
        """Serialise queued events once, deliver them locally, publish them to Redis."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            objects = []
            for event in batch:
                try:
                    obj = to_json_object(event)
                    self._deliver(event.type, feed_message(obj))
                except Exception:  # one unserialisable event must not cost the others
                    log.exception("feed_event_failed", id=event.id, type=event.type)
                    continue
                objects.append((event.type, obj))
            if self._redis is not None and self._remote > 0:
                await self._publish(objects)

    def _deliver(self, event_type: str, message: bytes) -> None:
        dropped = [s for s in self._subscriptions if s.wants(event_type) and not s.push(message)]
        for subscription in dropped:
            self.slow_subscribers += 1
            log.warning("feed_subscriber_dropped", reason="slow consumer")
            self.unsubscribe(subscription)

    async def _publish(self, objects: list[tuple[str, Any]]) -> None:
        import redis

        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event_type, obj in objects:
                    body = {"origin": self._origin.decode(), "type": event_type, "event": obj}
                    pipe.publish(self._channel, orjson.dumps(body))
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("feed_publish_failed", error=type(exc).__name__, dropped=len(objects))

    async def _probe(self) -> None:
        """Keep `_remote` up to date: how many other replicas have subscribers right now."""
        import redis

        while not self._stopped:
            try:
                counts = await self._redis.pubsub_numsub(self._channel)
                total = int(counts[0][1]) if counts else 0
                self._remote = max(0, total - (1 if self._listening else 0))
            except (redis.RedisError, OSError) as exc:
                log.warning("feed_probe_failed", error=type(exc).__name__)
            self._wanted = bool(self._subscriptions) or self._remote > 0
            await asyncio.sleep(self._settings.feed_probe_seconds)

    async def _listen(self) -> None:
        """While this replica has subscribers: deliver the events other replicas publish."""
        import redis

        while not self._stopped:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._listening = True
                async for message in pubsub.listen():
                    self._receive(message.get("data"))
            except (redis.RedisError, OSError) as exc:
                log.warning("feed_listen_failed", error=type(exc).__name__)
            finally:
                self._listening = False
                with contextlib.suppress(redis.RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(1.0)

    def _receive(self, data: Any) -> None:
        if not isinstance(data, bytes):
            return
        try:
            body = orjson.loads(data)
            if body["origin"].encode() == self._origin:
                return  # our own event, already delivered locally
            self._deliver(str(body["type"]), feed_message(body["event"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            log.warning("feed_message_malformed")
