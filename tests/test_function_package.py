"""The `function` package: the contract Knative func's Python scaffolding serves."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from starlette.types import Message, Receive, Scope, Send

import function
from function import Function
from tests.support import QUERY, RESPONSE, binary_headers, dumps, query, test_settings


async def started(fn: Function) -> Function:
    """`fn` after func's start-up: start(cfg) from inside the loop, then wait for readiness."""
    fn.start({})
    for _ in range(200):
        if fn.ready()[0]:
            return fn
        await asyncio.sleep(0.01)
    pytest.fail(f"the function never became ready: {fn.ready()}")


class CloudEventMiddleware:
    """What func-python's cloudevent middleware does before `handle`: body read, event decoded."""

    def __init__(self, fn: Function) -> None:
        self.fn = fn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        scope["event"] = from_http_event(HTTPMessage(headers=headers, body=body))
        await self.fn.handle(scope, receive, EventSender(send))


class EventSender:
    """func-python's CloudEventSender shape: calling it sends an event; `.http` is raw ASGI."""

    def __init__(self, send: Send) -> None:
        self.http = send

    async def __call__(self, message: Message) -> None:
        raise AssertionError("the app must send raw ASGI messages through .http")


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://function")


def test_new_returns_a_function_with_the_whole_contract() -> None:
    """`function.new()` gives an instance with handle, start, stop, alive and ready."""
    fn = function.new()
    for name in ("handle", "start", "stop", "alive", "ready"):
        assert callable(getattr(fn, name))


async def test_handle_serves_the_ingress_with_a_reply_event() -> None:
    """A binary-mode event through `handle` gets the reply event, as with `python -m eventfn`."""
    fn = await started(Function(test_settings()))
    try:
        async with client(fn.handle) as http:
            response = await http.post("/", headers=binary_headers(), content=dumps(query()))
        assert response.status_code == httpx.codes.OK
        assert response.headers["ce-type"] == RESPONSE
    finally:
        await fn.aclose()


async def test_an_event_decoded_by_funcs_cloudevent_middleware_is_handled() -> None:
    """With `invoke: cloudevent` the consumed body is rebuilt from the decoded event."""
    fn = await started(Function(test_settings()))
    try:
        async with client(CloudEventMiddleware(fn)) as http:
            headers = binary_headers(
                type=QUERY, traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"
            )
            response = await http.post("/", headers=headers, content=dumps(query("Hi")))
        assert response.status_code == httpx.codes.OK
        assert response.json()["data"]["result"]["message"].endswith("Hi")
    finally:
        await fn.aclose()


async def test_readiness_follows_the_lifespan() -> None:
    """Not ready before start, ready after it, draining after stop; alive throughout."""
    fn = Function(test_settings())
    assert fn.ready() == (False, "starting")
    await started(fn)
    assert fn.alive() == (True, "alive")
    await fn.aclose()
    assert fn.ready() == (False, "draining")
    assert fn.alive() == (True, "alive")
