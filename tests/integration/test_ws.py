"""The WebSocket `/api/v1/ws`: streamed queries, limits, heartbeats, drain and the live feed.

Each test serves the function with a real uvicorn in the test's own loop (`tests.helpers.live`).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from eventfn.dispatch.registry import Progress, handler_kind
from eventfn.testing import app_client
from tests.functions import Answer, Question, registry_with
from tests.helpers.live import (
    Step,
    answer,
    answers,
    function_socket,
    gated_handler,
    receive,
    send,
    serving,
    socket,
)
from tests.helpers.support import (
    QUERY,
    RESPONSE,
    ServerProcess,
    binary_headers,
    dumps,
    query,
    running_server,
    suite_settings,
    until,
)

pytestmark = pytest.mark.server

PROBLEMS = "https://knative-python-backend.dev/problems/"


async def streaming(request: Question) -> AsyncIterator[Any]:
    """A generator handler: two progress items (a dict and a model), then the reply."""
    yield {"stage": "thinking"}
    yield Step(step=2)
    yield answer(request)


async def with_callback(request: Question, progress: Progress) -> Answer:
    """A callback handler: reports progress as it goes."""
    progress("half way")
    return answer(request)


class TestQueries:
    async def test_a_query_gets_one_result_carrying_its_id(self) -> None:
        """A plain handler answers with exactly one result message, the Answer as data."""
        async with function_socket() as (_, address), socket(address) as ws:
            await send(ws, {"id": "q1", "query": "hi", "parameters": {"lang": "en"}})
            message = await receive(ws)
            assert message["id"] == "q1"
            assert message["type"] == "result"
            assert message["data"]["result"] == {"message": "Processed query: hi"}
            assert message["data"]["metadata"]["timestamp"].endswith("Z")

    async def test_an_explicit_query_type_is_accepted(self) -> None:
        """`"type": "query"` may be given; it is not part of the payload."""
        async with function_socket() as (_, address), socket(address) as ws:
            await send(ws, {"type": "query", "id": "q", "query": "typed"})
            assert (await receive(ws))["type"] == "result"

    async def test_a_generator_handler_streams_progress_then_the_result(self) -> None:
        """Progress items arrive in order, as JSON, before the one result."""
        async with function_socket(registry_with(streaming)) as (_, address), socket(address) as ws:
            await send(ws, {"id": "s", "query": "stream"})
            messages = await answers(ws, 3)
        assert [m["type"] for m in messages] == ["progress", "progress", "result"]
        assert [m["data"] for m in messages[:2]] == [{"stage": "thinking"}, {"step": 2}]
        assert {m["id"] for m in messages} == {"s"}

    async def test_a_callback_handler_reports_progress(self) -> None:
        """A handler taking `progress` streams what it reports."""
        registry = registry_with(with_callback)
        async with function_socket(registry) as (_, address), socket(address) as ws:
            await send(ws, {"id": "c", "query": "cb"})
            progress, result = await answers(ws, 2)
        assert progress == {"id": "c", "type": "progress", "data": "half way"}
        assert result["data"]["result"]["message"] == "Processed query: cb"

    async def test_several_queries_in_flight_are_answered_by_id(self) -> None:
        """A slow query does not hold back a fast one sent after it on the same socket."""
        release = asyncio.Event()

        async def gated(request: Question) -> Answer:
            if request.query == "slow":
                await release.wait()
            return answer(request)

        async with function_socket(registry_with(gated)) as (_, address), socket(address) as ws:
            await send(ws, {"id": "a", "query": "slow"})
            await send(ws, {"id": "b", "query": "fast"})
            first = await receive(ws)
            release.set()
            second = await receive(ws)
        assert (first["id"], second["id"]) == ("b", "a")
        assert second["data"]["result"]["message"] == "Processed query: slow"

    async def test_a_failing_handler_gets_an_error_with_the_query_id(self) -> None:
        """A handler that raises answers an error message (500 handler-failed) for its id."""

        async def broken(_: Question) -> Answer:
            raise RuntimeError("boom")

        async with function_socket(registry_with(broken)) as (_, address), socket(address) as ws:
            await send(ws, {"id": "x", "query": "q"})
            message = await receive(ws)
        assert message["id"] == "x"
        assert message["type"] == "error"
        assert message["error"]["type"] == PROBLEMS + "handler-failed"
        assert message["error"]["status"] == 500
        assert "boom" not in str(message)

    async def test_a_slow_handler_times_out_with_504(self) -> None:
        """The handler's time budget applies to WebSocket queries too."""

        async def stuck(_: Question) -> Answer:
            await asyncio.Event().wait()  # never set: held until the budget cancels it
            raise AssertionError("unreachable")

        async with (
            function_socket(registry_with(stuck), handler_timeout_seconds=0.1) as (_, address),
            socket(address) as ws,
        ):
            await send(ws, {"id": "t", "query": "q"})
            message = await receive(ws)
        assert message["error"]["status"] == 504


