"""`AutoPipeline`: the Redis commands of one event-loop turn, sent together on one connection.

Under load the dedupe claims (and completions) of every request the loop read in one turn share
one write, on one connection multiplexed between turns (`eventfn.stores.redis_mux`); on a
Cluster, through redis-py's cluster pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from eventfn.stores.redis import is_cluster
from eventfn.stores.redis_mux import Link

# Most commands in one Cluster pipeline; more wait for the next one.
MAX_PIPELINE = 512


class AutoPipeline:
    """Commands issued during one turn of the event loop, sent to Redis together.

    redis-py has no automatic pipelining, hence this. A command sent on its own through the
    client (pool checkout, pure-Python packing, the read, the response callbacks) costs about
    ten times the CPU of one sent here. On a standalone or Sentinel client the commands are
    packed by hiredis as they are issued and written at the end of the turn on one multiplexed
    connection (`eventfn.stores.redis_mux`), which several turns' commands share while in
    flight. On a Cluster the turn's commands go through redis-py's cluster pipeline, which
    routes each to its slot's node and follows MOVED/ASK. Commands are raw argument tuples and
    answer raw replies (`SET` answers b"OK", or the old value with `GET`). A command's error
    reaches its own caller only; a failure of the connection (lost, timed out) reaches every
    caller waiting on it, and the next command connects again.
    """

    def __init__(self, client: Any) -> None:
        from hiredis import pack_command  # comes with redis[hiredis], a dependency

        self._client = client
        self._pool = None if is_cluster(client) else client.connection_pool
        kwargs = {} if self._pool is None else self._pool.connection_kwargs
        self._timeout: float | None = kwargs.get("socket_timeout")
        self._pack = pack_command
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._link: Link | None = None
        self._connecting: asyncio.Task[None] | None = None

    def call(self, *command: Any) -> asyncio.Future[Any]:
        """Queue `command` (e.g. `"SET", key, value, "PX", 1000`) for this turn's write."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        if self._pool is None:
            self._pending.append((command, future))
        else:
            self._pending.append((self._pack(command), future))
        return future

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._pool is None:
            batch, self._pending = self._pending[:MAX_PIPELINE], self._pending[MAX_PIPELINE:]
            if self._pending:
                asyncio.get_running_loop().call_soon(self._flush)
            self._spawn(self._cluster(batch))
            return
        link = self._link
        if link is not None and link.open and link.loop is asyncio.get_running_loop():
            batch, self._pending = self._pending, []
            link.send(batch)
        elif self._connecting is None:  # the pending commands wait for the connection
            self._connecting = self._spawn(self._connect())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return task

    async def _connect(self) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        try:
            connection = await self._pool.get_connection()  # type: ignore[union-attr]
        except BaseException as exc:  # handed to every command waiting for it
            closed = isinstance(exc, asyncio.CancelledError)  # by aclose: a closed link's error
            _fail(
                self._pending,
                RedisConnectionError("the Redis connection was closed") if closed else exc,
            )
            self._pending = []
            if closed:
                raise
            return
        finally:
            self._connecting = None
        self._link = Link(self._pool, connection, self._timeout)
        self._flush()

    async def _cluster(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    pipe.execute_command(*command, **{"get": True} if "GET" in command else {})
                results: list[Any] = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # handed to every caller of the batch
            _fail(batch, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller gave up waiting
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def aclose(self) -> None:
        """Close the multiplexed connection (the client's pool is closed by its holders).

        A connection still being made is abandoned: the commands waiting for it get
        `ConnectionError` (a 503 upstream), and redis-py's pool disconnects what it had begun.
        """
        connecting = self._connecting
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
        if self._link is not None:
            await self._link.aclose()
            self._link = None


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
