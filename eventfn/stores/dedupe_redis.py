"""The dedupe store shared by every replica: Redis, with the protocol of `eventfn.stores.dedupe`.

One key per event, holding a small JSON document:

    {"s": "c", "f": fingerprint, "o": owner}           claimed, expires with the lease (PX)
    {"s": "d", "f": fingerprint, "t": time, "d": b64}   done, expires with the TTL (PX)

`claim` is one atomic command, `SET key claim NX PX lease GET` (Redis >= 7.0): it stores the
claim when the key is absent and answers what the key held otherwise, so two replicas racing for
the same redelivery cannot both win. `release` deletes the key only while it still holds *our*
claim (the owner token), so a replica whose lease expired cannot drop the claim of the replica
that took over. Redis errors become `StoreUnavailable` (503 + Retry-After): the broker retries,
and an unreachable store is never mistaken for "not a duplicate".

Every command touches one key, so the keys need no hash tag on a Cluster. Claims and completions
go through an `AutoPipeline`: those of all the requests the event loop reads in one turn are
written together, on one connection that every request shares.
"""

from __future__ import annotations

import base64
import itertools
import os
from typing import TYPE_CHECKING, Any

import orjson

from eventfn.observability.logs import get_logger
from eventfn.stores.dedupe import ClaimResult, Reply, State
from eventfn.stores.redis_outage import Outage, usable
from eventfn.stores.redis_pipeline import AutoPipeline

if TYPE_CHECKING:  # redis costs ~140 ms to import: only replicas using it pay that
    import redis.asyncio as aioredis

KEY_PREFIX = "knfn:dedupe:"

log = get_logger("eventfn.stores.dedupe_redis")

# KEYS[1] = key; ARGV[1] = our claim document. Deletes only if the key still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] = key; ARGV[1] = our claim document, ARGV[2] = lease in ms. Extends only our claim.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _encode_reply(reply: Reply) -> bytes:
    return orjson.dumps(
        {
            "s": "d",
            "f": reply.fingerprint,
            "t": reply.time,
            "d": None if reply.data is None else base64.b64encode(reply.data).decode("ascii"),
        }
    )


def _decode(raw: bytes) -> ClaimResult:
    doc: dict[str, Any] = orjson.loads(raw)
    if doc.get("s") != "d":
        return ClaimResult(State.IN_PROGRESS, fingerprint=doc.get("f"))
    data = None if doc.get("d") is None else base64.b64decode(doc["d"])
    reply = Reply(doc.get("t"), data, str(doc.get("f")))
    return ClaimResult(State.DONE, reply, reply.fingerprint)


class RedisDedupeStore:
    """Claims and replies in Redis, shared by every replica of the function."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl: float,
        lease: float,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self._redis = client
        self._ttl = ttl
        self.evicted_early = 0  # Redis keeps each record its TTL (see `window`)
        self._ttl_ms = max(1, int(ttl * 1000))
        self._lease_ms = max(1, int(lease * 1000))
        self._prefix = prefix
        self._release = client.register_script(_RELEASE)
        self._pipeline = AutoPipeline(client)
        self._outage = Outage("dedupe")
        self._renew = client.register_script(_RENEW)
        # The claim documents this process wrote and has not completed or released yet.
        self._owned: dict[str, bytes] = {}
        # Owner tokens: unique across replicas and restarts (16 random bytes of this store),
        # then a counter: a uuid4 per claim was a measurable share of every event.
        self._owner_prefix = os.urandom(16).hex()
        self._owner_count = itertools.count()

    async def claim(self, key: str, fingerprint: str) -> ClaimResult:
        owner = f"{self._owner_prefix}{next(self._owner_count):x}"
        mine = orjson.dumps({"s": "c", "f": fingerprint, "o": owner})
        try:
            current = await self._pipeline.call(
                "SET", self._prefix + key, mine, "NX", "PX", self._lease_ms, "GET"
            )
        except self._outage.errors as exc:
            raise self._outage.failed(exc) from None
        if self._outage.since is not None:  # the first answer after an outage
            self._outage.ok()
        if current is None:
            self._owned[key] = mine
            return ClaimResult(State.CLAIMED)
        return _decode(current)

    async def complete(self, key: str, reply: Reply) -> None:
        self._owned.pop(key, None)
        try:
            await self._pipeline.call(
                "SET", self._prefix + key, _encode_reply(reply), "PX", self._ttl_ms
            )
        except self._outage.errors as exc:
            raise self._outage.failed(exc) from None

    async def release(self, key: str) -> None:
        mine = self._owned.pop(key, None)
        if mine is None:
            return
        try:
            await self._release(keys=[self._prefix + key], args=[mine])
        except self._outage.errors as exc:
            # Not worth failing the request for: the lease expires on its own, after which the
            # broker's retry runs the handler. The original error is what the caller reports.
            log.warning("dedupe_release_failed", error=type(exc).__name__, detail=str(exc))

    async def renew(self, key: str) -> bool:
        """Extend our claim on `key` by a lease; False if it is not ours (any more)."""
        mine = self._owned.get(key)
        if mine is None:
            return False
        try:
            renewed = await self._renew(keys=[self._prefix + key], args=[mine, self._lease_ms])
        except self._outage.errors as exc:
            raise self._outage.failed(exc) from None
        return bool(renewed)

    def window(self) -> float:
        """The TTL: Redis keeps every record for it (sizing: docs/operations/delivery.md)."""
        return self._ttl

    async def ping(self) -> bool:
        """True while Redis can serve claims (reachable, writable, of the configured mode)."""
        return await usable(self._redis, self._outage)

    async def aclose(self) -> None:
        await self._pipeline.aclose()
        await self._redis.aclose()
