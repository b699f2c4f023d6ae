"""A Redis outage, as the stores report it: a 503 for every call, one log line for the outage.

Every call that fails during an outage is answered 503 + Retry-After (the broker retries it),
but the logs say it once when it begins, then at most once per interval with the failures
counted, and once more when Redis answers again: an operator reads when it began, how long it
lasted and how many calls it cost. The faults run against a `redis-server` of the test's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from eventfn.core.errors import StoreUnavailable
from eventfn.stores import redis_outage
from eventfn.stores.dedupe import State
from eventfn.stores.dedupe_redis import RedisDedupeStore
from eventfn.stores.outbox import RedisOutbox
from eventfn.stores.redis import redis_client
from eventfn.stores.redis_outage import Outage
from tests.helpers.faults import own_redis
from tests.helpers.support import Clock, captured_logs


async def first_success(call: Callable[[], Awaitable[Any]], attempts: int = 50) -> Any:
    """What `call` answers once Redis serves it again (a few calls may still fail)."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except StoreUnavailable:
            continue
    return await call()


def lines(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == event]


def test_an_outage_is_logged_when_it_begins_then_once_per_interval_then_when_it_ends() -> None:
    clock = Clock(now=100.0)
    outage = Outage("dedupe", every=10.0, clock=clock)
    with captured_logs(redis_outage) as logs:
        for n in range(50):
            clock.now = 100.0 + n * 0.1  # 50 failures in 5 s: within the first interval
            error = outage.failed(RedisConnectionError("Connection refused"))
        assert isinstance(error, StoreUnavailable)
        assert error.retry_after == 1
        clock.now = 110.0
        outage.failed(RedisConnectionError("Connection refused"))  # 10 s in: one more line
        clock.now = 112.5
        outage.ok()
        outage.ok()  # no outage any more: nothing to say
    began = lines(logs, "redis_unavailable")
    assert len(began) == 1
    assert began[0]["store"] == "dedupe"
    assert began[0]["error"] == "ConnectionError"
    assert began[0]["log_level"] == "warning"
    lasting = lines(logs, "redis_still_unavailable")
    assert [(x["failures"], x["seconds"]) for x in lasting] == [(51, 10.0)]
    ended = lines(logs, "redis_recovered")
    assert [(x["failures"], x["seconds"], x["log_level"]) for x in ended] == [(51, 12.5, "info")]
    assert outage.since is None
    assert outage.failures == 0


def test_the_context_turns_redis_errors_into_503s_and_passes_our_own_bugs_on() -> None:
    outage = Outage("outbox")
    with captured_logs(redis_outage) as logs:
        with pytest.raises(StoreUnavailable) as raised, outage:
            raise TimeoutError("no answer")
        assert raised.value.retry_after == 1
        assert "outbox store is unreachable" in raised.value.detail
        with pytest.raises(KeyError), outage:  # not Redis' fault: not a 503
            raise KeyError("bug")
        assert outage.failures == 1
        with outage:
            pass  # a call that worked
    assert [line["event"] for line in logs] == ["redis_unavailable", "redis_recovered"]
    assert outage.since is None


@pytest.mark.redis
async def test_a_killed_redis_logs_one_outage_per_store_and_its_end_after_the_restart() -> None:
    with own_redis() as server:
        dedupe = RedisDedupeStore(redis_client(server.url, 0.5), ttl=60, lease=5)
        outbox = RedisOutbox(redis_client(server.url, 0.5))
        try:
            await dedupe.claim("warm", "f")  # connected before the fault
            with captured_logs(redis_outage) as logs:
                server.kill()
                for n in range(20):
                    with pytest.raises(StoreUnavailable):
                        await dedupe.claim(f"during-{n}", "f")
                with pytest.raises(StoreUnavailable):
                    await outbox.depth()
                server.start()
                # the first calls may meet a connection the kill closed
                claimed = await first_success(lambda: dedupe.claim("after", "f"))
                assert claimed.state is State.CLAIMED
                assert await first_success(outbox.depth) == 0
        finally:
            await dedupe.aclose()
            await outbox.stop()
    began = lines(logs, "redis_unavailable")
    assert sorted(x["store"] for x in began) == ["dedupe", "outbox"]
    ended = {x["store"]: x for x in lines(logs, "redis_recovered")}
    assert sorted(ended) == ["dedupe", "outbox"]
    assert ended["dedupe"]["failures"] >= 20
    assert ended["outbox"]["failures"] >= 1


@pytest.mark.redis
async def test_a_passing_readiness_probe_ends_the_outage_of_a_replica_without_deliveries() -> None:
    """A replica whose Redis failed is out of the Service's endpoints, so no delivery comes to
    succeed: its readiness probe, once Redis answers it, ends the outage in the logs. Probes
    that fail meanwhile are failures of the same outage, not a warning each."""
    with own_redis() as server:
        dedupe = RedisDedupeStore(redis_client(server.url, 0.5), ttl=60, lease=5)
        failed_probes = 0
        try:
            with captured_logs(redis_outage) as logs:
                server.kill()
                with pytest.raises(StoreUnavailable):
                    await dedupe.claim("during", "f")
                for _ in range(5):  # the kubelet probing every few seconds while it is down
                    assert not await dedupe.ping()
                    failed_probes += 1
                server.start()
                for _ in range(50):  # a pooled connection the kill closed may fail first
                    if await dedupe.ping():
                        break
                    failed_probes += 1
                else:
                    pytest.fail("readiness never passed again")
        finally:
            await dedupe.aclose()
    assert [x["store"] for x in lines(logs, "redis_unavailable")] == ["dedupe"]
    assert lines(logs, "redis_still_unavailable") == []  # all within the first 10 s
    recovered = lines(logs, "redis_recovered")
    assert [(x["store"], x["failures"]) for x in recovered] == [("dedupe", 1 + failed_probes)]
