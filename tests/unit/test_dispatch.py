"""From a decoded event to its reply: routing, payload validation, reply attributes, failures.

Handlers here are real coroutines registered in a real `Registry`; the app is built with
`make_app(settings, registry=...)` exactly as production builds it with the default one.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest

from eventfn.binding import Event
from eventfn.dispatch.registry import Registry
from eventfn.dispatch.replies import REPLY_NAMESPACE, reply_id, rfc3339_now
from eventfn.testing import app_client
from tests.functions import ASK, ASK_CATALOGUE, NOTE, Answer, Question
from tests.helpers.support import (
    QUERY,
    RESPONSE,
    STRUCTURED,
    Counting,
    binary_headers,
    dumps,
    event_json,
    handler_client,
    make_app,
    query,
    suite_client,
    suite_settings,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


async def post_binary(client: httpx.AsyncClient, payload: object, **kw: str) -> httpx.Response:
    """POST a binary-mode query event with `payload` as its JSON body."""
    return await client.post("/", headers=binary_headers(**kw), content=dumps(payload))


# -------------------------------------------------------------------------------------------
# Routing and validation
# -------------------------------------------------------------------------------------------


async def test_unknown_type_is_400_listing_accepted_types(client: httpx.AsyncClient) -> None:
    """An event type with no handler is 400 and the problem lists the accepted types."""
    response = await client.post(
        "/", headers=binary_headers(type="com.example.nope"), content=dumps(query())
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"].endswith("/unknown-event-type")
    assert problem["accepted_types"] == [QUERY, NOTE.type]
    assert "com.example.nope" in problem["detail"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/json; charset=latin-1"]
)
async def test_non_json_datacontenttype_is_415(
    client: httpx.AsyncClient, content_type: str
) -> None:
    """A JSON event type carrying a non-JSON datacontenttype is 415."""
    response = await client.post(
        "/", headers=binary_headers(content_type=content_type), content=b"What is Knative?"
    )
    assert response.status_code == 415
    assert response.json()["type"].endswith("/unsupported-media-type")


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "application/json; charset=utf-8", "text/json"]
)
async def test_json_datacontenttypes_are_accepted(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    """Absent, application/json (with UTF-8 charset) and text/json all carry JSON."""
    response = await client.post(
        "/", headers=binary_headers(content_type=content_type), content=dumps(query())
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("payload", "loc", "error_type"),
    [
        ({}, ["data", "query"], "missing"),
        ({"query": ""}, ["data", "query"], "string_too_short"),
        ({"query": "   "}, ["data", "query"], "string_pattern_mismatch"),
        ({"query": 5}, ["data", "query"], "string_type"),
        ({"query": "q", "extra": 1}, ["data", "extra"], "extra_forbidden"),
        ({"query": "q", "parameters": []}, ["data", "parameters"], "dict_type"),
        ([], ["data"], "model_type"),
    ],
)
@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_schema_errors_are_400_listing_field_locations(
    client: httpx.AsyncClient, payload: object, loc: list[str], error_type: str, mode: str
) -> None:
    """A payload that fails Question is 400 with each field error's loc, msg and type."""
    if mode == "binary":
        response = await client.post("/", headers=binary_headers(), content=dumps(payload))
    else:
        response = await client.post(
            "/", headers={"content-type": STRUCTURED}, content=dumps(event_json(payload))
        )
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"].endswith("/schema-violation")
    assert {"loc": loc, "type": error_type} in [
        {"loc": e["loc"], "type": e["type"]} for e in problem["errors"]
    ]
    assert all(set(e) == {"loc", "msg", "type"} for e in problem["errors"])


async def test_schema_error_does_not_echo_the_input(client: httpx.AsyncClient) -> None:
    """Field errors leave the offending input out of the problem body."""
    response = await post_binary(client, {"query": "q", "secretfield": "hunter2"})
    assert response.status_code == 400
    assert "hunter2" not in response.text


async def test_binary_body_that_is_not_json_is_a_malformed_event(client: httpx.AsyncClient) -> None:
    """A JSON-typed binary body that does not parse is 400 malformed-event, as in structured
    mode: the binding reads every door's JSON in one dialect before any schema is applied."""
    response = await client.post("/", headers=binary_headers(), content=b"{not json")
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"].endswith("/malformed-event")
    assert problem["detail"].startswith("body is not valid JSON")