class TestMalformedMessages:
    @pytest.mark.parametrize(
        ("text", "detail"),
        [
            ("not json", "not valid JSON"),
            ("[1, 2]", "JSON object"),
            ('{"type": "teleport"}', "unknown message type"),
            ('{"query": "no id"}', "`id`"),
            ('{"id": 7, "query": "numeric id"}', "`id`"),
        ],
    )
    async def test_a_malformed_message_gets_an_error_and_the_socket_stays_open(
        self, text: str, detail: str
    ) -> None:
        """The error is a 400 problem; a ping afterwards is still answered."""
        async with function_socket() as (_, address), socket(address) as ws:
            await ws.send(text)
            message = await receive(ws)
            assert message["type"] == "error"
            assert message["id"] is None
            assert message["error"]["status"] == 400
            assert detail in message["error"]["detail"]
            await send(ws, {"type": "ping", "id": "p"})
            assert await receive(ws) == {"type": "pong", "id": "p"}

    async def test_a_query_failing_its_schema_lists_the_field_errors(self) -> None:
        """A blank query is a schema violation naming the field, answered for its id."""
        async with function_socket() as (_, address), socket(address) as ws:
            await send(ws, {"id": "v", "query": "   ", "extra": 1})
            message = await receive(ws)
        assert message["id"] == "v"
        assert message["error"]["type"] == PROBLEMS + "schema-violation"
        locs = {tuple(e["loc"]) for e in message["error"]["errors"]}
        assert locs == {("query",), ("extra",)}

    async def test_a_binary_message_is_refused(self) -> None:
        """Only text messages are part of the protocol."""
        async with function_socket() as (_, address), socket(address) as ws:
            await ws.send(b'{"id": "b", "query": "bytes"}')
            message = await receive(ws)
        assert message["error"]["status"] == 400
        assert "text" in message["error"]["detail"]


