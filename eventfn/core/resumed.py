"""`Resumed`: awaiting a coroutine that was started by hand, from where it suspended.

The hot paths start a coroutine with `send(None)` themselves (the handler under its time budget,
a body read under its deadline) so that one that answers without waiting costs no task, no timer
and no `await` machinery. One that does suspend is then awaited through `Resumed`, which is what
`await` itself does for a coroutine it starts (`yield from`), written out: asyncio has no public
way to await a coroutine part-way through.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


class Resumed:
    """Awaitable of `coro`, started by hand and suspended after yielding `first`.

    What the task sends or throws in (a cancellation) goes on to the coroutine, what the
    coroutine yields goes to the task; closing the awaitable closes the coroutine.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, step = self._coro, self._first
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the task: passed on to the coroutine
                try:
                    step = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    step = coro.send(sent)
                except StopIteration as done:
                    return done.value
