"""Duplicates: the same source+id is the same event, handled once (the in-memory store)."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import httpx
import pytest

from eventfn.stores import dedupe as dedupe_module
from eventfn.stores.dedupe import MemoryDedupeStore, Reply, State
from eventfn.stores.records import event_key
from tests.helpers.support import (
    STRUCTURED,
    Clock,
    Counting,
    binary_headers,
    captured_logs,
    dumps,
    event_json,
    query,
)

REPLY = Reply("2026-11-25T12:00:00.000Z", b"{}", "fp")


def store(
    clock: Clock, *, ttl: float = 100, lease: float = 10, max_entries: int = 10
) -> MemoryDedupeStore:
    """A memory store on `clock`."""
    return MemoryDedupeStore(ttl=ttl, lease=lease, max_entries=max_entries, clock=clock)


# -------------------------------------------------------------------------------------------
# The store protocol
# -------------------------------------------------------------------------------------------


def test_event_key_is_length_prefixed() -> None:
    """Keys of different (source, id) pairs never collide, even when their concatenation does."""
    assert event_key("/a", "b") != event_key("/ab", "")
    assert event_key("/a", "b") == "2:/ab"


async def test_first_claim_is_granted_then_in_progress() -> None:
    """The first claim owns the event; a second one sees it in progress with its fingerprint."""
    s = store(Clock())
    assert (await s.claim("k", "fp")).state is State.CLAIMED
    second = await s.claim("k", "other")
    assert second.state is State.IN_PROGRESS
    assert second.fingerprint == "fp"


async def test_completed_event_replays_its_reply() -> None:
    """After complete, a claim reports DONE with the stored reply and fingerprint."""
    s = store(Clock())
    await s.claim("k", "fp")
    await s.complete("k", REPLY)
    done = await s.claim("k", "fp")
    assert done.state is State.DONE
    assert done.reply == REPLY
    assert done.fingerprint == "fp"


async def test_released_claim_can_be_claimed_again() -> None:
    """release drops an in-progress claim so the retry runs the handler."""
    s = store(Clock())
    await s.claim("k", "fp")
    await s.release("k")
    assert (await s.claim("k", "fp")).state is State.CLAIMED


async def test_release_never_drops_a_completed_reply() -> None:
    """Releasing after completion (or an unknown key) keeps what was answered."""
    s = store(Clock())
    await s.claim("k", "fp")
    await s.complete("k", REPLY)
    await s.release("k")
    await s.release("unknown")
    assert (await s.claim("k", "fp")).state is State.DONE


async def test_reply_expires_after_the_ttl() -> None:
    """A reply is replayed for the TTL; afterwards the event is new again."""
    clock = Clock()
    s = store(clock, ttl=100)
    await s.claim("k", "fp")
    await s.complete("k", REPLY)
    clock.now += 99.9
    assert (await s.claim("k", "fp")).state is State.DONE
    clock.now += 0.2
    assert (await s.claim("k", "fp")).state is State.CLAIMED


async def test_claim_expires_after_the_lease() -> None:
    """A claim of a replica that died is taken over once its lease runs out."""
    clock = Clock()
    s = store(clock, lease=10)
    await s.claim("k", "fp")
    clock.now += 9.9
    assert (await s.claim("k", "fp")).state is State.IN_PROGRESS
    clock.now += 0.2
    assert (await s.claim("k", "fp")).state is State.CLAIMED


async def test_size_bound_evicts_the_oldest_entries() -> None:
    """Beyond max_entries the oldest entries go first."""
    s = store(Clock(), max_entries=3)
    for key in "abcd":
        await s.claim(key, "fp")
        await s.complete(key, REPLY)
    assert len(s) == 3
    assert (await s.claim("a", "fp")).state is State.CLAIMED
    assert (await s.claim("d", "fp")).state is State.DONE


async def test_byte_bound_evicts_the_oldest_replies() -> None:
    """Beyond max_bytes the oldest replies go first; the accounting follows what is kept."""
    big = Reply("t", b"x" * 1000, "fp")
    s = MemoryDedupeStore(ttl=100, lease=10, max_entries=100, max_bytes=3600, clock=Clock())
    for key in "abcd":
        await s.claim(key, "fp")
        await s.complete(key, big)
    assert len(s) == 3
    assert s.bytes <= 3600
    assert (await s.claim("a", "fp")).state is State.CLAIMED
    assert (await s.claim("d", "fp")).state is State.DONE


@pytest.mark.parametrize(
    ("ids", "bound", "count", "kept", "slack"),
    [
        (lambda n: f"bench-1-1764086400-{n}", 4 * 2**20, 80_000, 10_000, 1.02),  # ~7x what fits
        (lambda n: "\U0001f600" * 100 + str(n), 2 * 2**20, 40_000, 1_000, 1.05),  # 4-byte chars
    ],
    ids=["ascii-ids", "emoji-ids"],
)
async def test_the_byte_bound_holds_for_the_memory_really_taken(
    ids: Any, bound: int, count: int, kept: int, slack: float
) -> None:
    """DEDUPE_MAX_BYTES bounds what the store takes, measured by tracemalloc, keys included
    (counted by the bytes their characters take), in the steady state of a full store that
    evicts as fast as it adds."""
    store = MemoryDedupeStore(ttl=3600, lease=30, max_entries=10**7, max_bytes=bound)
    data = b'{"result":{"message":"Processed query: What is Knative?"},"metadata":{}}'
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(count):
            key = event_key("/bench/wrk", ids(n))
            await store.claim(key, "f" * 32)
            await store.complete(key, Reply("2026-11-25T16:00:00.123Z", data, "f" * 32))
        gc.collect()
        taken = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store) > kept  # full, not emptied
    assert store.bytes <= bound
    assert taken <= bound * slack


async def test_without_a_count_bound_every_reply_lives_out_its_window() -> None:
    """The default store has no entry count: whatever the rate, a reply is replayed for the
    whole TTL while the memory bound allows it, and the window it holds is the TTL."""
    clock = Clock()
    s = MemoryDedupeStore(ttl=420, lease=4, max_bytes=64 * 2**20, clock=clock)
    for n in range(200_000):  # 100 s at 2,000 events/s: twice the old 100,000-entry bound
        key = f"e{n}"
        await s.claim(key, "fp")
        await s.complete(key, REPLY)
        clock.now += 0.0005
    assert (await s.claim("e0", "fp")).state is State.DONE
    assert s.window() == 420
    assert s.evicted_early == 0
    clock.now += 420
    assert (await s.claim("e0", "fp")).state is State.CLAIMED  # the window ended


async def test_when_memory_cuts_the_window_short_the_store_says_how_short() -> None:
    """Past the byte bound the oldest replies go before their TTL: counted, logged once per TTL
    period, and `window()` is the age of the oldest reply held, until a TTL passes without."""
    clock = Clock()
    big = Reply("t", b"x" * 1000, "fp")
    s = MemoryDedupeStore(ttl=100, lease=10, max_bytes=3600, clock=clock)
    with captured_logs(dedupe_module) as logged:
        for key in "abcdef":  # three fit; one a second
            await s.claim(key, "fp")
            await s.complete(key, big)
            clock.now += 1
    assert s.evicted_early == 3
    assert s.window() == pytest.approx(3)  # d, e and f are held: d completed 3 s ago
    warnings = [line for line in logged if line["event"] == "dedupe_window_short"]
    assert len(warnings) == 1
    assert warnings[0]["ttl_seconds"] == 100
    clock.now += 100
    assert s.window() == 100  # a whole TTL without an early eviction


async def test_events_in_progress_are_never_evicted() -> None:
    """The size bounds drop replies, never a claim: a claim holds until its lease ends."""
    s = store(Clock(), max_entries=2)
    await s.claim("busy", "fp")
    for key in "abc":
        await s.claim(key, "fp")
        await s.complete(key, REPLY)
    assert (await s.claim("busy", "fp")).state is State.IN_PROGRESS


@pytest.mark.parametrize(
    "reply",
    [
        Reply("2026-11-25T00:00:00.000Z", b'{"a": 1}', "0" * 32),
        Reply(None, None, "fp"),
        Reply("temps é", b"", "empreinte é"),
    ],
    ids=["reply", "no-reply", "unicode-and-empty-data"],
)
async def test_a_stored_reply_comes_back_exactly(reply: Reply) -> None:
    """What complete stored is what a later claim gets, field for field (packed records)."""
    s = store(Clock())
    await s.claim("k", reply.fingerprint)
    await s.complete("k", reply)
    done = await s.claim("k", "other")
    assert done.reply == reply
    assert done.fingerprint == reply.fingerprint


async def test_expired_replies_free_their_bytes() -> None:
    """Once their TTL ends, replies leave the store and its byte count with them."""
    clock = Clock()
    s = store(clock, ttl=10)
    for key in "ab":
        await s.claim(key, "fp")
        await s.complete(key, REPLY)
    assert s.bytes > 0
    clock.now += 11
    await s.claim("c", "fp")
    assert s.bytes == 0
    assert len(s) == 1  # the new claim


async def test_completing_twice_keeps_one_entry() -> None:
    """A second completion of the same key replaces the reply, it does not add an entry."""
    s = store(Clock())
    await s.claim("k", "fp")
    await s.complete("k", REPLY)
    size = s.bytes
    await s.complete("k", Reply("2026-11-25T12:00:00.001Z", b"{}", "fp"))
    assert len(s) == 1
    assert s.bytes == size
    assert (await s.claim("k", "fp")).reply == Reply("2026-11-25T12:00:00.001Z", b"{}", "fp")


async def test_store_pings_and_closes() -> None:
    """The memory store is always reachable; closing it forgets everything."""
    s = store(Clock())
    await s.claim("k", "fp")
    assert await s.ping()
    await s.aclose()
    assert len(s) == 0


# -------------------------------------------------------------------------------------------
# Through the ingress
# -------------------------------------------------------------------------------------------


async def test_redelivery_replays_without_running_the_handler(
    counted_client: httpx.AsyncClient, counting: Counting
) -> None:
    """Same source+id and body: the stored reply comes back, the handler runs once."""
    headers = binary_headers(id="dup")
    first = await counted_client.post("/", headers=headers, content=dumps(query()))
    second = await counted_client.post("/", headers=headers, content=dumps(query()))
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["ce-id"] == first.headers["ce-id"]
    assert counting.calls == 1


async def test_redelivery_in_another_mode_replays_in_that_mode(
    counted_client: httpx.AsyncClient, counting: Counting
) -> None:
    """A binary event redelivered in structured mode gets the same reply, structured."""
    first = await counted_client.post(
        "/", headers=binary_headers(id="x", source="/p"), content=dumps(query())
    )
    again = await counted_client.post(
        "/",
        headers={"content-type": STRUCTURED},
        content=dumps(event_json(query(), id="x", source="/p")),
    )
    assert again.headers["content-type"] == STRUCTURED
    assert again.json()["id"] == first.headers["ce-id"]
    assert again.json()["data"] == first.json()
    assert counting.calls == 1


async def test_same_id_from_another_source_is_another_event(
    counted_client: httpx.AsyncClient, counting: Counting
) -> None:
    """Identity is source+id: the same id from two sources is handled twice."""
    for source in ("/a", "/b"):
        await counted_client.post(
            "/", headers=binary_headers(id="1", source=source), content=dumps(query())
        )
    assert counting.calls == 2


async def test_changed_payload_under_the_same_identity_replays_the_first_answer(
    counted_client: httpx.AsyncClient, counting: Counting
) -> None:
    """A producer reusing source+id with new data gets the first answer (logged as its error)."""
    headers = binary_headers(id="reused")
    first = await counted_client.post("/", headers=headers, content=dumps(query("one")))
    second = await counted_client.post("/", headers=headers, content=dumps(query("two")))
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second.json()["result"]["message"] == "one"
    assert counting.calls == 1


async def test_redelivery_while_in_progress_is_409(
    counted_client: httpx.AsyncClient, counting: Counting
) -> None:
    """While the first delivery is being handled, a redelivery gets 409 and a Retry-After."""
    counting.gate = asyncio.Event()
    headers = binary_headers(id="slow")
    first = asyncio.create_task(counted_client.post("/", headers=headers, content=dumps(query())))
    await asyncio.wait_for(counting.entered.wait(), 5)
    second = await counted_client.post("/", headers=headers, content=dumps(query()))
    counting.gate.set()
    done = await first
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.headers["retry-after"] == "1"
    assert second.json()["type"].endswith("/in-progress")
    assert done.status_code == 200
    third = await counted_client.post("/", headers=headers, content=dumps(query()))
    assert third.content == done.content
    assert counting.calls == 1
