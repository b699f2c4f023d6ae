"""The multiplexed Redis connection under the dedupe store (`eventfn.stores.redis_mux`).

Every request of a process shares one connection: each caller gets its own command's answer,
however many are in flight, and a failure of the connection reaches the callers waiting on it
as a transient error (a 503 upstream), after which the next command connects again. Faults run
against a `redis-server` of the test's own (kill, freeze, made a replica), never the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eventfn.stores.redis import build_client
from eventfn.stores.redis_outage import transient_errors
from eventfn.stores.redis_pipeline import AutoPipeline
from tests.helpers import support
from tests.helpers.faults import own_redis
from tests.helpers.loop_time import one_turn
from tests.helpers.support import until

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url() -> str:
    return support.redis_url(11)


@contextlib.asynccontextmanager
async def pipeline_to(url: str, redis_timeout: float = 2.0) -> AsyncIterator[AutoPipeline]:
    """An AutoPipeline on a client of `url` (REDIS_TIMEOUT_SECONDS: `redis_timeout`), closed."""
    client = build_client(
        support.suite_settings(redis_url=url, redis_timeout_seconds=redis_timeout)
    )
    pipe = AutoPipeline(client)
    try:
        yield pipe
    finally:
        await pipe.aclose()
        await client.aclose()


@pytest.fixture
async def pipeline(redis_url: str) -> AsyncIterator[AutoPipeline]:
    async with pipeline_to(redis_url) as pipe:
        yield pipe


async def connections_named(url: str, name: str) -> int:
    """How many connections of `url`'s server have the client name `name`."""
    observer = aioredis.Redis.from_url(url)
    try:
        return sum(1 for c in await observer.client_list() if c.get("name") == name)
    finally:
        await observer.aclose()


async def test_every_caller_gets_its_own_answer_over_one_connection(redis_url: str) -> None:
    """2,000 commands from 500 concurrent callers, in several turns: one connection, no mix-up."""
    name = "knfn-mux-test"

    async def caller(n: int) -> None:
        for round_ in range(4):
            value = f"{n}:{round_}".encode()
            assert await pipe.call("SET", f"mux:{n}", value, "GET") == (
                None if round_ == 0 else f"{n}:{round_ - 1}".encode()
            )
            await one_turn()  # the other callers' commands interleave

    async with pipeline_to(redis_url + f"?client_name={name}") as pipe:
        await asyncio.gather(*(caller(n) for n in range(500)))
        assert await connections_named(redis_url, name) == 1


async def test_an_error_answer_reaches_its_own_caller_only(pipeline: AutoPipeline) -> None:
    await pipeline.call("SET", "mux:text", b"not a number")
    results = await asyncio.gather(
        pipeline.call("SET", "mux:a", b"1"),
        pipeline.call("INCR", "mux:text"),
        pipeline.call("INCR", "mux:a"),
        return_exceptions=True,
    )
    assert results[0] == b"OK"
    assert isinstance(results[1], ResponseError)
    assert results[2] == 2


async def test_a_caller_that_gave_up_does_not_shift_the_answers_of_the_others(
    pipeline: AutoPipeline,
) -> None:
    await pipeline.call("SET", "mux:x", b"x")
    await pipeline.call("SET", "mux:y", b"y")
    abandoned = pipeline.call("GET", "mux:x")
    kept = pipeline.call("GET", "mux:y")
    abandoned.cancel()
    assert await kept == b"y"
    assert await pipeline.call("GET", "mux:x") == b"x"


async def test_redis_killed_fails_the_waiting_callers_then_the_next_command_reconnects() -> None:
    with own_redis() as server:
        async with pipeline_to(server.url) as pipe:
            assert await pipe.call("SET", "k", b"1") == b"OK"
            server.freeze()  # the command below is sent and waits; then the server dies
            waiting = pipe.call("GET", "k")
            await one_turn()  # the turn ends and the pipeline writes the command to the socket
            assert server.proc is not None
            server.proc.kill()  # SIGKILL while stopped: it never answers (no SIGCONT first)
            server.proc.wait(10)
            with pytest.raises(RedisConnectionError):
                await waiting
            with pytest.raises(transient_errors()):  # nothing listens: refused, a 503 upstream
                await pipe.call("GET", "k")
            server.start()  # the same port, empty
            assert await pipe.call("GET", "k") is None


async def test_a_frozen_redis_is_a_timeout_and_the_link_recovers_once_it_thaws() -> None:
    with own_redis() as server:
        async with pipeline_to(server.url, redis_timeout=0.3) as pipe:
            assert await pipe.call("SET", "k", b"1") == b"OK"
            server.freeze()
            try:
                with pytest.raises(RedisTimeoutError):
                    await pipe.call("GET", "k")
            finally:
                server.thaw()
            assert await pipe.call("GET", "k") == b"1"


async def test_a_readonly_answer_drops_the_link_so_the_next_command_finds_a_master() -> None:
    """After a failover the old master is a replica: READONLY, then a fresh connection."""
    with own_redis() as server, own_redis() as other:
        admin = aioredis.Redis.from_url(server.url)
        try:
            async with pipeline_to(server.url) as pipe:
                assert await pipe.call("SET", "k", b"1") == b"OK"
                await admin.execute_command("REPLICAOF", "127.0.0.1", other.port)
                with pytest.raises(ResponseError, match="READONLY"):
                    await pipe.call("SET", "k", b"2")
                await admin.execute_command("REPLICAOF", "NO", "ONE")
                assert await pipe.call("SET", "k", b"3") == b"OK"
        finally:
            await admin.aclose()


async def close_while_a_command_waits(pipe: AutoPipeline, *, connecting: bool = False) -> None:
    """Issue a command, close the pipeline while it waits: the command gets ConnectionError."""
    waiting = pipe.call("GET", "k")
    await one_turn()  # the turn ends: the command is written, or waits for the connection
    if connecting:
        # the connection to a frozen real redis-server: its kernel accepts it and the handshake
        # goes out on their own time, which nothing of ours can mark
        await asyncio.sleep(0.1)
    await pipe.aclose()
    with pytest.raises(RedisConnectionError):
        await waiting


async def test_closing_hands_the_commands_still_waiting_an_error() -> None:
    with own_redis() as server:
        async with pipeline_to(server.url) as pipe:
            assert await pipe.call("PING") == b"PONG"
            server.freeze()
            try:
                await close_while_a_command_waits(pipe)
            finally:
                server.thaw()


async def test_closing_while_the_link_is_made_abandons_it_and_fails_its_commands() -> None:
    """A shutdown while Redis is slow to accept: the half-made connection is not kept."""
    name = "knfn-mux-abandoned"
    with own_redis() as server:
        server.freeze()  # the kernel accepts the connection; redis-py's handshake waits
        try:
            async with pipeline_to(server.url + f"?client_name={name}", redis_timeout=2) as pipe:
                await close_while_a_command_waits(pipe, connecting=True)
        finally:
            server.thaw()

        async def closed() -> bool:  # Redis reads the close once it runs again
            return await connections_named(server.url, name) == 0

        await until(closed)
        assert await connections_named(server.url, name) == 0
