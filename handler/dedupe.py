"""Idempotency: CloudEvents with the same `source` + `id` are the same event.

The protocol (the same for every store):

1. `claim(key, fingerprint)` atomically marks the event in progress for a lease, or reports that
   it is already in progress (the ingress answers 409, the broker retries later) or done (the
   stored reply is replayed, the handler does not run again).
2. `complete(key, record)` stores the reply for the TTL, replacing the claim.
3. `release(key)` drops the claim after a failure, so the broker's retry can run the handler.

A replica that dies mid-event leaves its claim to expire with the lease; the next redelivery runs
the handler. The fingerprint of the payload is kept with the claim and the reply so that a
redelivery carrying a different payload can be reported as a producer error.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Reply:
    """What was answered to an event: the reply's attributes and JSON data, or nothing (202)."""

    attributes: dict[str, Any] | None
    data: bytes | None
    fingerprint: str


class State(Enum):
    CLAIMED = "claimed"  # the caller owns the event now and must complete or release it
    IN_PROGRESS = "in-progress"  # someone else is handling it
    DONE = "done"  # handled before; `reply` holds the answer


@dataclass(frozen=True, slots=True)
class ClaimResult:
    state: State
    reply: Reply | None = None
    fingerprint: str | None = None


def event_key(source: str, event_id: str) -> str:
    """A store key for the event identity; length-prefixed so no two pairs can collide."""
    return f"{len(source)}:{source}{event_id}"


class DedupeStore(Protocol):
    """Where claims and replies live: in memory for one process, Redis across replicas."""

    async def claim(self, key: str, fingerprint: str) -> ClaimResult: ...

    async def complete(self, key: str, reply: Reply) -> None: ...

    async def release(self, key: str) -> None: ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Entry:
    expires: float
    fingerprint: str
    reply: Reply | None  # None while in progress


class MemoryDedupeStore:
    """The embedded store: one process, bounded in size (oldest first out) and in time (TTL)."""

    def __init__(
        self,
        *,
        ttl: float,
        lease: float,
        max_entries: int,
        clock: Any = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._lease = lease
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, key: str, fingerprint: str) -> ClaimResult:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            if entry.reply is None:
                return ClaimResult(State.IN_PROGRESS, fingerprint=entry.fingerprint)
            return ClaimResult(State.DONE, entry.reply, entry.fingerprint)
        self._entries[key] = _Entry(now + self._lease, fingerprint, None)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return ClaimResult(State.CLAIMED)

    async def complete(self, key: str, reply: Reply) -> None:
        self._entries[key] = _Entry(self._clock() + self._ttl, reply.fingerprint, reply)
        self._entries.move_to_end(key)

    async def release(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.reply is None:
            del self._entries[key]

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._entries.clear()
