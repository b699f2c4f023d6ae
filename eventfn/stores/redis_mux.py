"""One Redis connection that every request of a process shares: a multiplexed link.

Why by hand: redis-py lends a pooled connection to one caller at a time, a pipeline included, so
each round trip costs a pool checkout and release (a lock, a condition), a task, a timeout scope
and a coroutine per reply. The dedupe claim and completion of every event pay that. Redis
answers the commands of one connection in the order it received them, so one connection and a
queue of waiting futures are enough. The commands of one loop turn are packed by hiredis and
written together, and one reader task feeds what arrives to hiredis' reader, resolving the
futures in order. That is what Lettuce and StackExchange.Redis call multiplexing; redis-py has
none, and coredis, which has it, would replace redis-py under every store and the Cluster and
Sentinel clients. `python -m bench.instructions --config redis` counts the difference.

The connection is made by redis-py's pool, like every other connection of the function: TCP or
TLS, AUTH, SELECT, HELLO and, in Sentinel mode, the current master's address. The link keeps
it out of the pool while in use and reads and writes its streams itself: no other code uses
that connection meanwhile, and redis-py's parser is never called on it.

Failures are handed to the callers waiting on the link, as redis-py's exceptions (a transient
error: a 503 upstream), and the link is dropped; the next command makes a new one:

* the connection closes or fails: every waiting caller gets `ConnectionError`;
* no answer within the socket timeout (`REDIS_TIMEOUT_SECONDS`) of the oldest command waiting:
  every waiting caller gets `TimeoutError` (a frozen Redis, a black-holed connection);
* a `READONLY` answer (a Sentinel failover made our master a replica): that caller gets it, and
  the link is dropped so that the next one reaches the new master.

An error answer to one command (`ResponseError`) goes to its caller only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

from eventfn.observability.logs import get_logger

log = get_logger("eventfn.stores.redis")

READ_SIZE = 65536
# (the caller's future, the loop time by which Redis must have answered)
_Waiting = tuple[asyncio.Future[Any], float]
Batch = list[tuple[bytes, asyncio.Future[Any]]]


class Link:
    """A connected redis-py connection, borrowed from `pool` for many commands in flight."""

    def __init__(self, pool: Any, connection: Any, timeout: float | None) -> None:
        import hiredis
        from redis.exceptions import ResponseError

        self.loop = asyncio.get_running_loop()
        self.open = True
        self._pool = pool
        self._connection = connection
        # redis-py's own streams of the connection (see the module's docstring).
        self._stream: asyncio.StreamReader = connection._reader
        self._writer: asyncio.StreamWriter = connection._writer
        self._timeout = timeout if timeout and timeout > 0 else None
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._replies = hiredis.Reader(replyError=ResponseError)
        self._response_error = ResponseError
        self._reading = self.loop.create_task(self._read())
        self._closing: asyncio.Task[None] | None = None

    def send(self, batch: Batch) -> None:
        """Write the packed commands of `batch`; each future gets its command's answer."""
        deadline = self.loop.time() + (self._timeout or 0.0)
        self._waiting.extend((future, deadline) for _, future in batch)
        self._writer.write(b"".join([packed for packed, _ in batch]))
        if self._timeout is not None and self._watchdog is None:
            self._watchdog = self.loop.call_at(deadline, self._watch)

    async def _read(self) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        replies, waiting, stream = self._replies, self._waiting, self._stream
        try:
            while True:
                data = await stream.read(READ_SIZE)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                replies.feed(data)
                while (reply := replies.gets()) is not False:
                    if not waiting:
                        raise RedisConnectionError("Redis answered a command never sent")
                    future, _ = waiting.popleft()
                    if isinstance(reply, self._response_error):
                        self._answer_error(future, reply)
                    elif not future.done():  # else: its caller gave up waiting
                        future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except OSError as exc:  # reset, broken: what redis-py itself reports as a lost connection
            self.fail(RedisConnectionError(f"the Redis connection failed: {exc}"))
        except Exception as exc:  # every failure is handed to the callers
            self.fail(exc)

    def _answer_error(self, future: asyncio.Future[Any], error: Exception) -> None:
        if not future.done():
            future.set_exception(error)
        if str(error).startswith("READONLY"):
            log.warning("redis_link_readonly", detail=str(error))
            self.fail(None)

    def _watch(self) -> None:
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self._watchdog = None
        if not self._waiting:
            return
        deadline = self._waiting[0][1]
        if deadline <= self.loop.time():
            self.fail(RedisTimeoutError(f"Redis did not answer within {self._timeout:g}s"))
        else:
            self._watchdog = self.loop.call_at(deadline, self._watch)

    def fail(self, exc: Exception | None) -> None:
        """Close the link; every caller still waiting gets `exc` (or a closed-link error)."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        if not self.open:
            return
        self.open = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        error = exc or RedisConnectionError("the Redis connection was closed")
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if exc is not None:
            log.warning("redis_link_lost", error=type(exc).__name__, detail=str(exc))
        self._closing = self.loop.create_task(self._give_back())

    async def _give_back(self) -> None:
        """Stop reading, close the connection and return it to the pool (reconnects later)."""
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading
        try:
            await self._connection.disconnect()
        finally:
            await self._pool.release(self._connection)

    async def aclose(self) -> None:
        self.fail(None)
        if self._closing is not None:
            await self._closing
