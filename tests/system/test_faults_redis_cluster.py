"""Redis failing in every way redis-py can say it: a 503 with Retry-After, readiness included.

Each store translates its library's errors in one place (`Outage`, from `transient_errors`):
every exception class `redis.exceptions` defines is raised through each store here, found by
introspection, so a class added by a redis-py upgrade is covered the day it appears. Then the
Cluster, for real (chaos): every node killed, a closed port at start-up, one node frozen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.exceptions

from eventfn.core.errors import StoreUnavailable
from eventfn.stores.deadletters import RedisDeadLetterStore
from eventfn.stores.dedupe_redis import RedisDedupeStore
from eventfn.stores.outbox import RedisOutbox
from eventfn.stores.redis import redis_client
from eventfn.stores.redis_outage import Outage, transient_errors
from tests.helpers.redis_servers import Servers, cluster_servers
from tests.helpers.support import (
    assert_unavailable,
    binary_headers,
    dumps,
    free_port,
    query,
    suite_client,
)

LIBRARY_ERRORS = sorted(
    (
        kind
        for kind in vars(redis.exceptions).values()
        if isinstance(kind, type)
        and issubclass(kind, BaseException)
        and kind.__module__ == redis.exceptions.__name__
    ),
    key=lambda kind: kind.__name__,
)


def instance(kind: type[BaseException]) -> BaseException:
    """An instance of `kind`: redirections (MOVED, ASK) parse "slot host:port" messages."""
    return kind("3999 127.0.0.1:6381")


def test_the_library_defines_errors_of_several_roots() -> None:
    """redis-py's errors do not all derive from RedisError (which is why all are listed)."""
    assert any(not issubclass(kind, redis.exceptions.RedisError) for kind in LIBRARY_ERRORS)
    assert redis.exceptions.RedisClusterException in LIBRARY_ERRORS


@pytest.mark.parametrize("kind", LIBRARY_ERRORS, ids=lambda kind: kind.__name__)
def test_every_library_error_is_a_store_outage(kind: type[BaseException]) -> None:
    """Each class redis.exceptions defines is what a store answers 503 + Retry-After for."""
    assert issubclass(kind, transient_errors())
    with pytest.raises(StoreUnavailable) as raised, Outage("test"):
        raise instance(kind)
    assert raised.value.status_code == 503
    assert raised.value.retry_after is not None


@pytest.mark.parametrize("kind", [OSError, TimeoutError], ids=lambda kind: kind.__name__)
def test_socket_errors_and_deadlines_are_store_outages(kind: type[BaseException]) -> None:
    """A reset socket or a deadline passed is an outage too, not a bug."""
    with pytest.raises(StoreUnavailable), Outage("test"):
        raise kind("gone")


def failing_client(kind: type[BaseException]) -> Any:
    """A real client whose every command, pipeline and connection raises `kind`."""
    client: Any = redis_client("redis://127.0.0.1:6379/15", 1.0)

    async def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise instance(kind)

    client.execute_command = fail
    client.connection_pool.get_connection = fail

    class Pipeline:
        def __init__(self, *_args: Any, **_kwargs: Any) -> None: ...

        async def __aenter__(self) -> Pipeline:
            return self

        async def __aexit__(self, *_exc: object) -> None: ...

        def __getattr__(self, _name: str) -> Callable[..., Any]:
            return lambda *_a, **_k: self

        async def execute(self, *_args: Any, **_kwargs: Any) -> Any:
            raise instance(kind)

    client.pipeline = Pipeline
    return client


StoreCall = Callable[[Any], Coroutine[Any, Any, Any]]
STORE_CALLS: dict[str, StoreCall] = {
    "dedupe.claim": lambda client: RedisDedupeStore(client, ttl=60, lease=10).claim("k", "f"),
    "outbox.depth": lambda client: RedisOutbox(client).depth(),
    "outbox.take_due": lambda client: RedisOutbox(client).take_due(1, 1.0),
    "deadletters.get": lambda client: RedisDeadLetterStore(client).get("x"),
    "deadletters.page": lambda client: RedisDeadLetterStore(client).page(10, None),
    "deadletters.delete": lambda client: RedisDeadLetterStore(client).delete("x"),
}


