"""The outbox: events the publisher could not deliver, kept durably and redelivered until taken.

    Publisher ──(retries exhausted)──▶ Outbox.park ──▶ SQLite file under DATA_DIR | Redis
                                            ▲                    │
                                            └─── Redeliverer ◀───┘  take_due → attempt → remove
                                                 (backoff)            | reschedule | dead-letter

`take_due` hands out due events with a short lease (their next attempt moves forward), so two
replicas sharing the Redis outbox do not send the same event at the same moment and a replica
that dies mid-attempt leaves its events due again a moment later. Delivery is at least once: the
event keeps its id, so the sink can drop a duplicate.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import orjson

from eventfn.binding import Event
from eventfn.observability.logs import get_logger
from eventfn.stores.records import dump_event, event_key, load_event
from eventfn.stores.redis import hash_tagged
from eventfn.stores.redis_outage import Outage
from eventfn.stores.sqlite import SQLiteFile

if TYPE_CHECKING:  # redis costs ~140 ms to import: only replicas using it pay that
    import redis.asyncio as aioredis

log = get_logger("eventfn.stores.outbox")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Parked:
    """One event waiting in the outbox."""

    key: str
    event: Event
    attempts: int
    last_error: str


class Outbox(Protocol):
    """Durable parking for undelivered events; a Component (opened in start, closed in stop)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def park(self, event: Event, *, attempts: int, delay: float, error: str) -> None: ...

    async def take_due(self, limit: int, lease: float) -> list[Parked]: ...

    async def reschedule(self, key: str, *, attempts: int, delay: float, error: str) -> None: ...

    async def remove(self, key: str) -> None: ...

    async def depth(self) -> int: ...

    async def oldest(self) -> str | None: ...


# How many of the next due events `oldest` reads: bounded, so a status check never scans an
# outbox of thousands. With more waiting than that, the age it gives is a lower bound.
_OLDEST_SAMPLE = 100


def _earliest_time(docs: Any) -> str | None:
    """The earliest `time` attribute of the event documents (RFC 3339), if any has one.

    Every event the publisher sends carries one (replies are stamped when made); the outbox
    keeps no parking time of its own, so this is how long its oldest event has been waiting.
    """
    earliest: tuple[datetime, str] | None = None
    for doc in docs:
        value = doc["attributes"].get("time")
        with contextlib.suppress(TypeError, ValueError):
            at = datetime.fromisoformat(value)
            if at.tzinfo is not None and (earliest is None or at < earliest[0]):
                earliest = (at, value)
    return None if earliest is None else earliest[1]


_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY,
    event BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt REAL NOT NULL,
    last_error TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt);
"""


class SQLiteOutbox:
    """The embedded outbox: `DATA_DIR/outbox.sqlite3`, one per replica, survives restarts."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._file = SQLiteFile(path, _OUTBOX_SCHEMA)
        self._clock = clock

    async def start(self) -> None:
        return None  # opened on first use: no file appears until there is something to keep

    async def stop(self) -> None:
        await self._file.close()

    async def park(self, event: Event, *, attempts: int, delay: float, error: str) -> None:
        row = (
            event_key(event.source, event.id),
            orjson.dumps(dump_event(event)),
            attempts,
            self._clock() + delay,
            error,
        )
        await self._file.run(
            lambda db: db.execute("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?, ?)", row)
        )

    async def take_due(self, limit: int, lease: float) -> list[Parked]:
        now = self._clock()

        def take(db: sqlite3.Connection) -> list[Any]:
            rows = db.execute(
                "SELECT key, event, attempts, last_error FROM outbox WHERE next_attempt <= ? "
                "ORDER BY next_attempt LIMIT ?",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE outbox SET next_attempt = ? WHERE key = ?",
                [(now + lease, row[0]) for row in rows],
            )
            return rows

        rows = await self._file.run(take)
        return [Parked(k, load_event(orjson.loads(e)), a, err) for k, e, a, err in rows]

    async def reschedule(self, key: str, *, attempts: int, delay: float, error: str) -> None:
        values = (attempts, self._clock() + delay, error, key)
        await self._file.run(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE key = ?",
                values,
            )
        )

    async def remove(self, key: str) -> None:
        await self._file.run(lambda db: db.execute("DELETE FROM outbox WHERE key = ?", (key,)))

    async def depth(self) -> int:
        row = await self._file.run(lambda db: db.execute("SELECT count(*) FROM outbox").fetchone())
        return int(row[0])

    async def oldest(self) -> str | None:
        """The earliest CloudEvents `time` among the next due events (see `_earliest_time`)."""
        rows = await self._file.run(
            lambda db: db.execute(
                "SELECT event FROM outbox ORDER BY next_attempt LIMIT ?", (_OLDEST_SAMPLE,)
            ).fetchall()
        )
        return _earliest_time(orjson.loads(row[0]) for row in rows)


