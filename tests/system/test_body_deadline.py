"""The body deadline: a body that does not arrive within BODY_TIMEOUT_SECONDS is a 408 problem.

The requests are made straight through the ASGI interface with a `receive` that withholds the
body (or trickles it), which no HTTP client does on purpose. The deadline is tiny (50 ms, cut
within a quarter more); the facade's credentials are checked before its body is read, so an
unauthenticated client is answered 401 without waiting for a body that never comes. The chaos
case serves the function for real and trickles bodies over sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from eventfn.app import FunctionApp
from eventfn.ingress.deadline import BodyDeadline, RequestTimeout
from tests.helpers.loop_time import advance, one_turn
from tests.helpers.support import (
    binary_headers,
    facade_path,
    make_app,
    running_server,
    suite_settings,
)

Receive = Callable[[], Awaitable[dict[str, Any]]]


async def withheld() -> dict[str, Any]:
    """A body that never comes."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def trickled() -> Receive:
    """One byte at a time, for ever: each chunk in time, the body never whole."""

    async def receive() -> dict[str, Any]:
        await advance(0.005)  # the next byte, 5 ms on (virtual loop time)
        return {"type": "http.request", "body": b" ", "more_body": True}

    return receive


async def call(
    app: FunctionApp, path: str, headers: dict[str, str], receive: Receive
) -> tuple[int, dict[str, str], bytes]:
    """One POST through the app's ASGI interface; its status, headers and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("function", 80),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async with asyncio.timeout(10):  # a hang guard, not a measurement
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], answer, body


def quick_app(**overrides: Any) -> FunctionApp:
    return make_app(suite_settings(body_timeout_seconds=0.05, **overrides))


def assert_timed_out(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 408, body
    assert headers["content-type"] == "application/problem+json"
    assert orjson.loads(body)["type"].endswith("/request-timeout")


@pytest.mark.looptime
@pytest.mark.parametrize("receive", [withheld, trickled()], ids=["withheld", "trickled"])
async def test_a_slow_delivery_body_is_408(receive: Receive) -> None:
    """`POST /`: the body not whole within the deadline is answered 408 (the broker retries)."""
    app = quick_app()
    async with app.lifespan_context():
        headers = binary_headers() | {"content-length": "1000"}
        assert_timed_out(*await call(app, "/", headers, receive))


@pytest.mark.looptime
async def test_a_slow_dead_letter_body_is_408() -> None:
    """`POST /deadletter`: the same deadline."""
    app = quick_app()
    async with app.lifespan_context():
        headers = binary_headers(knativeerrorcode="500") | {"content-length": "1000"}
        assert_timed_out(*await call(app, "/deadletter", headers, withheld))


@pytest.mark.looptime
@pytest.mark.parametrize("receive", [withheld, trickled()], ids=["withheld", "trickled"])
async def test_a_slow_facade_body_is_408(receive: Receive) -> None:
    """The facade: FastAPI's body read is held to the deadline, answered in problem+json."""
    app = quick_app()
    async with app.lifespan_context():
        headers = {"content-type": "application/json", "content-length": "1000"}
        assert_timed_out(*await call(app, facade_path(app), headers, receive))


async def test_facade_credentials_are_checked_before_the_body_is_read() -> None:
    """No API key and a body that never comes: 401 at once, not a connection held open."""
    app = make_app(suite_settings(api_keys=["secret"], body_timeout_seconds=600))
    async with app.lifespan_context():
        headers = {"content-type": "application/json", "content-length": "1000"}
        status, answer, body = await call(app, facade_path(app), headers, withheld)
    assert status == 401, body
    assert answer["content-type"] == "application/problem+json"
    assert "www-authenticate" in answer


