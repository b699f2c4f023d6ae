"""Responses leave at the end of the event-loop turn (eventfn.server.protocol), in order, and whole.

The unit tests drive `HeldWrites` over a recording transport; the others serve real apps with
uvicorn and `TurnWritesProtocol` on a loopback socket, as production does
(tests.helpers.live.serving).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from eventfn.server.protocol import CLOSE_LINGER_SECONDS, HIGH_WATER, HeldWrites
from tests.helpers.live import function_socket, serving
from tests.helpers.loop_time import advance, one_turn
from tests.helpers.support import QUERY

pytestmark = pytest.mark.server


class Transport:
    """What HeldWrites hands its writes to."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.aborted = False
        self.buffered = 0  # bytes the peer has not taken yet

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 1234)}.get(name)


def held() -> tuple[HeldWrites, Transport]:
    transport = Transport()
    return HeldWrites(transport, asyncio.get_running_loop()), transport  # type: ignore[arg-type]


async def end_of_turn() -> None:
    await one_turn()  # one turn of the loop, callbacks run


async def test_the_writes_of_one_turn_leave_together_at_its_end() -> None:
    writes, transport = held()
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    writes.write(b"ok")
    assert transport.writes == []
    await end_of_turn()
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]


async def test_each_turn_writes_once_and_only_what_it_was_given() -> None:
    writes, transport = held()
    writes.write(b"a")
    await end_of_turn()
    writes.write(b"b")
    writes.write(b"")  # nothing to hold, nothing scheduled
    await end_of_turn()
    await end_of_turn()
    assert transport.writes == [b"a", b"b"]


async def test_a_buffer_reused_after_its_write_is_written_as_it_was() -> None:
    writes, transport = held()
    buffer = bytearray(b"first")
    writes.write(buffer)
    buffer[:] = b"reuse"
    writes.write(memoryview(b"-view"))
    await end_of_turn()
    assert transport.writes == [b"first-view"]


async def test_a_large_write_goes_out_at_once_for_the_transport_flow_control() -> None:
    writes, transport = held()
    writes.write(b"head")
    writes.write(b"x" * HIGH_WATER)
    assert transport.writes == [b"head" + b"x" * HIGH_WATER]
    writes.write(b"tail")
    await end_of_turn()
    assert transport.writes[1:] == [b"tail"]


async def test_close_writes_what_is_held_first() -> None:
    writes, transport = held()
    writes.write(b"last words")
    writes.close()
    assert transport.writes == [b"last words"]
    assert writes.is_closing()
    await end_of_turn()  # the scheduled flush finds nothing left
    assert transport.writes == [b"last words"]


async def test_abort_drops_what_is_held() -> None:
    writes, transport = held()
    writes.write(b"never sent")
    writes.abort()
    await end_of_turn()
    assert transport.writes == []
    assert transport.aborted


async def test_nothing_is_written_once_the_peer_is_gone() -> None:
    writes, transport = held()
    writes.write(b"too late")
    transport.closing = True  # connection lost before the turn ended
    await end_of_turn()
    assert transport.writes == []


async def test_everything_else_is_the_transports() -> None:
    writes, _ = held()
    assert writes.get_extra_info("peername") == ("127.0.0.1", 1234)


async def test_writelines_is_writes_in_order() -> None:
    writes, transport = held()
    writes.writelines([b"a", b"b", b"c"])
    await end_of_turn()
    assert transport.writes == [b"abc"]