@pytest.mark.parametrize("mode", ["binary", "structured"])
async def test_missing_data_is_400(client: httpx.AsyncClient, mode: str) -> None:
    """The query type requires data; an event without any is 400 with loc ['data']."""
    if mode == "binary":
        response = await client.post("/", headers=binary_headers(), content=b"")
    else:
        response = await client.post(
            "/", headers={"content-type": STRUCTURED}, content=dumps(event_json())
        )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"loc": ["data"], "msg": "Field required", "type": "missing"}
    ]


async def test_data_base64_json_payload_is_validated(client: httpx.AsyncClient) -> None:
    """JSON bytes carried in data_base64 are validated like any JSON data."""
    event = event_json(data_base64="eyJxdWVyeSI6ImI2NCJ9")
    response = await client.post("/", headers={"content-type": STRUCTURED}, content=dumps(event))
    assert response.status_code == 200
    assert response.json()["data"]["result"] == {"message": "Processed query: b64"}


# -------------------------------------------------------------------------------------------
# The reply event
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("specversion", ["1.0", "0.3"])
async def test_reply_attributes(client: httpx.AsyncClient, specversion: str) -> None:
    """The reply is a 1.0 response event with a deterministic id, UTC time and JSON data."""
    headers = binary_headers(id="req-1", source="/producer", specversion=specversion)
    response = await client.post("/", headers=headers, content=dumps(query("hi")))
    assert response.status_code == 200
    h = response.headers
    assert h["ce-specversion"] == "1.0"
    assert h["ce-type"] == RESPONSE
    assert h["ce-source"] == "/knative-python-backend"
    assert h["ce-id"] == reply_id("/producer", "req-1")
    assert h["content-type"] == "application/json"
    assert RFC3339_UTC.fullmatch(h["ce-time"])
    assert "ce-replyid" not in h
    assert "ce-traceparent" not in h
    body = response.json()
    assert body["result"] == {"message": "Processed query: hi"}
    assert RFC3339_UTC.fullmatch(body["metadata"]["timestamp"])


async def test_reply_source_is_configurable() -> None:
    """EVENT_SOURCE sets the reply's source."""
    async with suite_client(event_source="//fn.example/query") as client:
        response = await post_binary(client, query())
    assert response.headers["ce-source"] == "//fn.example/query"


def test_reply_id_is_a_uuid5_of_source_and_id() -> None:
    """The reply id is deterministic in source+id and different for different events."""
    first = reply_id("/a", "1")
    assert first == reply_id("/a", "1")
    assert uuid.UUID(first).version == 5
    assert first == str(uuid.uuid5(REPLY_NAMESPACE, "2:/a1"))
    assert (
        len(
            {
                first,
                reply_id("/a", "2"),
                reply_id("/b", "1"),
                reply_id("/a1", ""),
                reply_id("", "/a1"),
            }
        )
        == 5
    )


