"""Dead letters and where they are kept: SQLite under DATA_DIR, or Redis shared by replicas.

The store is the durable half of the dead-letter inbox (`eventfn.facade.deadletters` is the HTTP
half).
Pages are newest first; the cursor is the internal sequence number of the last letter shown, so
a page boundary never skips or repeats a letter while new ones arrive.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from eventfn.binding import Event
from eventfn.core.errors import ClientError, MalformedEvent
from eventfn.stores.records import dump_event, event_key, load_event
from eventfn.stores.redis import hash_tagged
from eventfn.stores.redis_outage import Outage
from eventfn.stores.sqlite import SQLiteFile

if TYPE_CHECKING:  # redis costs ~140 ms to import: only replicas using it pay that
    import redis.asyncio as aioredis

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
_NAMESPACE = uuid.UUID("0b7f3c1e-5d2a-4c8e-9a61-3e2f7d9b4a55")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered event and the error that sent it here."""

    id: str
    received: float  # epoch seconds
    event: Event  # as received, knativeerror* extensions included
    destination: str | None
    code: int | None
    data: str | None  # the failed response body, decoded from base64

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received": self.received,
            "event": dump_event(self.event),
            "destination": self.destination,
            "code": self.code,
            "data": self.data,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> DeadLetter:
        return cls(
            doc["id"], doc["received"], load_event(doc["event"]),
            doc["destination"], doc["code"], doc["data"],
        )  # fmt: skip


def letter_id(event: Event) -> str:
    return str(uuid.uuid5(_NAMESPACE, event_key(event.source, event.id)))


