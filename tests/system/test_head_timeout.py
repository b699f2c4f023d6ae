"""The server bounds the time a request head may take: trickling connections are closed (408).

uvicorn alone keeps a connection that sends its headers a byte at a time open for ever; a real
server here, with HEADER_TIMEOUT_SECONDS short, closes them all and still serves the others.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from tests.helpers.support import ServerProcess

pytestmark = [pytest.mark.chaos, pytest.mark.server]


async def trickle(port: int, stop: asyncio.Event) -> bytes:
    """Send a request head a byte every 0.1 s (never finishing it); what the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = b"GET /health/liveness HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 10_000
    try:
        for byte in head:
            if stop.is_set() or reader.at_eof():
                break
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    return await reader.read(1024)
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_connections_trickling_their_headers_are_closed_with_408() -> None:
    """200 trickling connections all get 408 and are closed; a normal request is still served."""
    server = ServerProcess({"HEADER_TIMEOUT_SECONDS": "0.5", "LOG_LEVEL": "warning"}).start()
    stop = asyncio.Event()
    try:
        trickling = [asyncio.create_task(trickle(server.port, stop)) for _ in range(200)]
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/health/liveness")).status_code == 200
        async with asyncio.timeout(20):
            answers = await asyncio.gather(*trickling)
    finally:
        stop.set()
        server.stop()
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers)


async def test_a_connection_that_sends_nothing_is_closed() -> None:
    """A connection opened and left silent does not stay open either."""
    server = ServerProcess({"HEADER_TIMEOUT_SECONDS": "0.3", "LOG_LEVEL": "warning"}).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        async with asyncio.timeout(10):
            answer = await reader.read()
        writer.close()
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 408")
