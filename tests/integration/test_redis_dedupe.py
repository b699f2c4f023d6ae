"""Idempotency across replicas: two function instances sharing one Redis behave like one.

Each test builds two apps (`create_app`, in-process) on the same REDIS_URL, exactly like two
replicas of the Knative service; the handler is a real coroutine that counts its calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from eventfn.dispatch.registry import Registry
from eventfn.stores.dedupe import State
from eventfn.stores.dedupe_redis import RedisDedupeStore
from eventfn.stores.records import event_key
from eventfn.stores.redis import redis_client
from eventfn.stores.redis_pipeline import AutoPipeline
from eventfn.testing import app_client
from tests.functions import ASK, ASK_CATALOGUE, Answer, Question
from tests.helpers import support
from tests.helpers.support import (
    Counting,
    deliver,
    free_port,
    make_app,
    new_id,
    suite_settings,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url() -> str:
    """A flushed Redis database of this module."""
    return support.redis_url(10)


@contextlib.asynccontextmanager
async def replicas(
    url: str, handler: Counting, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two replicas of the function sharing Redis, both running `handler`."""
    registry = Registry(ASK_CATALOGUE)
    registry.handles(ASK)(handler)
    settings = suite_settings(redis_url=url, **overrides)
    async with (
        app_client(make_app(settings, registry=registry)) as a,
        app_client(make_app(settings, registry=registry)) as b,
    ):
        yield a, b


async def test_redelivery_to_the_other_replica_replays_the_stored_reply(redis_url: str) -> None:
    """The second replica answers a redelivery with the first reply; the handler ran once."""
    handler = Counting()
    event_id = new_id()
    async with replicas(redis_url, handler) as (a, b):
        first = await deliver(a, event_id)
        second = await deliver(b, event_id)
    assert first.status_code == second.status_code == 200
    assert second.headers["ce-id"] == first.headers["ce-id"]
    assert second.headers["ce-time"] == first.headers["ce-time"]
    assert second.content == first.content
    assert handler.handled == ["q"]


async def test_redelivery_while_the_first_is_in_progress_is_409(redis_url: str) -> None:
    """A redelivery to another replica during the lease is 409 with Retry-After."""
    handler = Counting(gate=asyncio.Event())
    event_id = new_id()
    async with replicas(redis_url, handler) as (a, b):
        first = asyncio.create_task(deliver(a, event_id))
        await handler.entered.wait()
        second = await deliver(b, event_id)
        handler.gate.set()  # type: ignore[union-attr]
        assert (await first).status_code == 200
    assert second.status_code == 409
    assert second.headers["retry-after"] == "1"
    assert second.json()["type"].endswith("/in-progress")
    assert handler.handled == ["q"]


async def test_a_handler_failure_releases_the_claim(redis_url: str) -> None:
    """After a handler failure (500) the broker's retry, on any replica, runs the handler."""
    handler = Counting(failures=1)
    event_id = new_id()
    async with replicas(redis_url, handler) as (a, b):
        failed = await deliver(a, event_id)
        retried = await deliver(b, event_id)
    assert failed.status_code == 500
    assert retried.status_code == 200
    assert handler.handled == ["q", "q"]


async def test_a_stuck_handler_times_out_and_releases_the_claim(redis_url: str) -> None:
    """A handler over its time budget is a retryable 504, and the retry runs the handler."""
    handler = Counting(gate=asyncio.Event())
    event_id = new_id()
    async with replicas(redis_url, handler, handler_timeout_seconds=0.2) as (a, b):
        timed_out = await deliver(a, event_id)
        handler.gate.set()  # type: ignore[union-attr]
        retried = await deliver(b, event_id)
    assert timed_out.status_code == 504
    assert retried.status_code == 200
    assert len(handler.handled) == 2


async def test_an_expired_lease_of_a_dead_replica_lets_the_redelivery_run(redis_url: str) -> None:
    """A claim left by a replica that died blocks until its lease expires, then the event runs."""
    event_id = new_id()
    dead_replica = RedisDedupeStore(redis_client(redis_url, 1.0), ttl=60, lease=0.3)
    claimed = await dead_replica.claim(event_key("/tests", event_id), "fingerprint")
    await dead_replica.aclose()  # the replica dies without completing or releasing
    assert claimed.state is State.CLAIMED
    handler = Counting()
    async with replicas(redis_url, handler) as (a, _):
        during_lease = await deliver(a, event_id)
        # The lease is a PX on the Redis server, expired by its clock: nothing to inject or await.
        await asyncio.sleep(0.4)
        after_lease = await deliver(a, event_id)
    assert during_lease.status_code == 409
    assert after_lease.status_code == 200
    assert handler.handled == ["q"]