def test_rfc3339_now_is_utc_with_milliseconds() -> None:
    """Reply times are UTC, with a Z and milliseconds."""
    now = rfc3339_now()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", now)
    parsed = datetime.fromisoformat(now.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 5


async def test_reply_carries_replyid_from_correlationid(client: httpx.AsyncClient) -> None:
    """Knative RequestReply: correlationid on the request becomes replyid on the reply."""
    response = await post_binary(client, query(), correlationid="abc:0:1")
    assert response.headers["ce-replyid"] == "abc:0:1"


async def test_reply_propagates_trace_context(client: httpx.AsyncClient) -> None:
    """traceparent and tracestate of the request are carried by the reply."""
    response = await post_binary(client, query(), traceparent=TRACEPARENT, tracestate="vendor=1")
    assert response.headers["ce-traceparent"] == TRACEPARENT
    assert response.headers["ce-tracestate"] == "vendor=1"


async def test_reply_does_not_copy_other_extensions(client: httpx.AsyncClient) -> None:
    """Other request extensions are not part of the reply."""
    response = await post_binary(client, query(), myext="x")
    assert "ce-myext" not in response.headers


async def test_redelivery_gets_the_same_reply_id_and_body(client: httpx.AsyncClient) -> None:
    """A redelivered event (same source+id) gets the identical reply."""
    headers = binary_headers(id="same")
    first = await client.post("/", headers=headers, content=dumps(query()))
    second = await client.post("/", headers=headers, content=dumps(query()))
    assert first.headers["ce-id"] == second.headers["ce-id"]
    assert first.headers["ce-time"] == second.headers["ce-time"]
    assert first.content == second.content


# -------------------------------------------------------------------------------------------
# Handler outcomes: no reply, failure, timeout
# -------------------------------------------------------------------------------------------


@pytest.fixture
def recorder() -> Counting:
    """A scriptable handler."""
    return Counting()


@pytest.fixture
async def rclient(recorder: Counting) -> AsyncIterator[httpx.AsyncClient]:
    """A function whose query handler is `recorder`, with a short handler timeout."""
    async with handler_client(recorder, handler_timeout_seconds=0.2) as client:
        yield client


async def test_handler_returning_none_is_202_empty(
    rclient: httpx.AsyncClient, recorder: Counting
) -> None:
    """Nothing to say: 202 with an empty body and no ce- headers."""
    recorder.reply = False
    response = await post_binary(rclient, query())
    assert response.status_code == 202
    assert response.content == b""
    assert not any(name.startswith("ce-") for name in response.headers)


async def test_no_reply_is_replayed_as_202(rclient: httpx.AsyncClient, recorder: Counting) -> None:
    """A redelivery of an event that got 202 gets 202 again without running the handler."""
    recorder.reply = False
    headers = binary_headers()
    for _ in range(2):
        response = await rclient.post("/", headers=headers, content=dumps(query()))
        assert response.status_code == 202
    assert recorder.calls == 1


async def test_handler_raising_is_500_and_a_retry_runs_it_again(
    rclient: httpx.AsyncClient, recorder: Counting
) -> None:
    """A crashing handler is a 500 problem (retried by the broker); its claim is released."""
    recorder.failures = 1
    headers = binary_headers()
    failed = await rclient.post("/", headers=headers, content=dumps(query()))
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["type"].endswith("/handler-failed")
    assert "boom" not in failed.text
    assert "Traceback" not in failed.text
    retried = await rclient.post("/", headers=headers, content=dumps(query()))
    assert retried.status_code == 200
    assert recorder.calls == 2


async def test_handler_timeout_is_504_and_a_retry_runs_it_again(
    rclient: httpx.AsyncClient, recorder: Counting
) -> None:
    """A handler over its time budget is 504 (retried); its claim is released."""
    recorder.gate = asyncio.Event()  # never set: held until its budget or a cancel
    headers = binary_headers()
    timed_out = await rclient.post("/", headers=headers, content=dumps(query()))
    assert timed_out.status_code == 504
    assert timed_out.json()["type"].endswith("/handler-timeout")
    recorder.gate = None
    retried = await rclient.post("/", headers=headers, content=dumps(query()))
    assert retried.status_code == 200
    assert recorder.calls == 2


async def test_handler_returning_a_wrong_type_is_500() -> None:
    """A handler returning something other than its reply model is a handler failure."""
    registry = Registry(ASK_CATALOGUE)

    @registry.handles(ASK)
    async def wrong(request: Question) -> Answer:
        return request  # type: ignore[return-value]

    async with app_client(make_app(suite_settings(), registry=registry)) as client:
        response = await post_binary(client, query())
    assert response.status_code == 500
    assert "invalid reply" in response.json()["detail"]


async def test_dispatcher_replays_a_stored_reply_as_an_event() -> None:
    """A replayed reply is the stored event, attributes and data unchanged."""
    app = make_app(suite_settings())
    dispatcher = app.state.runtime.dispatcher
    route = dispatcher.route(QUERY)
    event = Event(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": QUERY}, json_data={"query": "q"}
    )
    payload = dispatcher.validate(route, event)
    first = await dispatcher.handle(event, route, payload)
    again = await dispatcher.handle(event, route, payload)
    assert (first.outcome, again.outcome) == ("ok", "duplicate")
    assert first.reply == again.reply
    assert first.status == again.status == 200
    assert first.reply is not None
    assert first.reply.data is not None
    assert orjson.loads(first.reply.data)["result"] == {"message": "Processed query: q"}


async def test_cancelled_handling_is_not_a_timeout_and_releases_the_claim(
    recorder: Counting,
) -> None:
    """A cancellation from outside (shutdown) propagates as such and frees the event for a retry."""
    registry = Registry(ASK_CATALOGUE)
    registry.handles(ASK)(recorder)
    dispatcher = make_app(suite_settings(), registry=registry).state.runtime.dispatcher
    route = dispatcher.route(QUERY)
    event = Event(
        {"specversion": "1.0", "id": "c", "source": "/s", "type": QUERY}, json_data=query()
    )
    payload = dispatcher.validate(route, event)
    recorder.gate = asyncio.Event()  # never set: held until its budget or a cancel
    task = asyncio.create_task(dispatcher.handle(event, route, payload))
    await asyncio.wait_for(recorder.entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    recorder.gate = None
    again = await dispatcher.handle(event, route, payload)
    assert again.outcome == "ok"
    assert recorder.calls == 2