class TestLimits:
    async def test_an_oversized_message_gets_413_and_the_socket_stays_open(self) -> None:
        """A message above WS_MAX_MESSAGE_BYTES is refused without being parsed."""
        async with (
            function_socket(ws_max_message_bytes=2048) as (_, address),
            socket(address) as ws,
        ):
            await send(ws, {"id": "big", "query": "x" * 4000})
            message = await receive(ws)
            assert message["error"]["status"] == 413
            await send(ws, {"id": "small", "query": "ok"})
            assert (await receive(ws))["type"] == "result"

    async def test_a_far_too_large_message_is_cut_off_by_the_protocol(self) -> None:
        """The served function (`python -m eventfn`) closes with 1009 above 4x the app's limit."""
        with running_server({"WS_MAX_MESSAGE_BYTES": "2048", "LOG_LEVEL": "warning"}) as server:
            async with socket(server.url.removeprefix("http://")) as ws:
                await send(ws, {"id": "huge", "query": "x" * 20_000})
                with pytest.raises(ConnectionClosed) as closed:
                    await receive(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009

    async def test_queries_beyond_the_in_flight_limit_get_429(self) -> None:
        """With WS_MAX_IN_FLIGHT=1, a second query while the first runs is refused by id."""
        release, gated = gated_handler()

        async with (
            function_socket(registry_with(gated), ws_max_in_flight=1) as (_, address),
            socket(address) as ws,
        ):
            await send(ws, {"id": "1", "query": "first"})
            await send(ws, {"id": "2", "query": "second"})
            refused = await receive(ws)
            release.set()
            answered = await receive(ws)
        assert (refused["id"], refused["error"]["status"]) == ("2", 429)
        assert (answered["id"], answered["type"]) == ("1", "result")

    async def test_a_duplicate_id_in_flight_gets_409(self) -> None:
        """Ids must be unique among the queries in flight on a socket."""
        release, gated = gated_handler()

        async with function_socket(registry_with(gated)) as (_, address), socket(address) as ws:
            await send(ws, {"id": "same", "query": "one"})
            await send(ws, {"id": "same", "query": "two"})
            refused = await receive(ws)
            release.set()
            await receive(ws)
        assert refused["error"]["status"] == 409

    async def test_messages_above_the_rate_get_429(self) -> None:
        """Past the burst, messages are refused until the bucket refills."""
        async with (
            function_socket(ws_rate_burst=3, ws_rate_per_second=0.5) as (_, address),
            socket(address) as ws,
        ):
            for n in range(5):
                await send(ws, {"type": "ping", "id": str(n)})
            messages = await answers(ws, 5)
        assert [m["type"] for m in messages] == ["pong", "pong", "pong", "error", "error"]
        assert messages[3]["error"]["status"] == 429


class TestConnection:
    async def test_ping_is_answered_with_pong(self) -> None:
        """The application-level heartbeat echoes the ping's id."""
        async with function_socket() as (_, address), socket(address) as ws:
            await send(ws, {"type": "ping"})
            assert await receive(ws) == {"type": "pong", "id": None}
            await ws.ping()  # protocol-level pings are answered by the server too

    async def test_draining_answers_in_flight_queries_then_closes_with_1001(self) -> None:
        """When draining starts, a running query still gets its result, then the socket closes."""
        release, gated = gated_handler()
        entered = asyncio.Event()

        async def running(request: Question) -> Answer:
            entered.set()
            return await gated(request)  # type: ignore[no-any-return]

        async with function_socket(registry_with(running)) as (app, address), socket(address) as ws:
            await send(ws, {"id": "inflight", "query": "q"})
            await entered.wait()
            drain = asyncio.create_task(app.state.runtime.drain())  # what SIGTERM starts
            await until(lambda: app.state.runtime.draining)
            await send(ws, {"id": "late", "query": "q"})
            refused = await receive(ws)
            release.set()
            result = await receive(ws)
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            await drain
        assert (refused["id"], refused["error"]["status"]) == ("late", 503)
        assert (result["id"], result["type"]) == ("inflight", "result")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001

    async def test_sigterm_closes_open_sockets_with_1001(self) -> None:
        """A real `python -m eventfn` given a plain SIGTERM closes its sockets 1001, not 1012."""
        server = ServerProcess({"LOG_LEVEL": "warning"}).start()
        try:
            async with socket(server.url.removeprefix("http://")) as ws:
                await send(ws, {"type": "ping"})
                await receive(ws)
                assert server.proc is not None
                server.proc.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as closed:
                    await receive(ws)
        finally:
            server.stop()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001

    async def test_a_draining_function_refuses_new_sockets_with_503(self) -> None:
        """The handshake is answered 503 once draining has started."""
        async with function_socket() as (app, address):
            app.state.runtime.begin_drain()
            with pytest.raises(InvalidStatus) as refused:
                async with socket(address):
                    pass
        assert refused.value.response.status_code == 503

    async def test_with_api_keys_the_handshake_needs_a_key(self) -> None:
        """Without credentials the handshake is refused 401; X-API-Key opens it."""
        key = "ws-key-3f9a1c2e7b"
        async with function_socket(api_keys=[key]) as (_, address):
            with pytest.raises(InvalidStatus) as refused:
                async with socket(address):
                    pass
            assert refused.value.response.status_code == 401
            async with socket(address, additional_headers={"X-API-Key": key}) as ws:
                await send(ws, {"id": "k", "query": "keyed"})
                assert (await receive(ws))["type"] == "result"


class TestLiveFeed:
    async def test_subscribers_see_handled_events_and_their_replies(self) -> None:
        """An event handled on the ingress reaches the feed, followed by its reply."""
        async with function_socket() as (_, address), socket(address) as ws:
            await send(ws, {"type": "subscribe", "types": []})
            assert await receive(ws) == {"type": "subscribed", "types": []}
            async with httpx.AsyncClient(base_url=f"http://{address}") as client:
                headers = binary_headers(id="feed-1")
                response = await client.post("/", headers=headers, content=dumps(query("fed")))
            assert response.status_code == 200
            request, reply = await answers(ws, 2)
        assert request["type"] == "event"
        assert (request["event"]["type"], request["event"]["id"]) == (QUERY, "feed-1")
        assert request["event"]["data"] == {"query": "fed"}
        assert reply["event"]["type"] == RESPONSE
        assert reply["event"]["data"]["result"]["message"] == "Processed query: fed"

    async def test_a_subscription_filters_by_type(self) -> None:
        """Subscribed to replies only, the request event is not sent."""
        async with function_socket() as (_, address), socket(address) as ws:
            await send(ws, {"type": "subscribe", "types": [RESPONSE]})
            await receive(ws)
            async with httpx.AsyncClient(base_url=f"http://{address}") as client:
                await client.post("/", headers=binary_headers(), content=dumps(query()))
            event = await receive(ws)
            assert event["event"]["type"] == RESPONSE
            await send(ws, {"type": "ping"})
            assert (await receive(ws))["type"] == "pong"  # nothing else was queued before it

    async def test_unsubscribe_stops_the_feed(self) -> None:
        """After unsubscribing, events are no longer sent and the feed has no subscriber."""
        async with function_socket() as (app, address), socket(address) as ws:
            await send(ws, {"type": "subscribe", "types": []})
            await receive(ws)
            assert app.state.runtime.feed.subscribers == 1
            await send(ws, {"type": "unsubscribe"})
            assert await receive(ws) == {"type": "unsubscribed", "reason": "asked"}
            assert app.state.runtime.feed.subscribers == 0

    async def test_subscribing_to_an_unknown_type_is_an_error(self) -> None:
        """Only catalogue types can be subscribed to; the error lists them."""
        async with function_socket() as (_, address), socket(address) as ws:
            await send(ws, {"type": "subscribe", "types": ["com.example.nope"]})
            message = await receive(ws)
        assert message["error"]["status"] == 400
        assert QUERY in message["error"]["accepted_types"]

    async def test_closing_the_socket_ends_its_subscription(self) -> None:
        """A closed socket leaves no subscriber behind."""
        async with function_socket() as (app, address):
            async with socket(address) as ws:
                await send(ws, {"type": "subscribe", "types": []})
                await receive(ws)
            await until(lambda: app.state.runtime.feed.subscribers == 0)
            assert app.state.runtime.feed.subscribers == 0


class TestProgressCapableHandlers:
    def test_the_handler_form_is_recognised(self) -> None:
        """Plain, callback (a `progress` parameter) and generator handlers are told apart."""

        async def plain(request: Question) -> Answer:
            return answer(request)

        assert [handler_kind(h) for h in (plain, with_callback, streaming)] == [
            "plain",
            "callback",
            "generator",
        ]

    async def test_the_facade_ignores_progress_and_returns_the_result(self) -> None:
        """POST /api/v1/query with a streaming handler answers just the final result."""
        from tests.helpers.support import make_app

        app = make_app(suite_settings(), registry=registry_with(streaming))
        async with app_client(app) as client:
            response = await client.post("/api/v1/query", json=query("facade"))
        assert response.json()["result"] == {"message": "Processed query: facade"}

    async def test_the_ingress_replies_with_a_streaming_handlers_result(self) -> None:
        """A CloudEvent handled by a generator handler gets the final result as its reply."""
        from tests.helpers.support import make_app

        app = make_app(suite_settings(), registry=registry_with(streaming))
        async with app_client(app) as client:
            response = await client.post("/", headers=binary_headers(), content=dumps(query("ce")))
        assert response.status_code == 200
        assert response.json()["result"] == {"message": "Processed query: ce"}

    async def test_a_generator_without_a_result_answers_null(self) -> None:
        """A generator that yields no reply model has nothing to say: `data` is null."""

        async def silent(_: Question) -> AsyncIterator[Any]:
            yield "working"

        async with function_socket(registry_with(silent)) as (_, address), socket(address) as ws:
            await send(ws, {"id": "n", "query": "q"})
            progress, result = await answers(ws, 2)
        assert progress["data"] == "working"
        assert result == {"id": "n", "type": "result", "data": None}


async def test_the_asyncapi_document_describes_the_protocol() -> None:
    """/api/v1/asyncapi.json lists every message, with the catalogue's query schema."""
    from tests.helpers.support import make_app

    async with app_client(make_app(suite_settings())) as client:
        document = (await client.get("/api/v1/asyncapi.json")).json()
    assert document["asyncapi"].startswith("3.")
    channel = document["channels"]["ws"]
    assert channel["address"] == "/api/v1/ws"
    assert set(channel["messages"]) >= {"query", "progress", "result", "error", "event"}
    query_schema = channel["messages"]["query"]["payload"]
    assert {"id", "query", "parameters"} <= set(query_schema["properties"])
    assert "id" in query_schema["required"]


async def test_with_k_sink_answers_are_published_as_response_events(tmp_path: Path) -> None:
    """Like the facade's, a WebSocket answer is also published to K_SINK."""
    received: list[dict[str, str]] = []
    arrived = asyncio.Event()

    async def sink(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        received.append({k.decode(): v.decode() for k, v in scope["headers"]})
        arrived.set()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with (
        serving(sink) as sink_address,
        function_socket(k_sink=f"http://{sink_address}/", data_dir=tmp_path) as (_, address),
        socket(address) as ws,
    ):
        await send(ws, {"id": "published", "query": "to the sink"})
        assert (await receive(ws))["type"] == "result"
        await asyncio.wait_for(arrived.wait(), 5)
    assert received[0]["ce-type"] == RESPONSE