# KEYS: due zset, events hash. ARGV: now, lease, limit. Takes the due keys (moving their next
# attempt to now + lease in the same step) and returns [key, document, key, document, ...].
_TAKE_DUE = """
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, key in ipairs(keys) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), key)
  local doc = redis.call('HGET', KEYS[2], key)
  if doc then
    table.insert(out, key)
    table.insert(out, doc)
  else
    redis.call('ZREM', KEYS[1], key)
  end
end
return out
"""


# KEYS[1] = documents hash, KEYS[2] = due set; ARGV = key, the document read, the new document,
# the next attempt time. Writes only if the document is still the one read: an event another
# replica delivered and removed meanwhile must not come back (and be sent twice).
_RESCHEDULE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
"""


class RedisOutbox:
    """The shared outbox: a sorted set of keys by next attempt + a hash of documents."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "knfn:outbox:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        prefix = hash_tagged(client, prefix)  # one slot on a Cluster: the scripts use both keys
        self._due = prefix + "due"
        self._docs = prefix + "events"
        self._clock = clock
        self._take = client.register_script(_TAKE_DUE)
        self._reschedule = client.register_script(_RESCHEDULE)
        self._outage = Outage("outbox")

    async def start(self) -> None:
        return None  # connects lazily; an unreachable Redis shows in the first call

    async def stop(self) -> None:
        await self._redis.aclose()

    async def _write(self, key: str, doc: dict[str, Any], delay: float) -> None:
        with self._outage:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._docs, key, orjson.dumps(doc))
                pipe.zadd(self._due, {key: self._clock() + delay})
                await pipe.execute()

    async def park(self, event: Event, *, attempts: int, delay: float, error: str) -> None:
        doc = {"event": dump_event(event), "attempts": attempts, "error": error}
        await self._write(event_key(event.source, event.id), doc, delay)

    async def take_due(self, limit: int, lease: float) -> list[Parked]:
        with self._outage:
            flat = await self._take(
                keys=[self._due, self._docs], args=[self._clock(), lease, limit]
            )
        parked = []
        for raw_key, raw_doc in zip(flat[::2], flat[1::2], strict=True):
            doc = orjson.loads(raw_doc)
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            parked.append(Parked(key, load_event(doc["event"]), doc["attempts"], doc["error"]))
        return parked

    async def reschedule(self, key: str, *, attempts: int, delay: float, error: str) -> None:
        with self._outage:
            raw = await self._redis.hget(self._docs, key)
        if raw is None:
            return
        doc = orjson.loads(raw)
        doc.update(attempts=attempts, error=error)
        with self._outage:
            await self._reschedule(
                keys=[self._docs, self._due],
                args=[key, raw, orjson.dumps(doc), self._clock() + delay],
            )

    async def remove(self, key: str) -> None:
        with self._outage:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self._due, key)
                pipe.hdel(self._docs, key)
                await pipe.execute()

    async def depth(self) -> int:
        with self._outage:
            return int(await self._redis.zcard(self._due))

    async def oldest(self) -> str | None:
        """The earliest CloudEvents `time` among the next due events (see `_earliest_time`)."""
        with self._outage:
            keys = await self._redis.zrange(self._due, 0, _OLDEST_SAMPLE - 1)
            docs = await self._redis.hmget(self._docs, cast(list[bytes], keys)) if keys else []
        return _earliest_time(orjson.loads(doc)["event"] for doc in docs if doc is not None)
