"""Virtual loop time: tests of the loop's own timers run on an injected clock, not on real time.

A test marked `@pytest.mark.looptime` runs on looptime's event loop, whose clock moves only when
the loop has nothing else to do: `await advance(3.0)` runs every timer due in the next three
seconds (deadlines, lingers, intervals) in no real time, in the order they are due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import looptime
import pytest


@contextmanager
def virtual_clock(item: pytest.Function) -> Iterator[None]:
    """Run `item` on a virtual clock if it is marked looptime (tests/conftest.py's hook).

    The clock starts at the loop's present time, so timers the test's fixtures set keep their
    place, and it is on only while the test's own body runs.
    """
    policy = item.funcargs.get("event_loop_policy")
    if item.get_closest_marker("looptime") is None or policy is None:
        yield
        return
    loop = policy.get_event_loop()  # the loop pytest-asyncio set for this async test
    virtual = looptime.patch_event_loop(loop, start=loop.time(), _enabled=False)
    with virtual.looptime_enabled():
        yield


async def advance(seconds: float) -> None:
    """Move the loop's virtual clock on by `seconds`, running every timer due by then.

    Refused on a loop with real time (a test not marked looptime), so it can never become a
    real sleep.
    """
    loop = asyncio.get_running_loop()
    if not (isinstance(loop, looptime.LoopTimeEventLoop) and loop.looptime_on):
        raise AssertionError("advance() needs virtual loop time: mark the test looptime")
    await asyncio.sleep(seconds)  # virtual: the loop's clock jumps, no real time passes


async def one_turn() -> None:
    """Let the loop run one turn: callbacks made ready run, a task just created takes a step.

    This is no wait on any clock: it is the bare yield a coroutine makes when it suspends.
    """
    await asyncio.sleep(0)  # asyncio's documented bare yield to the loop
