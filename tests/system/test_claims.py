"""Dedupe claims bounded by the broker's delivery policy: a lost claim costs retries, never a
dead letter of an event that never ran.

The lease default is derived from the policy the manifests render; a running handler renews its
claim; a Redis frozen past REDIS_TIMEOUT_SECONDS (the client answers 503, then Redis runs the
queued claim) and a replica dying mid-event are both survived within the broker's retries.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventfn.app import create_app
from eventfn.core.clock import Clocks
from eventfn.core.policy import BROKER_DELIVERY, BrokerDelivery
from eventfn.dispatch.budget import run_within
from eventfn.stores.dedupe import State
from eventfn.stores.dedupe_redis import RedisDedupeStore
from eventfn.stores.records import event_key
from eventfn.stores.redis import redis_client
from eventfn.testing import app_client
from manifests import objects
from tests.functions import ASK, registry_with
from tests.helpers import support
from tests.helpers.faults import own_redis
from tests.helpers.loop_time import advance, one_turn
from tests.helpers.support import (
    Counting,
    binary_headers,
    deliver,
    dumps,
    handler_client,
    new_id,
    query,
    suite_settings,
)

RETRYABLE = {404, 408, 409, 429}
# A broker policy scaled down for tests (the same shape: 5 retries, exponential).
FAST_BROKER = BrokerDelivery(retry=5, backoff_delay=0.2)


def rendered_delivery() -> BrokerDelivery:
    """The delivery policy of a Trigger as `make manifests` renders it into eventing/ (for the
    suite's type, which declares no policy of its own)."""
    delivery = objects.trigger(ASK)["spec"]["delivery"]
    assert delivery["backoffPolicy"] == "exponential"
    match = re.fullmatch(r"PT([0-9.]+)S", delivery["backoffDelay"])
    assert match is not None
    return BrokerDelivery(retry=delivery["retry"], backoff_delay=float(match.group(1)))


async def broker(
    client: httpx.AsyncClient, text: str, policy: BrokerDelivery, event_id: str | None = None
) -> list[int]:
    """Deliver one event the way the broker does: retry 409/429/5xx on the policy's backoff."""
    event_id, statuses = event_id or new_id(), []
    for n in range(policy.retry + 1):
        try:
            response = await client.post(
                "/", headers=binary_headers(id=event_id), content=dumps(query(text))
            )
            status = response.status_code
        except httpx.HTTPError:
            status = 599  # the broker retries a failed request like a 5xx
        statuses.append(status)
        if status < 300 or not (status in RETRYABLE or status >= 500):
            break
        if n < policy.retry:
            # The broker's backoff, in real time: what it waits out (a frozen redis-server,
            # a lease the Redis server expires) runs on real clocks, not ours.
            await asyncio.sleep(policy.backoff_delay * 2**n)
    return statuses


def test_the_lease_default_is_derived_from_the_rendered_delivery_policy() -> None:
    """DEDUPE_LEASE_SECONDS' default is `claim_lease` of the policy the Triggers carry."""
    rendered = rendered_delivery()
    assert rendered == BROKER_DELIVERY
    assert suite_settings().dedupe_lease_seconds == rendered.claim_lease()


@pytest.mark.parametrize("policy", [rendered_delivery(), FAST_BROKER, BrokerDelivery(3, 1.0)])
def test_an_orphaned_claim_expires_before_the_brokers_last_retry(policy: BrokerDelivery) -> None:
    """Orphaned at any attempt but the last, a claim is gone before a later retry comes."""
    lease = policy.claim_lease()
    attempts = [0.0, *policy.retry_offsets()]
    for orphaned_at in attempts[:-1]:
        assert any(at > orphaned_at + lease for at in attempts)


async def test_a_handler_that_answers_without_suspending_starts_no_renewal() -> None:
    """The hot path pays nothing: the keep-alive starts only once the handler suspends."""
    started: list[str] = []
    stopped: list[str] = []

    def keepalive(key: str) -> Callable[[], None]:
        started.append(key)
        return lambda: stopped.append(key)

    async def instant() -> int:
        return 1

    async def suspends() -> int:
        await one_turn()  # the handler suspends, so the keep-alive starts
        return 2

    assert await run_within(1.0, instant(), keepalive, "a") == 1
    assert started == []
    assert await run_within(1.0, suspends(), keepalive, "b") == 2
    assert (started, stopped) == (["b"], ["b"])


@pytest.mark.parametrize(
    "store",
    [
        pytest.param("memory", marks=pytest.mark.looptime),
        pytest.param("redis", marks=pytest.mark.redis),
    ],
)
async def test_a_handler_working_past_its_lease_keeps_its_claim(store: str) -> None:
    """A redelivery while a long handler works is 409, however many leases it takes."""
    handler = Counting(gate=asyncio.Event())  # works until the test lets it finish
    extra: dict[str, Any] = {"dedupe_lease_seconds": 0.3}
    if store == "redis":
        extra.update(redis_url=support.redis_url(9), redis_timeout_seconds=0.1)
    event_id = new_id()
    # In memory, the leases on the loop's (virtual) clock, as the renewals' timers are.
    clocks = Clocks(monotonic=asyncio.get_running_loop().time) if store == "memory" else Clocks()
    app = create_app(suite_settings(**extra), registry_with(handler), clocks=clocks)
    async with app_client(app) as client:
        first = asyncio.create_task(deliver(client, event_id, "long"))
        await handler.entered.wait()
        if store == "memory":
            await advance(0.8)
        else:
            # A lease in Redis is a PX its server expires on its own clock, which no clock of
            # ours moves: the wait is real, well past 0.3 s, and only the renewal keeps it.
            await asyncio.sleep(0.8)
        during = await deliver(client, event_id, "long")
        assert handler.gate is not None
        handler.gate.set()
        assert (await first).status_code == 200
    assert during.status_code == 409
    assert handler.handled.count("long") == 1


@pytest.mark.redis
async def test_renew_extends_only_our_own_claim() -> None:
    """A replica cannot renew a claim it does not hold (or one that already expired)."""
    url = support.redis_url(9)
    ours = RedisDedupeStore(redis_client(url, 1.0), ttl=60, lease=0.2)
    theirs = RedisDedupeStore(redis_client(url, 1.0), ttl=60, lease=0.2)
    key = event_key("/tests", new_id())
    try:
        assert (await ours.claim(key, "f")).state is State.CLAIMED
        assert await ours.renew(key)
        assert not await theirs.renew(key)
        # The lease is a PX on the Redis server, expired by its clock: nothing to inject or await.
        await asyncio.sleep(0.3)
        assert (await theirs.claim(key, "f")).state is State.CLAIMED  # ours expired
        assert not await ours.renew(key)
    finally:
        await ours.aclose()
        await theirs.aclose()


@pytest.mark.chaos
@pytest.mark.redis
async def test_a_replica_dying_mid_event_costs_retries_not_a_dead_letter() -> None:
    """A claim left by a dead replica expires with the derived lease, within the retries."""
    url = support.redis_url(9)
    lease = FAST_BROKER.claim_lease()
    dead = RedisDedupeStore(redis_client(url, 1.0), ttl=60, lease=lease)
    handler = Counting()
    settings = {"redis_url": url, "redis_timeout_seconds": 0.5, "dedupe_lease_seconds": lease}
    async with handler_client(handler, **settings) as client:
        # The first attempt reached a replica that claimed the event and died.
        event_id = new_id()
        assert (await dead.claim(event_key("/tests", event_id), "f")).state is State.CLAIMED
        await dead.aclose()
        statuses = []
        for n in range(FAST_BROKER.retry):
            # The broker's backoff against a lease the Redis server expires (PX): real time.
            await asyncio.sleep(FAST_BROKER.backoff_delay * 2**n)
            response = await client.post(
                "/", headers=binary_headers(id=event_id), content=dumps(query("orphan"))
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
    assert statuses[-1] == 200, statuses
    assert set(statuses[:-1]) <= {409}
    assert handler.handled.count("orphan") == 1


@pytest.mark.chaos
@pytest.mark.redis
@pytest.mark.server
async def test_a_redis_freeze_longer_than_its_timeout_costs_retries_not_dead_letters(
    tmp_path: Path,
) -> None:
    """Redis SIGSTOPped past REDIS_TIMEOUT_SECONDS: 503s and 409s, then every event runs once."""
    handler = Counting()
    with own_redis() as redis:
        overrides = {"redis_url": redis.url, "redis_timeout_seconds": 0.3, "data_dir": tmp_path,
                     "dedupe_lease_seconds": FAST_BROKER.claim_lease()}  # fmt: skip
        async with handler_client(handler, **overrides) as client:

            async def one(n: int) -> list[int]:
                await asyncio.sleep(n * 0.05)  # spread over the freeze
                return await broker(client, f"q{n}", FAST_BROKER)

            deliveries = asyncio.gather(*(one(n) for n in range(40)))
            # A real redis-server frozen (SIGSTOP) for a while in the middle of the deliveries:
            # its freeze and the client timeouts it causes run on real time, nothing to await.
            await asyncio.sleep(0.3)
            redis.freeze()
            await asyncio.sleep(1.5)
            redis.thaw()
            results = await deliveries
    dead_lettered = [r for r in results if r[-1] >= 300]
    assert dead_lettered == []
    assert any(503 in r for r in results)  # the freeze was felt
    assert {s for r in results for s in r} <= {200, 409, 503, 504}
    assert all(handler.handled.count(f"q{n}") == 1 for n in range(40))
