"""Idempotency: CloudEvents with the same `source` + `id` are the same event.

The protocol (the same for every store):

1. `claim(key, fingerprint)` atomically marks the event in progress for a lease, or reports that
   it is already in progress (the ingress answers 409, the broker retries later) or done (the
   stored reply is replayed, the handler does not run again).
2. `complete(key, record)` stores the reply for the TTL, replacing the claim.
3. `release(key)` drops the claim after a failure, so the broker's retry can run the handler.
4. `renew(key)` extends our claim by a lease while the handler works (False: it is not ours).

The lease is short (derived from the broker's retry policy, `BrokerDelivery.claim_lease`) and a
running handler renews it: a replica that dies mid-event leaves its claim to expire within a
retry or two of the broker, and the next redelivery runs the handler. The fingerprint of the
payload is kept with the claim and the reply so that a redelivery carrying a different payload
can be reported as a producer error.
"""

from __future__ import annotations

import struct
import sys
import time
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from eventfn.observability.logs import get_logger

log = get_logger("eventfn.stores.dedupe")


@dataclass(slots=True)  # not frozen: see eventfn.binding.Event
class Reply:
    """What an event was answered, as much as answering a redelivery again takes.

    The reply's `time` and JSON `data`; its other attributes follow from the redelivered request
    (id, source, type, trace), so they are not stored. `time` is None when there was no reply
    (202).
    """

    time: str | None
    data: bytes | None
    fingerprint: str


class State(Enum):
    CLAIMED = "claimed"  # the caller owns the event now and must complete or release it
    IN_PROGRESS = "in-progress"  # someone else is handling it
    DONE = "done"  # handled before; `reply` holds the answer


@dataclass(slots=True)  # not frozen: see eventfn.binding.Event
class ClaimResult:
    state: State
    reply: Reply | None = None
    fingerprint: str | None = None


class DedupeStore(Protocol):
    """Where claims and replies live: in memory for one process, Redis across replicas."""

    evicted_early: int  # replies dropped before their TTL to stay within a memory bound

    async def claim(self, key: str, fingerprint: str) -> ClaimResult: ...

    async def complete(self, key: str, reply: Reply) -> None: ...

    async def release(self, key: str) -> None: ...

    async def renew(self, key: str) -> bool: ...

    async def ping(self) -> bool: ...

    def window(self) -> float:
        """Seconds back a redelivery is recognised now (the TTL unless memory cut it short)."""
        ...

    async def aclose(self) -> None: ...


# A completed entry of the memory store, packed in one bytes object (not tracked by the cyclic
# GC, no per-field objects): expiry, the lengths of fingerprint and time (0xFF: no reply), then
# the fingerprint and time (UTF-8) and the data.
_RECORD = struct.Struct("<dBB")
_NO_REPLY = 0xFF
# Bytes an entry costs beyond its key and record: the str and bytes headers, the dict slot and
# the order deque's pointer, measured with tracemalloc on CPython 3.11 in the steady state of a
# full store (evicting as fast as it adds, which leaves the dict's table larger than when filling
# it: 140 bytes then, 172 now; tests/unit/test_dedupe_memory.py checks the bound holds).
ENTRY_OVERHEAD = 175


# What `sys.getsizeof` counts of a str beyond its characters when they are ASCII (the header that
# ENTRY_OVERHEAD already includes).
_EMPTY_STR = sys.getsizeof("")


def key_bytes(key: str) -> int:
    """The bytes `key`'s characters take: 1 each when ASCII, up to 4 (emoji) otherwise."""
    if key.isascii():  # O(1): a flag of the string; the usual case
        return len(key)
    return sys.getsizeof(key) - _EMPTY_STR


def _pack(expires: float, reply: Reply) -> bytes:
    fingerprint = reply.fingerprint.encode()
    time = b"" if reply.time is None else reply.time.encode()
    if len(fingerprint) >= 0xFF or len(time) >= 0xFF:
        raise ValueError("fingerprint and time are short strings")
    time_len = _NO_REPLY if reply.time is None else len(time)
    head = _RECORD.pack(expires, len(fingerprint), time_len)
    return b"".join((head, fingerprint, time, reply.data or b""))


def _unpack(record: bytes) -> Reply:
    _, fp_len, time_len = _RECORD.unpack_from(record)
    at = _RECORD.size + fp_len
    fingerprint = record[_RECORD.size : at].decode()
    if time_len == _NO_REPLY:
        return Reply(None, None, fingerprint)
    return Reply(record[at : at + time_len].decode(), record[at + time_len :], fingerprint)


