"""uvicorn's HTTP protocol, writing what a connection sent during one event-loop turn at its end.

uvicorn writes each response the moment the app sends it: the status line and headers in one
`send` syscall, the body in another, each waking the peer. Under load that was most of the
function's kernel time, and the kernel's network code running between every two requests left
the interpreter's caches cold for the next one. Held until the end of the loop's turn, the
responses computed in that turn leave together, one `write` per connection, which takes most
of that kernel time away (the figures: docs/internals/decisions/held-writes.md).

This is what Netty's FlushConsolidationHandler or uWebSockets' cork do. No ASGI server offers it,
so it is written here, as thinly as it can be: uvicorn still parses requests, runs the app, builds
every byte of every response and keeps its flow control; only the moment bytes reach the socket
changes, never their order. A response waits at most for the rest of the turn it was computed in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Held bytes beyond this go out at once: a large or streamed body meets the transport's own flow
# control (uvicorn's `send` waits for the peer when the transport's buffer is full).
HIGH_WATER = 64 * 1024
# A connection closed with bytes still unsent gets this long to take them, then is aborted: a
# peer that stopped reading (a WebSocket client dropped for it, say) must not keep its socket and
# buffers for ever, nor hold up a shutdown that waits for every connection to close.
CLOSE_LINGER_SECONDS = 3.0
# The default of HEADER_TIMEOUT_SECONDS (the server passes the setting in).
HEAD_TIMEOUT_SECONDS = 10.0
_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeldWrites:
    """A connection's transport as uvicorn sees it: writes wait for the end of the loop's turn.

    Everything but writing and closing is the real transport's (`__getattr__`).
    """

    __slots__ = ("_loop", "_parts", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if data.__class__ is not bytes:  # a bytearray or memoryview its owner may reuse: copied
            data = bytes(data)
        if not self._parts:
            self._loop.call_soon(self.flush)  # the end of this turn (asyncio and uvloop alike)
        self._parts.append(data)
        self._size += len(data)
        if self._size >= HIGH_WATER:
            self.flush()

    def flush(self) -> None:
        """Hand what is held to the transport, in one `write`."""
        parts = self._parts
        if not parts:
            return
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._size = 0
        if not self._transport.is_closing():  # the peer is gone: nowhere to write to
            self._transport.write(data)

    def writelines(self, lines: list[bytes | bytearray | memoryview]) -> None:
        for data in lines:
            self.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        """Close after what is held is written (as a transport's close writes its buffer).

        What the peer does not take within CLOSE_LINGER_SECONDS is dropped with the connection.
        """
        self.flush()
        transport = self._transport
        if transport.is_closing():
            return
        transport.close()
        if transport.get_write_buffer_size():
            self._loop.call_later(CLOSE_LINGER_SECONDS, transport.abort)

    def abort(self) -> None:
        """Close at once; what is held is dropped, like the transport's own buffer."""
        self._parts.clear()
        self._size = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TurnWritesProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over `HeldWrites`: every write of the connection goes through
    it (responses, uvicorn's own 400s, the WebSocket after an upgrade), so their order holds.

    It also bounds the time a request head may take (`head_timeout`; uvicorn has no such limit:
    900 connections trickling a header byte now and then all stayed open): a head still
    incomplete after one to two `head_timeout`s is answered 408 and the connection closed, as
    nginx's `client_header_timeout` does. One timer per connection, ticking while it lives;
    per request only two attribute writes (the hot path pays no timer of its own).
    """

    head_timeout = HEAD_TIMEOUT_SECONDS

    @classmethod
    def with_head_timeout(cls, seconds: float) -> type[TurnWritesProtocol]:
        """This protocol with `seconds` as its head timeout (uvicorn takes a class)."""
        return type(cls.__name__, (cls,), {"head_timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held: Any = HeldWrites(transport, self.loop)
        super().connection_made(held)
        # Waiting for the first head from now; `_heads` counts the heads begun.
        self._in_head = True
        self._heads = 0
        self._seen = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_timer.cancel()  # the protocol is freed now, not at the next tick
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._heads += 1

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _head_tick(self) -> None:
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:
            return  # closed, or upgraded to a WebSocket: no heads to time any more
        if self._in_head and self._seen == self._heads:  # the same head, a whole tick later
            transport.write(_TIMEOUT_408)
            transport.close()
            return
        self._seen = self._heads
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_tick)