async def test_a_facade_body_with_credentials_is_read_and_handled() -> None:
    """With a valid key the body is read as usual."""
    app = make_app(suite_settings(api_keys=["secret"]))
    payload = b'{"query": "hi"}'
    chunks = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else await withheld()

    async with app.lifespan_context():
        headers = {"content-type": "application/json", "x-api-key": "secret"}
        status, _, body = await call(app, facade_path(app), headers, receive)
    assert status in (200, 204), body


async def test_another_cancellation_of_a_read_stays_a_cancellation() -> None:
    """Only the deadline's own interruption becomes a 408; a cancelled request is cancelled."""
    deadline = BodyDeadline(600)
    reading = asyncio.create_task(deadline.read(withheld, 1000, 0))
    await one_turn()  # one turn, the read starts
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading


@pytest.mark.looptime
async def test_a_read_past_its_deadline_raises_request_timeout() -> None:
    """The one timer interrupts a read past its deadline with RequestTimeout."""
    deadline = BodyDeadline(0.02)
    with pytest.raises(RequestTimeout) as raised:
        await deadline.read(withheld, 1000, 0)
    assert raised.value.status_code == 408


@pytest.mark.looptime
async def test_waiting_for_a_disconnect_once_the_body_is_whole_is_not_cut() -> None:
    """After the body, `receive` waits as long as the response needs (a streamed one)."""
    deadline = BodyDeadline(0.02)
    gone = asyncio.Event()
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await gone.wait()
        return {"type": "http.disconnect"}

    bounded = deadline.receive(receive)
    assert (await bounded())["body"] == b"{}"

    async def next_message() -> Any:
        return await bounded()

    waiting = asyncio.create_task(next_message())
    await advance(60)  # three thousand deadlines: a tick would have cut it long ago
    assert not waiting.done()
    gone.set()
    assert (await waiting)["type"] == "http.disconnect"


# -- a served function (chaos) -------------------------------------------------------------------


def trickle(port: int, head: bytes, *, every: float = 0.2, within: float = 10.0) -> bytes:
    """Send `head`, then one byte of body every `every` s until the server answers; its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=within) as sock:
        sock.sendall(head)
        sock.settimeout(every)
        deadline = time.monotonic() + within  # a hang guard, not a measurement
        while time.monotonic() < deadline:
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")
                continue
            return answer
    raise AssertionError("no answer while the body trickled")


def head_of(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "host: function", "content-length: 1000000"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.chaos
def test_slow_bodies_to_a_served_function_are_refused_or_cut(tmp_path: Path) -> None:
    """Served for real: 20 unauthenticated facade bodies at a byte per 0.2 s are all 401 at once;
    a delivery's trickled body is 408 once BODY_TIMEOUT_SECONDS (1 s here) passed."""
    path = facade_path(make_app())
    env = {"API_KEYS": "secret", "BODY_TIMEOUT_SECONDS": "1", "DATA_DIR": str(tmp_path)}
    with running_server(env) as server:
        facade = [
            trickle(server.port, head_of(path, **{"content-type": "application/json"}))
            for _ in range(20)
        ]
        delivery = trickle(server.port, head_of("/", **binary_headers()))
    assert all(answer.startswith(b"HTTP/1.1 401") for answer in facade), facade[0][:200]
    assert delivery.startswith(b"HTTP/1.1 408"), delivery[:200]
    assert b"application/problem+json" in delivery


async def test_a_body_whose_first_chunk_came_with_the_head_is_still_timed() -> None:
    """The first chunk at once, the rest never: the read is timed from there on (408)."""
    deadline = BodyDeadline(0.02)
    first = [{"type": "http.request", "body": b"{", "more_body": True}]

    async def receive() -> dict[str, Any]:
        return first.pop() if first else await withheld()

    with pytest.raises(RequestTimeout):
        await deadline.read(receive, 1000, 0)


async def test_a_body_that_arrived_with_the_head_is_read_at_once() -> None:
    """The usual delivery: the whole body is there already, and is the read's answer."""
    deadline = BodyDeadline(0.02)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    assert await deadline.read(receive, 1000, 2) == b"{}"