class MemoryDedupeStore:
    """The embedded store: one process, bounded by the window (TTL) and by the memory it takes.

    Built for the memory it holds: a completed event is one packed bytes record under its key
    (ENTRY_OVERHEAD bytes plus the key, fingerprint, time and reply data), kept in completion order
    so that expiry and eviction pop from the front. Events in progress are kept apart, in a
    dict as small as the concurrency, and never evicted: a claim holds until its lease ends.

    A reply is kept for the window (`ttl`), however many there are; `max_bytes` (and
    `max_entries`, when set) only bound the memory: when reached, the oldest replies go before
    their time. That shortens the window the store holds: `window()` says how long it is
    now, `evicted_early` counts the replies that went early, and the first such eviction of
    each TTL period is logged with the window left.
    """

    def __init__(
        self,
        *,
        ttl: float,
        lease: float,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._lease = lease
        self._max = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._done: dict[str, bytes] = {}
        self._order: deque[str] = deque()  # the keys of _done, oldest completion first
        self._bytes = 0
        self._claims: dict[str, tuple[float, str]] = {}  # key -> (lease end, fingerprint)
        self.evicted_early = 0
        self._last_early: float | None = None  # when a reply last went before its TTL ended

    def __len__(self) -> int:
        return len(self._done) + len(self._claims)

    @property
    def bytes(self) -> int:
        """The bytes the completed entries are accounted for."""
        return self._bytes

    async def claim(self, key: str, fingerprint: str) -> ClaimResult:
        now = self._clock()
        self._expire(now)
        record = self._done.get(key)
        if record is not None and _RECORD.unpack_from(record)[0] > now:
            reply = _unpack(record)
            return ClaimResult(State.DONE, reply, reply.fingerprint)
        claim = self._claims.get(key)
        if claim is not None and claim[0] > now:
            return ClaimResult(State.IN_PROGRESS, fingerprint=claim[1])
        self._claims[key] = (now + self._lease, fingerprint)
        return ClaimResult(State.CLAIMED)

    async def complete(self, key: str, reply: Reply) -> None:
        self._claims.pop(key, None)
        record = _pack(self._clock() + self._ttl, reply)
        previous = self._done.get(key)
        if previous is None:
            self._order.append(key)
            self._bytes += key_bytes(key) + ENTRY_OVERHEAD
        else:  # completed again after its reply expired: keeps its place in the order
            self._bytes -= len(previous)
        self._done[key] = record
        self._bytes += len(record)
        self._evict()

    async def release(self, key: str) -> None:
        self._claims.pop(key, None)

    async def renew(self, key: str) -> bool:
        now = self._clock()
        claim = self._claims.get(key)
        if claim is None or claim[0] <= now:
            return False
        self._claims[key] = (now + self._lease, claim[1])
        return True

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._done.clear()
        self._order.clear()
        self._claims.clear()
        self._bytes = 0

    def _expire(self, now: float) -> None:
        """Drop the replies whose TTL ended: they are at the front of the completion order."""
        order, done = self._order, self._done
        while order and _RECORD.unpack_from(done[order[0]])[0] <= now:
            self._drop_oldest()

    def _evict(self) -> None:
        order, limit, max_bytes = self._order, self._max, self._max_bytes
        evicted = 0
        while order and (
            (limit is not None and len(order) > limit)
            or (max_bytes is not None and self._bytes > max_bytes)
        ):
            self._drop_oldest()
            evicted += 1
        if evicted:
            self._went_early(evicted)

    def _went_early(self, count: int) -> None:
        """Count replies dropped before their TTL; say so once per TTL period."""
        self.evicted_early += count
        now = self._clock()
        if self._last_early is None or now - self._last_early >= self._ttl:
            log.warning(
                "dedupe_window_short",
                window_seconds=round(self.window(now), 1),
                ttl_seconds=self._ttl,
                detail="the in-memory store is full (DEDUPE_MAX_BYTES): older replies went "
                "early, their redeliveries count as new; use REDIS_URL, or more memory",
            )
        self._last_early = now

    def window(self, now: float | None = None) -> float:
        """Seconds back the store recognises a redelivery: the TTL, unless replies went early
        within the last TTL (then the age of the oldest reply it holds)."""
        now = self._clock() if now is None else now
        if self._last_early is None or now - self._last_early >= self._ttl:
            return self._ttl
        if not self._order:
            return 0.0
        oldest_expiry: float = _RECORD.unpack_from(self._done[self._order[0]])[0]
        return max(0.0, min(self._ttl, now - (oldest_expiry - self._ttl)))

    def _drop_oldest(self) -> None:
        key = self._order.popleft()
        self._bytes -= key_bytes(key) + ENTRY_OVERHEAD + len(self._done.pop(key))
