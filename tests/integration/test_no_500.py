"""No 500 for any input: a 500 means a handler raised, and even then it is problem+json.

Numbers out of range on the dead-letter paths are 400s; an unexpected error of the facade is a
problem+json 500 that discloses nothing. Then a property: whatever Hypothesis sends through
each door (`POST /` in every mode, `POST /deadletter`, the facade's routes, the dead-letter
inbox, the WebSocket), the answer is never a 500 unless the handler failed, and every error is
problem+json.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventfn.app import FunctionApp
from tests.helpers.support import (
    BATCH,
    PROBLEM,
    STRUCTURED,
    assert_bad_request,
    binary_headers,
    dumps,
    event_json,
    make_app,
    query,
    suite_client,
    suite_settings,
)


@pytest.mark.parametrize("cursor", ["99999999999999999999", "-1", str(2**63)])
async def test_a_dead_letter_cursor_out_of_range_is_400(cursor: str, tmp_path: Path) -> None:
    """A cursor no page could have given (beyond SQLite's integers, negative) is a 400."""
    async with suite_client(data_dir=tmp_path) as client:
        stored = await client.post(
            "/deadletter", headers=binary_headers(knativeerrorcode="500"), content=dumps(query())
        )
        assert stored.status_code == 202
        response = await client.get("/api/v1/deadletters", params={"cursor": cursor})
    assert_bad_request(response)


@pytest.mark.parametrize("code", ["99999999999999999999999", "-9223372036854775809", "-1"])
async def test_a_knativeerrorcode_out_of_range_is_400(code: str, tmp_path: Path) -> None:
    """A `knativeerrorcode` that is no HTTP status is a 400, not an unstorable letter (500)."""
    async with suite_client(data_dir=tmp_path) as client:
        response = await client.post(
            "/deadletter", headers=binary_headers(knativeerrorcode=code), content=dumps(query())
        )
    assert_bad_request(response)


@contextlib.asynccontextmanager
async def unraising_client(app: FunctionApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees what the server answers when the app raises (not the exception)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.lifespan_context(),
        httpx.AsyncClient(transport=transport, base_url="http://function") as client,
    ):
        yield client


async def test_an_unexpected_facade_error_is_a_problem_500_without_internals() -> None:
    """A bug in a facade route is answered 500 problem+json; its message stays in the logs."""
    app = make_app()

    async def broken() -> None:
        raise RuntimeError("secret internals: /etc/passwd")

    app.facade.add_api_route("/api/v1/broken", broken)
    async with unraising_client(app) as client:
        response = await client.get("/api/v1/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "secret" not in response.text
    assert orjson.loads(response.content)["status"] == 500


# -- the property --------------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _dumps(value: Any) -> bytes:
    """JSON with integers of any size (orjson writes 64 bits at most)."""
    return json.dumps(value).encode()


text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
header_values = st.one_of(
    text, st.sampled_from(["", "1.0", "0.3", "%", "%zz", "\t", "-1", "99999999999999999999999"])
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
json_bytes = json_values.map(_dumps)
bodies = st.one_of(
    st.binary(max_size=200),
    json_bytes,
    st.sampled_from([b"NaN", b"[1e400]", b'{"query": Infinity}', b"99999999999999999999999"]),
)
content_types = st.one_of(
    st.sampled_from(
        [STRUCTURED, BATCH, "application/json", "text/plain", "application/cloudevents+xml"]
    ),
    text,
)
ce_names = st.sampled_from(
    ["specversion", "id", "source", "type", "time", "dataschema", "subject", "knativeerrorcode"]
) | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """A request to one of the doors: method, path, headers (query parameters for a GET or a
    DELETE) and body."""
    door = draw(
        st.sampled_from(["ingress", "structured", "deadletter", "facade", "inbox", "replay"])
    )
    headers: dict[str, str] = {}
    if door in ("ingress", "deadletter"):
        headers = binary_headers()
        if door == "deadletter":  # the error Knative attaches, a number as often as not
            headers["ce-knativeerrorcode"] = draw(st.one_of(st.integers().map(str), header_values))
        for name, value in draw(st.dictionaries(ce_names, header_values, max_size=4)).items():
            headers[f"ce-{name.lower()}"] = value
        headers["content-type"] = draw(content_types)
        return "POST", "/" if door == "ingress" else "/deadletter", headers, draw(bodies)
    if door == "structured":
        event: dict[str, Any] = event_json(draw(json_values))
        event.update(draw(st.dictionaries(ce_names, json_values, max_size=3)))
        mode = draw(st.sampled_from([STRUCTURED, BATCH]))
        body = _dumps(event if mode == STRUCTURED else [event])
        path = draw(st.sampled_from(["/", "/deadletter"]))
        return "POST", path, {"content-type": mode}, body
    if door == "facade":
        headers = {"content-type": draw(st.sampled_from(["application/json", "text/plain"]))}
        return "POST", "{facade}", headers, draw(bodies)
    if door == "inbox":
        cursor = draw(st.one_of(text, st.integers().map(str)))
        limit = draw(st.one_of(st.integers(-5, 1000).map(str), text))
        return "GET", "/api/v1/deadletters", {"cursor": cursor, "limit": limit}, b""
    letter = draw(st.text(st.characters(min_codepoint=0x30, max_codepoint=0x7A), max_size=40))
    method = draw(st.sampled_from(["GET", "POST", "DELETE"]))
    suffix = "/replay" if method == "POST" else ""
    return method, f"/api/v1/deadletters/{quote(letter or 'x', safe='')}{suffix}", {}, b""


@contextlib.contextmanager
def running(tmp: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, httpx.AsyncClient, str]]:
    """The function with its lifespan running on a loop of its own, for a synchronous test."""
    loop = asyncio.new_event_loop()
    app = make_app(suite_settings(data_dir=tmp, k_sink="http://127.0.0.1:9/"))
    default = app.state.runtime.catalogue.default
    facade: str = default.facade_path if default is not None else "/api/v1/none"
    lifespan = app.lifespan_context()
    loop.run_until_complete(lifespan.__aenter__())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://function")
    try:
        yield loop, client, facade
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()


def test_no_door_answers_500_unless_a_handler_raised(tmp_path: Path) -> None:
    """Any request to any door: never a 500 but the handler's own, every error problem+json."""
    with running(tmp_path) as (loop, client, facade):

        @PROPERTY
        @given(requests())
        def check(request: tuple[str, str, dict[str, str], bytes]) -> None:
            method, path, fields, body = request
            path = path.replace("{facade}", facade)
            headers, params = (fields, None) if method == "POST" else ({}, fields or None)
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            response = loop.run_until_complete(
                client.request(method, path, headers=raw, params=params, content=body)
            )
            if response.status_code >= 400:
                assert response.headers["content-type"] == PROBLEM, (path, response.text)
            if response.status_code == 500:
                problem = orjson.loads(response.content)
                assert problem["type"].endswith("/handler-failed"), (path, response.text)

        check()


# -- the WebSocket door --------------------------------------------------------------------------

ws_messages = st.one_of(
    text,  # not JSON at all
    json_values.map(_dumps).map(bytes.decode),  # JSON, any shape
    st.fixed_dictionaries(
        {"type": st.sampled_from(["ping", "subscribe", "unsubscribe", "{ask}", "nope"]) | text},
        optional={
            "id": text | json_values,
            "types": json_values,
            "query": json_values,
            "parameters": json_values,
        },
    )
    .map(_dumps)
    .map(bytes.decode),
)


@contextlib.contextmanager
def served(tmp: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, str, str]]:
    """The function served by uvicorn on a loop of its own; its address and ask message type."""
    from tests.helpers.live import serving

    loop = asyncio.new_event_loop()
    app = make_app(suite_settings(data_dir=tmp))
    default = app.state.runtime.catalogue.default
    ask: str = default.message_type if default is not None else "none"
    server = serving(app)
    address = loop.run_until_complete(server.__aenter__())
    try:
        yield loop, address, ask
    finally:
        loop.run_until_complete(server.__aexit__(None, None, None))
        loop.close()


async def exchange(address: str, message: str, ask: str) -> list[dict[str, Any]]:
    """Send `message`, then a ping: every message received until its pong, and until the answer
    of a query (a result or an error with its `id`), which may come after the pong."""
    from tests.helpers.live import socket

    try:
        sent = orjson.loads(message)
    except orjson.JSONDecodeError:
        sent = None
    query_id = sent.get("id") if isinstance(sent, dict) and sent.get("type") == ask else None
    waiting = isinstance(query_id, str) and 0 < len(query_id) <= 200
    received: list[dict[str, Any]] = []
    ponged = False
    async with socket(address) as ws, asyncio.timeout(10):  # a hang guard
        await ws.send(message)
        await ws.send(_dumps({"type": "ping", "id": "end-of-exchange"}).decode())
        while not ponged or waiting:
            answer = orjson.loads(await ws.recv())
            if answer == {"type": "pong", "id": "end-of-exchange"}:
                ponged = True
                continue
            received.append(answer)
            if answer.get("id") == query_id and answer.get("type") in ("result", "error"):
                waiting = False
    return received


@pytest.mark.server
def test_no_websocket_message_is_answered_500_unless_a_handler_raised(tmp_path: Path) -> None:
    """Any text message on the WebSocket: its errors are problems, never a 500 of ours."""
    with served(tmp_path) as (loop, address, ask):

        @settings(PROPERTY, max_examples=40)
        @given(ws_messages)
        def check(message: str) -> None:
            answers = loop.run_until_complete(exchange(address, message.replace("{ask}", ask), ask))
            for answer in answers:
                if answer.get("type") == "error":
                    problem = answer["error"]
                    assert problem["status"] != 500 or problem["type"].endswith(
                        "/handler-failed"
                    ), answer

        check()
