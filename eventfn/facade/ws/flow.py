"""Flow control of one WebSocket session: how fast a client may send, how much waits to be sent.

`TokenBucket` limits the messages a client sends (a rate sustained, a burst at once);
`SendQueue` holds what waits for the session's writer, bounded in messages and bytes, and never
makes a sender wait for room. Neither knows of sockets: the session (`session.py`) owns those.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

# What waits for the writer: progress up to this many messages and bytes (dropped beyond), answers
# up to twice that; a client that leaves that much unread is dropped (the bytes bound what a
# session that stopped reading costs, whatever the size of its messages).
SEND_QUEUE_ITEMS = 256
SEND_QUEUE_BYTES = 512 * 1024
_ANSWER_RESERVE = 2

Close = tuple[int, str]
"""The writer's close marker: the close code and reason it sends, last."""


class TokenBucket:
    """`rate` messages per second sustained, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SendQueue:
    """The writer's queue: bounded in messages and bytes; a sender never waits for room.

    What may be dropped (progress) fills it up to its bounds; answers have a reserve as large
    again, so a burst of progress never crowds out the result, and only a client that leaves
    even that unread is dropped. Written by hand rather than an `asyncio.Queue`: that one bounds
    messages only, and its `put` waits when full, which is how a reader used to block forever
    behind a client that stopped reading.
    """

    def __init__(self, max_items: int, max_bytes: int, on_full: Callable[[], None]) -> None:
        self._items: deque[bytes | Close] = deque()
        self._bytes = 0
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._on_full = on_full
        self._ready = asyncio.Event()

    @property
    def bytes_max(self) -> int:
        """The most bytes that may wait, answers' reserve included (beyond: `on_full`)."""
        return self._max_bytes * _ANSWER_RESERVE

    def _offer(self, item: bytes | Close, reserve: int) -> bool:
        size = len(item) if isinstance(item, bytes) else 0
        if isinstance(item, bytes) and (
            len(self._items) >= self._max_items * reserve
            or self._bytes + size > self._max_bytes * reserve
        ):
            return False  # a close marker always gets in
        self._items.append(item)
        self._bytes += size
        self._ready.set()
        return True

    def put_nowait(self, item: bytes | Close) -> None:
        """Queue `item`, or `asyncio.QueueFull` (for what may be dropped: progress)."""
        if not self._offer(item, 1):
            raise asyncio.QueueFull

    async def put(self, item: bytes | Close) -> None:
        """Queue an answer; when even the reserve is full the client is not reading: `on_full`
        drops the session."""
        if not self._offer(item, _ANSWER_RESERVE):
            self._on_full()

    async def get(self) -> bytes | Close:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        item = self._items.popleft()
        if isinstance(item, bytes):
            self._bytes -= len(item)
        return item