async def test_a_changed_payload_is_answered_with_the_first_reply(redis_url: str) -> None:
    """Same source + id with another payload: the first reply stands, the handler is not rerun."""
    handler = Counting()
    event_id = new_id()
    async with replicas(redis_url, handler) as (a, b):
        first = await deliver(a, event_id, "original")
        changed = await deliver(b, event_id, "changed")
    assert changed.status_code == 200
    assert changed.content == first.content
    assert changed.json()["result"]["message"] == "original"
    assert handler.handled == ["original"]


async def test_a_202_without_reply_is_replayed_as_202(redis_url: str) -> None:
    """A handled event with nothing to say is replayed as 202 by the other replica."""
    calls: list[str] = []

    async def silent(request: Question) -> None:
        calls.append(request.query)

    registry = Registry(ASK_CATALOGUE)
    registry.handles(ASK)(silent)
    settings = suite_settings(redis_url=redis_url)
    event_id = new_id()
    async with (
        app_client(make_app(settings, registry=registry)) as a,
        app_client(make_app(settings, registry=registry)) as b,
    ):
        assert (await deliver(a, event_id)).status_code == 202
        assert (await deliver(b, event_id)).status_code == 202
    assert calls == ["q"]


async def test_unreachable_redis_is_503_with_retry_after_never_a_new_event() -> None:
    """Redis down: the ingress answers 503 problem+json + Retry-After; the handler never runs."""
    handler = Counting()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with replicas(dead, handler, redis_timeout_seconds=0.5) as (a, _):
        response = await deliver(a, new_id())
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("/store-unavailable")
    assert handler.handled == []


async def test_release_leaves_a_claim_taken_over_by_another_replica(redis_url: str) -> None:
    """A replica whose lease expired cannot release the claim another replica took since."""
    key = event_key("/tests", new_id())
    slow = RedisDedupeStore(redis_client(redis_url, 1.0), ttl=60, lease=0.1)
    fast = RedisDedupeStore(redis_client(redis_url, 1.0), ttl=60, lease=30)
    try:
        assert (await slow.claim(key, "f")).state is State.CLAIMED
        # The lease is a PX on the Redis server, expired by its clock: nothing to inject or await.
        await asyncio.sleep(0.15)
        assert (await fast.claim(key, "f")).state is State.CLAIMED
        await slow.release(key)  # too late: the claim is the other replica's now
        assert (await slow.claim(key, "f")).state is State.IN_PROGRESS
    finally:
        await slow.aclose()
        await fast.aclose()


async def test_redis_lost_after_the_handler_ran_still_answers_and_runs_it_once(
    redis_url: str,
) -> None:
    """Redis failing between claim and completion: the reply goes out (200), the claim stays,
    so a redelivery during the lease gets 409 and the handler is not run a second time."""
    closed = free_port()
    registry = Registry(ASK_CATALOGUE)
    calls: list[str] = []

    @registry.handles(ASK)
    async def cut_redis_then_answer(request: Question) -> Answer:
        calls.append(request.query)
        store = app.state.runtime.dedupe
        assert isinstance(store, RedisDedupeStore)
        # Swap in a real client of a closed port: the completion that follows fails for real.
        store._pipeline = AutoPipeline(redis_client(f"redis://127.0.0.1:{closed}/0", 0.5))
        return Answer(result={"answer": request.query})

    app = make_app(suite_settings(redis_url=redis_url), registry=registry)
    event_id = new_id()
    async with app_client(app) as client:
        answered = await deliver(client, event_id)
    assert answered.status_code == 200
    assert answered.json()["result"] == {"answer": "q"}
    async with replicas(redis_url, Counting()) as (other, _):
        redelivered = await deliver(other, event_id)
    assert redelivered.status_code == 409
    assert calls == ["q"]
