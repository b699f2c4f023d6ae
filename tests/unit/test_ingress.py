"""`POST /` over ASGI: content modes in and out, the status-code contract, limits, problems."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventfn.dispatch.replies import reply_id
from tests.helpers.support import (
    BATCH,
    PROBLEM,
    QUERY,
    RESPONSE,
    STRUCTURED,
    Counting,
    binary_headers,
    dumps,
    event_json,
    make_app,
    query,
    suite_client,
    suite_settings,
)


def assert_problem(
    response: httpx.Response, status: int, problem: str | None = None
) -> dict[str, object]:
    """Assert an RFC 9457 problem response with `status`; return its body."""
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["type"].startswith("https://")
    if problem is not None:
        assert body["type"].endswith("/" + problem)
    assert "Traceback" not in response.text
    assert not any(name.startswith("ce-") for name in response.headers)
    return body  # type: ignore[no-any-return]


# -------------------------------------------------------------------------------------------
# Replies in the mode of the request
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("specversion", ["1.0", "0.3"])
async def test_binary_event_gets_a_binary_reply(
    client: httpx.AsyncClient, specversion: str
) -> None:
    """200 with the reply as ce- headers and the answer as a JSON body."""
    response = await client.post(
        "/", headers=binary_headers(specversion=specversion), content=dumps(query("b"))
    )
    assert response.status_code == 200
    assert response.headers["ce-type"] == RESPONSE
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.json()["result"] == {"message": "Processed query: b"}


@pytest.mark.parametrize("specversion", ["1.0", "0.3"])
async def test_structured_event_gets_a_structured_reply(
    client: httpx.AsyncClient, specversion: str
) -> None:
    """200 with the reply as one application/cloudevents+json document."""
    event = event_json(query("s"), id="s-1", source="/p", specversion=specversion)
    response = await client.post("/", headers={"content-type": STRUCTURED}, content=dumps(event))
    assert response.status_code == 200
    assert response.headers["content-type"] == STRUCTURED
    reply = response.json()
    assert reply["specversion"] == "1.0"
    assert reply["type"] == RESPONSE
    assert reply["id"] == reply_id("/p", "s-1")
    assert reply["datacontenttype"] == "application/json"
    assert reply["data"]["result"] == {"message": "Processed query: s"}
    assert not any(name.startswith("ce-") for name in response.headers)


@pytest.mark.parametrize("specversion", ["1.0", "0.3"])
async def test_batch_gets_a_batch_of_replies_in_order(
    client: httpx.AsyncClient, specversion: str
) -> None:
    """A batch in is a batch of replies out, one per event, in order."""
    events = [event_json(query(str(i)), specversion=specversion) for i in range(3)]
    response = await client.post("/", headers={"content-type": BATCH}, content=dumps(events))
    assert response.status_code == 200
    assert response.headers["content-type"] == BATCH
    replies = response.json()
    assert [r["data"]["result"]["message"] for r in replies] == [
        f"Processed query: {i}" for i in range(3)
    ]
    assert [r["id"] for r in replies] == [reply_id("/tests", e["id"]) for e in events]


async def test_v03_base64_structured_event_is_handled(client: httpx.AsyncClient) -> None:
    """v0.3 datacontentencoding base64 data is decoded before validation."""
    event = event_json(specversion="0.3", datacontentencoding="base64")
    event["data"] = base64.b64encode(dumps(query("b64"))).decode()
    response = await client.post("/", headers={"content-type": STRUCTURED}, content=dumps(event))
    assert response.status_code == 200
    assert response.json()["data"]["result"] == {"message": "Processed query: b64"}


async def test_structured_request_with_ce_headers_is_read_from_its_body(
    client: httpx.AsyncClient,
) -> None:
    """ce- headers next to a structured body are ignored."""
    headers = {"content-type": STRUCTURED, "ce-type": "com.example.nope", "ce-id": "%zz"}
    response = await client.post("/", headers=headers, content=dumps(event_json(query())))
    assert response.status_code == 200


async def test_empty_batch_is_202(client: httpx.AsyncClient) -> None:
    """An empty batch has nothing to handle and nothing to answer."""
    response = await client.post("/", headers={"content-type": BATCH}, content=b"[]")
    assert response.status_code == 202
    assert response.content == b""


# -------------------------------------------------------------------------------------------
# Batches are validated whole
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("third", "problem"),
    [
        (event_json(query(), time="yesterday"), "invalid-batch"),
        (event_json({"query": ""}), "schema-violation"),
        (event_json(query(), type="com.example.nope"), "unknown-event-type"),
        (event_json("text", datacontenttype="text/plain"), "unsupported-media-type"),
    ],
    ids=["malformed", "schema", "unknown-type", "non-json"],
)
async def test_bad_third_event_rejects_the_batch_before_any_is_handled(
    counted_client: httpx.AsyncClient, counting: Counting, third: dict[str, object], problem: str
) -> None:
    """One bad event rejects the whole batch naming index 2; the first two are not handled."""
    events = [event_json(query("one")), event_json(query("two")), third]
    response = await counted_client.post(
        "/", headers={"content-type": BATCH}, content=dumps(events)
    )
    body = assert_problem(response, 415 if problem == "unsupported-media-type" else 400, problem)
    assert body["index"] == 2
    assert "[2]" in str(body["detail"])
    assert counting.handled == []


async def test_batch_mixing_versions_is_400(client: httpx.AsyncClient) -> None:
    """All events of a batch share one spec version."""
    events = [event_json(query()), event_json(query(), specversion="0.3")]
    response = await client.post("/", headers={"content-type": BATCH}, content=dumps(events))
    assert "mix" in str(assert_problem(response, 400, "invalid-batch")["detail"])


async def test_batch_over_the_event_limit_is_413() -> None:
    """More events than MAX_BATCH_EVENTS is 413."""
    async with suite_client(max_batch_events=2) as client:
        events = [event_json(query()) for _ in range(3)]
        response = await client.post("/", headers={"content-type": BATCH}, content=dumps(events))
    assert_problem(response, 413, "payload-too-large")


# -------------------------------------------------------------------------------------------
# Status codes for bad input: never a 500
# -------------------------------------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, dict[str, str], bytes, int]] = [
    ("no-ce-headers-text", {"content-type": "text/plain"}, b"What is Knative?", 400),
    ("ce-format-unknown", {"content-type": "application/cloudevents-x+json"}, b"{}", 415),
    ("no-content-type-no-ce", {}, b"", 400),
    ("missing-id", {k: v for k, v in binary_headers().items() if k != "ce-id"}, b"{}", 400),
    ("bad-escape", binary_headers(subject="%zz"), dumps(query()), 400),
    ("bad-utf8", binary_headers(subject="%C3%28"), dumps(query()), 400),
    ("bad-time", binary_headers(time="2020-01-01"), dumps(query()), 400),
    ("bad-version", binary_headers(specversion="2.0"), dumps(query()), 400),
    ("ce-datacontenttype", binary_headers(datacontenttype="application/json"), b"{}", 400),
    ("structured-not-json", {"content-type": STRUCTURED}, b"{oops", 400),
    ("structured-not-object", {"content-type": STRUCTURED}, b"[1]", 400),
    (
        "structured-both-data",
        {"content-type": STRUCTURED},
        dumps(event_json(query(), data_base64="e30=")),
        400,
    ),
    ("batch-not-array", {"content-type": BATCH}, dumps(event_json(query())), 400),
    ("avro", {"content-type": "application/cloudevents+avro"}, b"\x00\x01", 415),
    ("latin1", {"content-type": f"{STRUCTURED}; charset=latin-1"}, dumps(event_json(query())), 415),
    ("binary-text", binary_headers(content_type="text/plain"), b"What?", 415),
    ("unknown-type", binary_headers(type="x.y"), dumps(query()), 400),
    ("schema", binary_headers(), dumps({"query": ""}), 400),
    ("no-data", binary_headers(), b"", 400),
    ("binary-garbage", binary_headers(), b"\xff\xfe\x00", 400),
    ("binary-bad-json", binary_headers(), b"{" * 10, 400),
]


@pytest.mark.parametrize(
    ("headers", "body", "status"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
async def test_bad_input_is_a_4xx_problem(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes, status: int
) -> None:
    """Malformed events, schema failures, unknown types and media types are 4xx problem+json."""
    response = await client.post("/", headers=headers, content=body)
    assert_problem(response, status)
    assert response.json()["instance"] == "/"


async def test_raw_non_utf8_header_is_400() -> None:
    """Raw header bytes that are not UTF-8 are a malformed event, not a crash."""
    async with suite_client() as client:
        headers = [(k.encode(), v.encode()) for k, v in binary_headers().items()]
        headers.append((b"ce-subject", b"caf\xe9"))
        response = await client.post("/", headers=headers, content=dumps(query()))
    assert_problem(response, 400, "malformed-event")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
async def test_other_methods_are_405_with_allow(client: httpx.AsyncClient, method: str) -> None:
    """Only POST is allowed on the ingress; the 405 says so in Allow."""
    response = await client.request(method, "/")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    if method != "HEAD":
        assert_problem(response, 405, "method-not-allowed")


Message = MutableMapping[str, Any]


async def call_asgi(
    messages: list[Message], headers: list[tuple[bytes, bytes]] | None = None, **settings: Any
) -> list[Message]:
    """Drive the app at the ASGI level with `messages` as the request; return what it sent."""
    app = make_app(suite_settings(**settings))
    incoming: Iterator[Message] = iter(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    base = [(k.encode(), v.encode()) for k, v in binary_headers().items()]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "headers": [*(headers or []), *base],
    }
    await app(scope, receive, send)
    return sent


async def test_invalid_content_length_is_400() -> None:
    """A Content-Length that is not a number is a malformed request."""
    sent = await call_asgi(
        [{"type": "http.request", "body": b"{}", "more_body": False}],
        [(b"content-length", b"abc")],
    )
    assert sent[0]["status"] == 400
    assert b"Content-Length" in sent[1]["body"]


async def test_client_disconnect_before_the_body_gets_no_answer() -> None:
    """A client that went away is not answered (nothing could read it)."""
    assert await call_asgi([{"type": "http.disconnect"}]) == []


async def test_client_disconnect_mid_body_gets_no_answer() -> None:
    """A client that leaves half-way through a chunked body is not answered."""
    messages: list[Message] = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert await call_asgi(messages) == []


# -------------------------------------------------------------------------------------------
# Body limit
# -------------------------------------------------------------------------------------------

LIMIT = 1024


@pytest.fixture
async def small() -> AsyncIterator[httpx.AsyncClient]:
    """A function with a 1 KiB body limit."""
    async with suite_client(max_body_bytes=LIMIT) as client:
        yield client


def padded(size: int) -> bytes:
    """A valid query body of exactly `size` bytes."""
    base = dumps(query(""))
    body = dumps(query("x" * (size - len(base))))
    assert len(body) == size
    return body


async def test_body_at_the_limit_is_accepted(small: httpx.AsyncClient) -> None:
    """A body of exactly MAX_BODY_BYTES is fine."""
    response = await small.post("/", headers=binary_headers(), content=padded(LIMIT))
    assert response.status_code == 200


async def test_body_over_the_limit_by_content_length_is_413(small: httpx.AsyncClient) -> None:
    """A Content-Length over the limit is refused with 413."""
    response = await small.post("/", headers=binary_headers(), content=padded(LIMIT + 1))
    body = assert_problem(response, 413, "payload-too-large")
    assert body["limit"] == LIMIT


async def test_streamed_body_over_the_limit_is_413(small: httpx.AsyncClient) -> None:
    """A chunked body without Content-Length is cut off at the limit with 413."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 200

    response = await small.post("/", headers=binary_headers(), content=chunks())
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")