@pytest.mark.parametrize("call", sorted(STORE_CALLS))
@pytest.mark.parametrize("kind", LIBRARY_ERRORS, ids=lambda kind: kind.__name__)
async def test_every_store_answers_every_library_error_with_503(
    kind: type[BaseException], call: str
) -> None:
    """Raised by the client under any store, each library error comes out as StoreUnavailable."""
    client = failing_client(kind)
    with pytest.raises(StoreUnavailable):
        await STORE_CALLS[call](client)


# -- a real Cluster ---------------------------------------------------------------------------


def cluster_settings(port: int) -> dict[str, Any]:
    return {
        "redis_url": f"redis://127.0.0.1:{port}/0",
        "redis_mode": "cluster",
        "redis_timeout_seconds": 0.5,
        "dedupe_lease_seconds": 5.0,
        "k_sink": None,
    }


async def every_door(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
    """One request through each door that needs Redis, readiness included."""
    body = dumps(query())
    return {
        "POST /": await client.post("/", headers=binary_headers(), content=body),
        "POST /deadletter": await client.post(
            "/deadletter", headers=binary_headers(knativeerrorcode="500"), content=body
        ),
        "GET /api/v1/deadletters": await client.get("/api/v1/deadletters"),
        "DELETE /api/v1/deadletters/x": await client.delete("/api/v1/deadletters/x"),
    }


@pytest.mark.chaos
async def test_a_cluster_with_every_node_killed_is_503_at_every_door() -> None:
    """Every node of the Cluster killed: 503 problem+json everywhere, readiness not ready."""
    with cluster_servers() as (servers, ports):
        async with suite_client(**cluster_settings(ports[0])) as client:
            assert (await client.get("/health/readiness")).status_code == 200
            for port in list(ports):
                servers.kill(port)
            for door, response in (await every_door(client)).items():
                assert response.status_code == 503, door
                assert_unavailable(response)
            readiness = await client.get("/health/readiness")
            assert readiness.status_code == 503
            assert readiness.json() == {"status": "redis-unavailable"}


@pytest.mark.chaos
async def test_a_cluster_that_cannot_be_reached_at_start_up_is_503() -> None:
    """A closed port in cluster mode from the start: 503s and not ready, never a 500."""
    async with suite_client(**cluster_settings(free_port())) as client:
        for door, response in (await every_door(client)).items():
            assert response.status_code == 503, door
            assert_unavailable(response)
        readiness = await client.get("/health/readiness")
        assert readiness.status_code == 503
        assert readiness.headers["content-type"] == "application/json"


@contextlib.contextmanager
def frozen(servers: Servers, port: int) -> Iterator[None]:
    """The node at `port` stopped (SIGSTOP): its socket accepts, nothing answers."""
    pid = servers.procs[port].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.chaos
async def test_a_frozen_cluster_node_is_answered_within_the_redis_timeout() -> None:
    """One node frozen: its requests get 503 once REDIS_TIMEOUT_SECONDS passed, not 8 later.

    Bounded at four timeouts (2 s with 0.5 s): redis-py's retries and slot rediscovery, each
    with a socket timeout of its own, took 8.6 of them before every command was held to one.
    """
    with cluster_servers() as (servers, ports):
        async with suite_client(**cluster_settings(ports[0])) as client:
            # Letters land on one slot ({deadletters}): the node that holds it is the one frozen.
            holder = _slot_owner(ports, "knfn:{deadletters}:docs")
            assert (await client.get("/api/v1/deadletters")).status_code == 200
            with frozen(servers, holder):
                async with asyncio.timeout(4 * 0.5):
                    listed = await client.get("/api/v1/deadletters")
                    deleted = await client.delete("/api/v1/deadletters/x")
                    stored = await client.post(
                        "/deadletter",
                        headers=binary_headers(knativeerrorcode="500"),
                        content=dumps(query()),
                    )
            for response in (listed, deleted, stored):
                assert_unavailable(response)


def _slot_owner(ports: list[int], key: str) -> int:
    """The port of the master serving `key`'s slot."""
    probe: Any = redis.Redis(port=ports[0])
    slot = probe.cluster("keyslot", key)
    for start, end, master, *_ in probe.cluster("slots"):
        if start <= slot <= end:
            return int(master[1])
    raise AssertionError(f"no node serves slot {slot}")
