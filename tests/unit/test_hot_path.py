"""The hot path's hand-made shortcuts give exactly what the standard library gives."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventfn.binding import encode_header_value, event_from_json
from eventfn.core.errors import MalformedEvent
from eventfn.dispatch.budget import run_within
from eventfn.dispatch.replies import REPLY_NAMESPACE, reply_id, rfc3339_now
from eventfn.observability.logs import add_timestamp
from tests.helpers.loop_time import advance, one_turn

# What the HTTP binding lets a header carry unescaped: printable ASCII but space, `"` and `%`.
HEADER_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
ISO_MICROS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
ISO_MILLIS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@given(st.text(), st.text())
def test_reply_id_is_uuid5_of_source_and_id(source: str, event_id: str) -> None:
    """reply_id is uuid.uuid5 of the length-prefixed source and id, byte for byte."""
    expected = uuid.uuid5(REPLY_NAMESPACE, f"{len(source)}:{source}{event_id}")
    assert reply_id(source, event_id) == str(expected)


def test_reply_time_is_rfc3339_millis_and_now() -> None:
    """The reply's time is RFC 3339 UTC with milliseconds, within a second of the clock."""
    text = rfc3339_now()
    assert ISO_MILLIS.fullmatch(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=1)


def test_log_timestamp_has_structlogs_iso_format() -> None:
    """The log timestamp looks like TimeStamper(fmt="iso", utc=True)'s and is now."""
    text = add_timestamp(None, "info", {})["timestamp"]
    assert ISO_MICROS.fullmatch(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=1)


@given(st.text())
def test_header_encoding_matches_percent_quoting(text: str) -> None:
    """The no-escape fast path gives what urllib's quote gives, for any text."""
    assert encode_header_value(text) == quote(text, safe=HEADER_SAFE).encode("ascii")


@given(st.text(min_size=1))
def test_a_source_is_refused_exactly_when_str_isspace_finds_whitespace(source: str) -> None:
    """The source check (a URI-reference: no whitespace) agrees with str.isspace, for any text."""
    event = {"specversion": "1.0", "id": "1", "type": "t", "source": source}
    try:
        event_from_json(event)
    except MalformedEvent:
        refused = True
    else:
        refused = False
    assert refused == any(ch.isspace() for ch in source)


# -------------------------------------------------------------------------------------------
# run_within: asyncio.wait_for's semantics, without a timer for coroutines that never wait
# -------------------------------------------------------------------------------------------


async def test_run_within_returns_what_a_coroutine_that_never_waits_returns() -> None:
    """A coroutine answering without suspending is never interrupted, even with no time left."""

    async def immediate() -> str:
        return "answer"

    assert await run_within(0, immediate()) == "answer"


@pytest.mark.looptime
async def test_run_within_resumes_a_coroutine_that_waits() -> None:
    """What the coroutine awaits after its first step is awaited; its result comes back."""

    async def waits() -> list[int]:
        got = [1]
        await one_turn()  # the coroutine suspends (a bare yield)
        got.append(2)
        await advance(0.01)  # a timer, not a bare yield: a second kind of suspension
        return [*got, 3]

    assert await run_within(5, waits()) == [1, 2, 3]


async def test_run_within_passes_on_errors_raised_after_waiting() -> None:
    """An exception raised after a suspension reaches the caller unchanged."""

    async def fails() -> None:
        await one_turn()  # the coroutine suspends (a bare yield)
        raise LookupError("late")

    with pytest.raises(LookupError, match="late"):
        await run_within(5, fails())


@pytest.mark.looptime
async def test_run_within_times_out_a_coroutine_that_waits_too_long() -> None:
    """Past `seconds` the coroutine is cancelled (its cleanup runs) and TimeoutError raised."""
    cleaned = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.Event().wait()  # never set: waits until cancelled
        finally:
            cleaned.set()

    with pytest.raises(TimeoutError):
        await run_within(0.05, slow())
    assert cleaned.is_set()


async def test_run_within_lets_an_outer_cancellation_through() -> None:
    """Cancelling the caller cancels the coroutine and is not turned into a timeout."""
    cleaned = asyncio.Event()
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: waits until cancelled
        finally:
            cleaned.set()

    task = asyncio.ensure_future(run_within(5, slow()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


async def test_run_within_lets_the_coroutine_handle_what_is_thrown_in() -> None:
    """An exception delivered to the waiting coroutine can be caught by it, like `await`."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recovers() -> str:
        try:
            await fut
        except ValueError:
            return "recovered"
        return "no error"

    task = asyncio.ensure_future(run_within(5, recovers()))
    await one_turn()  # one turn, run_within starts waiting on the future
    fut.set_exception(ValueError("boom"))
    assert await task == "recovered"