async def test_streamed_body_under_the_limit_is_accepted(small: httpx.AsyncClient) -> None:
    """A chunked body within the limit is read whole."""
    body = dumps(query("chunked"))

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 4):
            yield body[i : i + 4]

    response = await small.post("/", headers=binary_headers(), content=chunks())
    assert response.status_code == 200
    assert response.json()["result"]["message"] == "Processed query: chunked"


async def test_single_message_body_over_the_limit_without_length_is_413() -> None:
    """A body delivered in one ASGI message but without Content-Length is still bounded."""
    body: Message = {"type": "http.request", "body": b" " * (LIMIT + 1), "more_body": False}
    sent = await call_asgi([body], max_body_bytes=LIMIT)
    assert sent[0]["status"] == 413


async def test_reply_is_not_sent_for_an_error(client: httpx.AsyncClient) -> None:
    """An error response never carries a reply event, in the body or in ce- headers."""
    response = await client.post("/", headers=binary_headers(), content=dumps({"query": ""}))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert not [name for name in response.headers if name.startswith("ce-")]
    assert orjson.loads(response.content).get("specversion") is None


# -------------------------------------------------------------------------------------------
# Property: no input makes the ingress answer 5xx
# -------------------------------------------------------------------------------------------

_FUZZ_APP: list[Any] = []