# -- a real server ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def connection(
    address: str,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A raw TCP connection to `host:port`, closed (and waited for) whatever happens."""
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 response with a Content-Length: status line, headers, body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, *lines = head[:-4].split(b"\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(b": ") for line in lines)}
    body = await reader.readexactly(int(headers[b"content-length"]))
    return status, headers, body


def binary_event(event_id: str, body: bytes = b'{"query": "q"}') -> bytes:
    return (
        b"POST / HTTP/1.1\r\nhost: fn\r\nce-specversion: 1.0\r\nce-source: /tests\r\n"
        b"ce-type: " + QUERY.encode() + b"\r\ncontent-type: application/json\r\n"
        b"ce-id: " + event_id.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )


async def test_pipelined_events_are_answered_in_order() -> None:
    """Three events in one segment: three replies, in the order of the requests."""
    async with function_socket() as (_, address):
        async with connection(address) as (reader, writer):
            writer.write(b"".join(binary_event(f"pipelined-{n}") for n in range(3)))
            replies = [await read_response(reader) for _ in range(3)]
        assert [status for status, _, _ in replies] == [b"HTTP/1.1 200 OK"] * 3
        ids = [headers[b"ce-id"] for _, headers, _ in replies]
        assert len(set(ids)) == 3
        # Reply ids derive from the request ids: each one alone gets the same reply id back.
        for n, reply_id in enumerate(ids):
            async with connection(address) as (reader, writer):
                writer.write(binary_event(f"pipelined-{n}"))
                _, headers, _ = await read_response(reader)
            assert headers[b"ce-id"] == reply_id


async def test_expect_100_continue_still_gets_its_interim_response() -> None:
    async with function_socket() as (_, address), connection(address) as (reader, writer):
        head, _, body = binary_event("continue").partition(b"\r\n\r\n")
        writer.write(head + b"\r\nexpect: 100-continue\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        status, _, _ = await read_response(reader)
    assert status == b"HTTP/1.1 200 OK"


async def test_a_streamed_body_is_not_held_back_until_the_response_ends() -> None:
    """Each chunk leaves at the end of the turn it was sent in, not with the last one."""
    release = asyncio.Event()

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send(start)  # no Content-Length: chunked
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"second"})

    async with (
        serving(streaming, lifespan="off") as address,
        connection(address) as (reader, writer),
    ):
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"transfer-encoding: chunked" in head
        assert await asyncio.wait_for(reader.readuntil(b"first\r\n"), 5) == b"5\r\nfirst\r\n"
        release.set()
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
    assert rest == b"6\r\nsecond\r\n0\r\n\r\n"


async def test_a_body_larger_than_the_high_water_mark_arrives_whole() -> None:
    payload = bytes(range(256)) * (3 * HIGH_WATER // 256)

    async def large(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async with serving(large, lifespan="off") as address, connection(address) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET / HTTP/1.1\r\nhost: x\r\n\r\n")
        first = await asyncio.wait_for(read_response(reader), 10)
        second = await asyncio.wait_for(read_response(reader), 10)
    assert first[2] == second[2] == payload


async def test_uvicorns_own_400_goes_through_the_same_writes() -> None:
    """A reply, then garbage on the same connection: uvicorn's 400 is written, then it closes."""
    async with function_socket() as (_, address), connection(address) as (reader, writer):
        writer.write(binary_event("before-garbage"))
        status, headers, _ = await read_response(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        rest = await asyncio.wait_for(reader.read(), 5)  # until uvicorn closes the connection
    assert status == b"HTTP/1.1 200 OK"
    assert b"ce-id" in headers
    assert rest.startswith(b"HTTP/1.1 400 Bad Request")


@pytest.mark.looptime
async def test_a_close_the_peer_does_not_take_is_aborted_after_the_linger() -> None:
    """Closed with bytes still unsent (the peer stopped reading): aborted after the linger."""
    writes, transport = held()
    transport.buffered = 1 << 20
    writes.close()
    assert transport.closing
    await advance(CLOSE_LINGER_SECONDS - 0.01)
    assert not transport.aborted  # the linger not yet over
    await advance(0.02)
    assert transport.aborted


@pytest.mark.looptime
async def test_a_close_with_nothing_unsent_is_not_aborted() -> None:
    """A peer that took everything gets a clean close, never an abort."""
    writes, transport = held()
    writes.close()
    await advance(CLOSE_LINGER_SECONDS * 2)  # well past the linger
    assert transport.closing
    assert not transport.aborted


# -------------------------------------------------------------------------------------------
# When uvicorn moves the class it extends
# -------------------------------------------------------------------------------------------


def test_the_server_uses_held_writes_with_the_pinned_uvicorn() -> None:
    """With the uvicorn minor pyproject pins, the server speaks through TurnWritesProtocol."""
    from eventfn.server.protocol import TurnWritesProtocol
    from eventfn.server.serve import http_protocol

    assert issubclass(http_protocol(5.0), TurnWritesProtocol)


def test_a_uvicorn_without_the_private_class_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """If the private import fails, the stock httptools protocol serves, and a line says so."""
    import sys

    from eventfn.observability.logs import configure_logging
    from eventfn.server.serve import http_protocol
    from tests.helpers.support import suite_settings

    configure_logging(suite_settings())
    monkeypatch.delitem(sys.modules, "eventfn.server.protocol", raising=False)
    monkeypatch.setitem(sys.modules, "uvicorn.protocols.http.httptools_impl", None)
    assert http_protocol(5.0) == "httptools"
    assert capsys.readouterr().out.count("held_writes_unavailable") == 1