def decode_error_data(value: Any) -> str | None:
    """`knativeerrordata` as text: base64-decoded, or as given when it is not base64.

    Knative cuts the base64 at 1024 characters, which can leave a partial last quantum: what
    decodes is kept rather than losing the whole body to one broken group.
    """
    if value is None:
        return None
    text = str(value)
    whole = text[: len(text) - len(text) % 4] if not text.endswith("=") else text
    try:
        return base64.b64decode(whole, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return text


def _status(code: Any) -> int | None:
    """`knativeerrorcode` as an HTTP status; None when it is not a number (kept, unread).

    A number that is no HTTP status (negative, or beyond 64 bits: unstorable) is a 400: a
    broker never sends one.
    """
    if code is None:
        return None
    try:
        status = int(code)
    except ValueError:
        return None
    if not 0 <= status <= 999:
        raise MalformedEvent(f"knativeerrorcode {str(code)[:40]!r} is not an HTTP status code")
    return status


def dead_letter_of(event: Event, received: float | None = None) -> DeadLetter:
    """The dead letter of an event the broker dead-lettered (from its knativeerror* extensions)."""
    status = _status(event.attributes.get("knativeerrorcode"))
    dest = event.attributes.get("knativeerrordest")
    return DeadLetter(
        letter_id(event),
        time.time() if received is None else received,
        event,
        None if dest is None else str(dest),
        status,
        decode_error_data(event.attributes.get("knativeerrordata")),
    )


def without_errors(event: Event) -> Event:
    """The original event: the dead letter minus Knative's knativeerror* extensions."""
    attributes = {k: v for k, v in event.attributes.items() if k not in ERROR_EXTENSIONS}
    return Event(attributes, event.data, event.json_data)


class DeadLetterStore(Protocol):
    """Durable dead letters; a Component (opened in start, closed in stop)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def add(self, letter: DeadLetter) -> None: ...

    async def page(self, limit: int, cursor: str | None) -> tuple[list[DeadLetter], str | None]:
        """Newest first; `cursor` is the `next` of the previous page."""
        ...

    async def get(self, letter_id: str) -> DeadLetter | None: ...

    async def delete(self, letter_id: str) -> bool: ...


# Sequence numbers are SQLite INTEGERs: a cursor beyond them is no cursor this store gave.
_MAX_SEQ = 2**63 - 1


def _cursor(value: str | None) -> int | None:
    """The sequence number a page cursor names; a 400 for a number out of range."""
    if value is None:
        return None
    try:
        seq = int(value)
    except ValueError:
        return None
    if not 0 <= seq <= _MAX_SEQ:
        raise ClientError(f"cursor {value[:40]!r} is out of range: pass the `next` of a page")
    return seq


_SCHEMA = """
CREATE TABLE IF NOT EXISTS deadletters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    doc BLOB NOT NULL
);
"""


class SQLiteDeadLetterStore:
    """The embedded store: `DATA_DIR/deadletters.sqlite3`."""

    def __init__(self, path: Path) -> None:
        self._file = SQLiteFile(path, _SCHEMA)

    async def start(self) -> None:
        return None  # opened on first use: no file appears until there is something to keep

    async def stop(self) -> None:
        await self._file.close()

    async def add(self, letter: DeadLetter) -> None:
        row = (letter.id, orjson.dumps(letter.to_doc()))
        # REPLACE gives a redelivered letter a new seq: it moves to the top, like a new one.
        await self._file.run(
            lambda db: db.execute("INSERT OR REPLACE INTO deadletters (id, doc) VALUES (?, ?)", row)
        )

    async def page(self, limit: int, cursor: str | None) -> tuple[list[DeadLetter], str | None]:
        if not self._file.present():
            return [], None
        before = _cursor(cursor)

        def select(db: sqlite3.Connection) -> list[Any]:
            return db.execute(
                "SELECT seq, doc FROM deadletters WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                (before if before is not None else 2**62, limit + 1),
            ).fetchall()

        rows = await self._file.run(select)
        letters = [DeadLetter.from_doc(orjson.loads(doc)) for _, doc in rows[:limit]]
        return letters, (str(rows[limit - 1][0]) if len(rows) > limit else None)

    async def get(self, letter_id: str) -> DeadLetter | None:
        if not self._file.present():
            return None
        row = await self._file.run(
            lambda db: db.execute(
                "SELECT doc FROM deadletters WHERE id = ?", (letter_id,)
            ).fetchone()
        )
        return None if row is None else DeadLetter.from_doc(orjson.loads(row[0]))

    async def delete(self, letter_id: str) -> bool:
        if not self._file.present():
            return False
        cursor = await self._file.run(
            lambda db: db.execute("DELETE FROM deadletters WHERE id = ?", (letter_id,))
        )
        return bool(cursor.rowcount)


class RedisDeadLetterStore:
    """The shared store: a hash of documents and a sorted set of ids by sequence number."""

    def __init__(self, client: aioredis.Redis, prefix: str = "knfn:deadletters:") -> None:
        self._redis = client
        prefix = hash_tagged(client, prefix)  # one slot on a Cluster: `add` is a transaction
        self._outage = Outage("dead-letter")
        self._seq = prefix + "seq"
        self._index = prefix + "index"
        self._docs = prefix + "docs"

    async def start(self) -> None:
        return None  # connects lazily

    async def stop(self) -> None:
        await self._redis.aclose()

    async def add(self, letter: DeadLetter) -> None:
        with self._outage:
            seq = await self._redis.incr(self._seq)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._docs, letter.id, orjson.dumps(letter.to_doc()))
                pipe.zadd(self._index, {letter.id: seq})
                await pipe.execute()

    async def page(self, limit: int, cursor: str | None) -> tuple[list[DeadLetter], str | None]:
        before = _cursor(cursor)
        top = "+inf" if before is None else f"({before}"
        with self._outage:
            found: list[Any] = await self._redis.zrevrangebyscore(
                self._index, top, "-inf", start=0, num=limit + 1, withscores=True
            )
            ids = [pair[0] for pair in found[:limit]]
            docs = await self._redis.hmget(self._docs, ids) if ids else []
        letters = [DeadLetter.from_doc(orjson.loads(doc)) for doc in docs if doc is not None]
        return letters, (str(int(found[limit - 1][1])) if len(found) > limit else None)

    async def get(self, letter_id: str) -> DeadLetter | None:
        with self._outage:
            doc = await self._redis.hget(self._docs, letter_id)
        return None if doc is None else DeadLetter.from_doc(orjson.loads(doc))

    async def delete(self, letter_id: str) -> bool:
        with self._outage:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self._index, letter_id)
                pipe.hdel(self._docs, letter_id)
                results = await pipe.execute()
        return bool(results[0])