header_bytes = st.binary(max_size=12) | st.sampled_from(
    [b"1.0", b"0.3", b"%", b"%zz", b"%C3%28", b"\xff", b"/s", QUERY.encode(), b""]
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        STRUCTURED,
        BATCH,
        "application/cloudevents+avro",
        f"{STRUCTURED}; charset=latin-1",
        "application/json; charset=utf-16",
        ";;=",
        "a/b+json",
    ]
)
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)
event_objects = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "0.3", 1.0, ""]),
        "id": st.text(max_size=4) | st.integers(),
        "source": st.sampled_from(["/s", "a b", ""]),
        "type": st.sampled_from([QUERY, "x", ""]),
        "time": st.sampled_from(["2020-01-01T00:00:00Z", "2020-01-01", "x"]),
        "datacontenttype": st.sampled_from(["application/json", "text/plain", ""]),
        "datacontentencoding": st.sampled_from(["base64", "gzip"]),
        "data": json_values | st.just({"query": "q"}),
        "data_base64": st.sampled_from(["eyJxdWVyeSI6InEifQ==", "%%", ""]),
        "Ext": json_scalars,
        "ext": json_values,
    },
)


def _json(value: Any) -> bytes:
    # The stdlib encoder: it writes integers of any size, which orjson must then reject.
    return json.dumps(value).encode()


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Arbitrary, mostly broken, CloudEvents-looking HTTP requests."""
    names = draw(st.lists(st.sampled_from(["specversion", "id", "source", "type"]), max_size=5))
    headers = [(f"ce-{name}".encode(), draw(header_bytes)) for name in names]
    extra = draw(st.lists(st.tuples(st.binary(max_size=6), header_bytes), max_size=2))
    headers += [(b"ce-" + raw_name.lower(), value) for raw_name, value in extra]
    content_type = draw(content_types)
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    body = draw(
        st.binary(max_size=40)
        | event_objects.map(_json)
        | st.lists(event_objects, max_size=3).map(_json)
        | json_values.map(_json)
    )
    return headers, body


async def _post(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> list[Message]:
    sent: list[Message] = []
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": headers}
    await app(scope, receive, send)
    return sent


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests())
def test_no_input_gets_a_5xx(request: tuple[list[tuple[bytes, bytes]], bytes]) -> None:
    """Whatever the headers and body, the answer is 2xx or a 4xx problem, never a 5xx."""
    if not _FUZZ_APP:
        _FUZZ_APP.append(make_app(suite_settings()))
    sent = asyncio.run(_post(_FUZZ_APP[0], *request))
    status = sent[0]["status"]
    assert status < 500, sent[1]["body"]
    if status >= 400:
        assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
