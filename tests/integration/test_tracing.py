"""W3C trace context: parsed strictly, linked to the delivery's logs, reply and outgoing calls."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from eventfn.observability import tracing
from eventfn.testing import app_client
from tests.helpers.support import (
    STRUCTURED,
    binary_headers,
    dumps,
    event_json,
    make_app,
    query,
    running_server,
    suite_client,
    suite_settings,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"
OTHER_TRACEPARENT = "00-11111111111111111111111111111111-2222222222222222-00"


def test_parse_reads_a_valid_traceparent() -> None:
    """A valid traceparent yields its trace id, parent id and sampled flag."""
    context = tracing.parse(TRACEPARENT, "congo=t61rcWkgMzE")
    assert context == tracing.TraceContext(TRACEPARENT, "congo=t61rcWkgMzE", TRACE_ID, PARENT, True)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"00-{TRACE_ID.upper()}-{PARENT}-01",  # hex is lowercase
        f"ff-{TRACE_ID}-{PARENT}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID[:-1]}-{PARENT}-01",  # short trace id
        None,
        42,
    ],
)
def test_parse_ignores_invalid_traceparents(value: object) -> None:
    """An invalid traceparent is ignored (None), never an error."""
    assert tracing.parse(value) is None


def test_parse_accepts_later_versions_with_more_fields() -> None:
    """A future version may append fields; the known ones are still read."""
    context = tracing.parse(f"01-{TRACE_ID}-{PARENT}-00-whatever")
    assert context is not None
    assert context.trace_id == TRACE_ID
    assert not context.sampled


def test_oversized_tracestate_is_dropped() -> None:
    """A tracestate above 512 characters is dropped; the traceparent stays."""
    context = tracing.parse(TRACEPARENT, "k=" + "v" * 600)
    assert context is not None
    assert context.tracestate is None


async def test_reply_carries_the_events_tracing_extension() -> None:
    """The reply to an event with the tracing extension carries the same traceparent/tracestate."""
    headers = binary_headers(traceparent=TRACEPARENT, tracestate="a=b")
    async with suite_client() as client:
        response = await client.post("/", headers=headers, content=dumps(query()))
    assert response.status_code == 200
    assert response.headers["ce-traceparent"] == TRACEPARENT
    assert response.headers["ce-tracestate"] == "a=b"


async def test_http_traceparent_reaches_the_reply_when_the_event_has_none() -> None:
    """Without the extension, the delivery's HTTP traceparent header goes onto the reply."""
    headers = {**binary_headers(), "traceparent": TRACEPARENT, "tracestate": "a=b"}
    async with suite_client() as client:
        response = await client.post("/", headers=headers, content=dumps(query()))
    assert response.headers["ce-traceparent"] == TRACEPARENT
    assert response.headers["ce-tracestate"] == "a=b"


async def test_structured_reply_carries_the_http_traceparent() -> None:
    """A structured-mode reply gets the header's traceparent as an attribute."""
    body = dumps(event_json(query()))
    headers = {"content-type": STRUCTURED, "traceparent": TRACEPARENT}
    async with suite_client() as client:
        response = await client.post("/", headers=headers, content=body)
    assert response.json()["traceparent"] == TRACEPARENT


async def test_extension_wins_over_http_header() -> None:
    """The event's own extension is its trace; the HTTP header does not replace it."""
    headers = {**binary_headers(traceparent=TRACEPARENT), "traceparent": OTHER_TRACEPARENT}
    async with suite_client() as client:
        response = await client.post("/", headers=headers, content=dumps(query()))
    assert response.headers["ce-traceparent"] == TRACEPARENT


async def test_invalid_http_traceparent_is_ignored() -> None:
    """A malformed traceparent header neither fails the event nor reaches the reply."""
    headers = {**binary_headers(), "traceparent": "not-a-trace"}
    async with suite_client() as client:
        response = await client.post("/", headers=headers, content=dumps(query()))
    assert response.status_code == 200
    assert "ce-traceparent" not in response.headers


@pytest.mark.server
def test_every_log_line_of_the_event_carries_its_trace() -> None:
    """In a real server, lines logged while handling and the event line carry trace_id."""
    with running_server() as server:
        headers = binary_headers(id="same", traceparent=TRACEPARENT)
        for text in ("first", "changed"):  # same identity, other payload: a producer error
            response = httpx.post(server.url, headers=headers, content=dumps(query(text)))
            assert response.status_code == 200
        output = server.stop()
    lines = [json.loads(x) for x in output.splitlines() if x.startswith("{")]
    warning = next(x for x in lines if x["event"] == "producer_error_payload_changed")
    assert (warning["trace_id"], warning["span_id"]) == (TRACE_ID, PARENT)
    event_lines = [x for x in lines if x["event"] == "event"]
    assert [x["trace_id"] for x in event_lines] == [TRACE_ID, TRACE_ID]


async def test_trace_does_not_leak_past_its_event() -> None:
    """After the event, no trace context is current any more."""
    async with suite_client() as client:
        await client.post("/", headers=binary_headers(traceparent=TRACEPARENT), content=b"{}")
    assert tracing.current() is None


async def test_outgoing_httpx_calls_carry_the_current_trace() -> None:
    """The httpx request hook adds traceparent/tracestate while an event's trace is bound."""
    seen: list[httpx.Request] = []

    def sink(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    transport = httpx.MockTransport(sink)
    hooks = {"request": [tracing.inject_headers]}
    async with httpx.AsyncClient(transport=transport, event_hooks=hooks) as client:
        with tracing.bound(tracing.parse(TRACEPARENT, "a=b")):
            await client.post("http://sink/")
            assert tracing.extensions() == {"traceparent": TRACEPARENT, "tracestate": "a=b"}
        await client.post("http://sink/")
    assert seen[0].headers["traceparent"] == TRACEPARENT
    assert seen[0].headers["tracestate"] == "a=b"
    assert "traceparent" not in seen[1].headers
    assert tracing.extensions() == {}


async def test_concurrent_events_keep_their_own_trace() -> None:
    """Two events handled at once each see their own trace context."""

    both = asyncio.Barrier(2)

    async def one(traceparent: str) -> str | None:
        with tracing.bound(tracing.parse(traceparent)):
            await both.wait()  # each is inside its trace while the other is in its own
            context = tracing.current()
            return None if context is None else context.traceparent

    results = await asyncio.gather(
        asyncio.create_task(one(TRACEPARENT)), asyncio.create_task(one(OTHER_TRACEPARENT))
    )
    assert list(results) == [TRACEPARENT, OTHER_TRACEPARENT]


async def test_function_runs_with_otlp_endpoint_and_no_otel_extra() -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, deliveries still succeed (spans are best effort)."""
    settings = suite_settings(otel_exporter_otlp_endpoint="http://127.0.0.1:9/")
    async with app_client(make_app(settings)) as client:
        response = await client.post(
            "/", headers=binary_headers(traceparent=TRACEPARENT), content=dumps(query())
        )
    assert response.status_code == 200
    assert response.headers["ce-traceparent"] == TRACEPARENT
