"""Log lines: batched per turn of the event loop, in order; the hot line renders like structlog."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import Iterator

import orjson
import pytest
import structlog

from eventfn.observability.logs import HotLogger, LineWriter, configure_logging, get_logger
from tests.helpers.loop_time import one_turn
from tests.helpers.support import suite_settings


class Recording(io.BytesIO):
    """A binary stream that remembers each write separately."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


@pytest.fixture
def stream() -> Recording:
    """Where a LineWriter under test writes."""
    return Recording()


async def test_lines_of_one_turn_leave_in_one_write_at_its_end(stream: Recording) -> None:
    """Three lines logged in one turn of the loop are one write, in order, after the turn."""
    writer = LineWriter(stream)
    for n in range(3):
        writer.write(b"line %d\n" % n)
    assert stream.writes == []
    await one_turn()  # one turn, the buffered writes' flush callback runs
    assert stream.writes == [b"line 0\nline 1\nline 2\n"]


async def test_each_turn_gets_its_own_write(stream: Recording) -> None:
    """Lines of the next turn are not held back by the previous flush."""
    writer = LineWriter(stream)
    writer.write(b"a\n")
    await one_turn()  # one turn, the buffered writes' flush callback runs
    writer.write(b"b\n")
    await one_turn()  # one turn, the buffered writes' flush callback runs
    assert stream.writes == [b"a\n", b"b\n"]


def test_without_a_loop_lines_are_written_at_once(stream: Recording) -> None:
    """Outside an event loop (start-up, CLI) nothing would flush later: write through."""
    writer = LineWriter(stream)
    writer.write(b"now\n")
    assert stream.writes == [b"now\n"]


def test_lines_left_by_a_stopped_loop_come_out_first(stream: Recording) -> None:
    """A loop that stopped before its turn ended leaves lines behind; the next write sends them."""
    writer = LineWriter(stream)

    async def log_and_stop() -> None:
        writer.write(b"left behind\n")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(log_and_stop())
    loop.close()  # the scheduled flush never ran
    writer.write(b"later\n")
    assert b"".join(stream.writes) == b"left behind\nlater\n"


async def test_a_thread_writes_through_without_losing_buffered_lines(stream: Recording) -> None:
    """A line from another thread goes out at once, after the loop's pending lines."""
    writer = LineWriter(stream)
    writer.write(b"loop\n")
    thread = threading.Thread(target=writer.write, args=(b"thread\n",))
    thread.start()
    thread.join()
    await one_turn()  # one turn, the buffered writes' flush callback runs
    assert b"".join(stream.writes) == b"loop\nthread\n"


def test_flush_sends_what_is_pending(stream: Recording) -> None:
    """flush (also run at exit) empties the buffer."""
    writer = LineWriter(stream)

    async def log() -> None:
        writer.write(b"pending\n")
        writer.flush()
        assert stream.writes == [b"pending\n"]

    asyncio.run(log())


@pytest.fixture
def json_stdout(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.BytesIO]:
    """JSON logging at info configured onto a captured stdout."""
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
    monkeypatch.setattr(sys, "stdout", text)
    configure_logging(suite_settings(log_level="info"))
    yield buffer
    structlog.reset_defaults()


def lines(buffer: io.BytesIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines()]


async def test_hot_line_is_the_line_structlog_writes(json_stdout: io.BytesIO) -> None:
    """HotLogger and a structlog logger give the same keys, order and values (but the time)."""
    fields = {"id": "e-1", "type": "t", "mode": "binary", "trace_id": None, "status": 200}
    structlog.contextvars.bind_contextvars(request="r-1")
    try:
        get_logger("eventfn.ingress.endpoint").info("event", **fields)
        HotLogger("eventfn.ingress.endpoint").info("event", **fields)
    finally:
        structlog.contextvars.unbind_contextvars("request")
    await one_turn()  # one turn, the buffered writes' flush callback runs
    slow, hot = lines(json_stdout)
    assert list(hot) == list(slow)
    assert {**hot, "timestamp": None} == {**slow, "timestamp": None}
    assert hot["request"] == "r-1"


async def test_hot_line_is_silent_above_info(monkeypatch: pytest.MonkeyPatch) -> None:
    """At LOG_LEVEL=warning the per-event line is not written."""
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, write_through=True))
    configure_logging(suite_settings(log_level="warning"))
    try:
        HotLogger("eventfn.ingress.endpoint").info("event", id="e-1")
        await one_turn()  # one turn, the buffered writes' flush callback runs
        assert buffer.getvalue() == b""
    finally:
        structlog.reset_defaults()


async def test_library_lines_and_structlog_lines_keep_their_order(
    json_stdout: io.BytesIO,
) -> None:
    """uvicorn's stdlib lines go through the same writer: lines stay in the order logged."""
    import logging

    get_logger("first").info("one")
    logging.getLogger("uvicorn.error").info("two")
    HotLogger("third").info("three")
    await one_turn()  # one turn, the buffered writes' flush callback runs
    assert [line["event"] for line in lines(json_stdout)] == ["one", "two", "three"]


class Closed(io.BytesIO):
    """A stream whose reader went away."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise BrokenPipeError("reader gone")


async def test_a_closed_stdout_drops_lines_instead_of_failing() -> None:
    """With nowhere to write, lines are dropped: logging never raises, the flush never fails."""
    errors: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
    writer = LineWriter(Closed())
    writer.write(b"lost\n")
    await one_turn()  # the flush callback runs
    writer.write(b"lost too\n")
    writer.flush()
    assert errors == []
