"""The body deadline: a request body must arrive within `BODY_TIMEOUT_SECONDS`, else 408.

`HEADER_TIMEOUT_SECONDS` bounds the head only; without this, a client sending one byte a second
of a 1 MB body holds its connection, its task and its buffers for eleven days (50 such
unauthenticated requests were all still open after 30 s). Every door that reads a body (`POST /`,
`POST /deadletter`, the facade) reads it through a `BodyDeadline`: once the deadline passes, the
read is interrupted and answered 408 problem+json, which the broker retries.

Why not `asyncio.timeout` around each read: a timer per request (a handle pushed on the loop's
heap and cancelled again) costs more than a percent of the hot path's instructions. Here one
timer serves every request of the process: a request records its deadline when its read begins
(a dictionary write), and a tick, armed only while some body is being read, interrupts those
past theirs. A body is therefore cut between one and 1.25 deadlines after its read began.
"""

from __future__ import annotations

import asyncio
from typing import Any

from eventfn.core.errors import ClientError
from eventfn.core.http import Receive, read_body
from eventfn.core.resumed import Resumed


class RequestTimeout(ClientError):
    """The request body did not arrive in time (a Knative Broker retries a 408)."""

    status_code = 408
    problem = "request-timeout"
    title = "Request timeout"


class BodyDeadline:
    """Interrupts the body reads that run past `seconds` (see the module docstring)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._reading: dict[asyncio.Task[Any], float] = {}  # task -> when its read must end
        self._expired: set[asyncio.Task[Any]] = set()  # cancelled by the tick, not by anyone else
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the timer is armed on

    async def read(self, receive: Receive, limit: int, length: int) -> bytes:
        """`read_body(receive, limit, length)`, or RequestTimeout past the deadline.

        A body the server holds already (nearly every delivery: it came with the head) has no
        deadline to keep: `receive` is started by hand, and only when it has to wait for the
        client is the read registered with the timer. That keeps the hot path's cost at a
        fraction of a registration (which alone is ~1.5% of an event's instructions).
        """
        if length > limit:
            return await read_body(receive, limit, length)  # refused before anything is read
        started: Any = receive()  # a coroutine (the ASGI receive is an async function)
        try:
            waiting_on = started.send(None)
        except StopIteration as arrived:
            message = arrived.value
            if message["type"] == "http.request" and not message.get("more_body", False):
                body: bytes = message.get("body", b"")
                if len(body) <= limit:
                    return body
            return await self._timed(_then(message, receive), limit, length)
        return await self._timed(_then(Resumed(started, waiting_on), receive), limit, length)

    async def _timed(self, receive: Receive, limit: int, length: int) -> bytes:
        """`read_body` registered with the timer: interrupted past the deadline."""
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always called from a request's task
        loop = task.get_loop()
        self._reading[task] = loop.time() + self.seconds
        if self._timer is None or self._loop is not loop:
            self._arm(loop)
        try:
            return await read_body(receive, limit, length)
        except asyncio.CancelledError:
            self._interrupted(task)
            raise
        finally:
            del self._reading[task]

    def receive(self, receive: Receive) -> Receive:
        """`receive` whose body messages must all arrive within the deadline of its first call.

        For the facade, where FastAPI reads the body: RequestTimeout is raised from `receive`.
        Once the body is whole, `receive` is the server's again: what waits for the client to
        disconnect (a streamed response) waits as long as it likes.
        """
        deadline: float | None = None
        whole = False

        async def bounded_receive() -> Any:
            nonlocal deadline, whole
            if whole:
                return await receive()
            task = asyncio.current_task()
            assert task is not None  # noqa: S101 - always called from a request's task
            loop = task.get_loop()
            if deadline is None:
                deadline = loop.time() + self.seconds
            self._reading[task] = deadline
            if self._timer is None or self._loop is not loop:
                self._arm(loop)
            try:
                message = await receive()
            except asyncio.CancelledError:
                self._interrupted(task)
                raise
            finally:
                del self._reading[task]
            whole = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return bounded_receive

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer = loop.call_later(self.seconds / 4, self._tick, loop)

    def _interrupted(self, task: asyncio.Task[Any]) -> None:
        """A read was cancelled: by the tick (then it becomes RequestTimeout), or by another."""
        if task not in self._expired:
            return  # not ours: the cancellation goes on
        self._expired.discard(task)
        if task.uncancel() > 0:
            return  # cancelled by someone else as well: that one wins
        raise RequestTimeout(
            f"the request body did not arrive within {self.seconds:g} s", retry_after=1
        ) from None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in self._reading.items():
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = loop.call_later(self.seconds / 4, self._tick, loop) if self._reading else None


def _then(first: Any, receive: Receive) -> Receive:
    """`receive` whose first message is `first` (a message, or an awaitable of one)."""
    pending = [first]

    async def receive_next() -> Any:
        if not pending:
            return await receive()
        message = pending.pop()
        return await message if isinstance(message, Resumed) else message

    return receive_next
