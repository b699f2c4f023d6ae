"""The `function` package: the contract Knative func's Python scaffolding serves.

In process, the contract as func-python calls it; tests/system/test_func_host_builder.py serves the
function as func's host builder builds it.
"""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any

import httpx
import pytest

import function
from eventfn import RegistryNotFound
from eventfn.testing import isolated_settings
from function import Function
from handler.functions import registry as example_registry
from tests.helpers.loop_time import one_turn
from tests.helpers.support import binary_headers, dumps, until

SPEC = example_registry.catalogue.default
assert SPEC is not None
assert SPEC.reply is not None
PAYLOAD: dict[str, Any] = SPEC.json_schema()["examples"][0]


async def started(fn: Function) -> Function:
    """`fn` after func's start-up: start(cfg) from inside the loop, then wait for readiness."""
    fn.start({})
    # The lifespan runs in a task of its own and offers no event to await here.
    await until(lambda: fn.ready()[0], what=f"the function never became ready: {fn.ready()}")
    return fn


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://function")


class Recorder:
    """A component whose stop takes several turns of the loop: it shows the close ran whole."""

    def __init__(self) -> None:
        self.stopped = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for _ in range(5):  # load-bearing: a stop that takes a few turns of the loop
            await one_turn()
        self.stopped = True


def test_new_returns_a_function_with_the_whole_contract() -> None:
    """`function.new()` gives an instance with handle, start, stop, alive and ready."""
    fn = function.new()
    for name in ("handle", "start", "stop", "alive", "ready"):
        assert callable(getattr(fn, name))


def test_the_handlers_are_the_registry_function_registry_names() -> None:
    """Without a registry, the function serves the one FUNCTION_REGISTRY names."""
    fn = Function(isolated_settings())
    assert fn.runtime.catalogue is example_registry.catalogue


def test_a_function_registry_that_does_not_resolve_fails_naming_it() -> None:
    """A FUNCTION_REGISTRY naming no Registry fails at construction, the string in the error."""
    with pytest.raises(RegistryNotFound, match=r"tests\.nowhere:registry"):
        Function(isolated_settings(function_registry="tests.nowhere:registry"))


async def test_handle_serves_the_ingress_with_a_reply_event() -> None:
    """A binary-mode event through `handle` gets the reply event, as with `python -m eventfn`."""
    fn = await started(Function(isolated_settings()))
    try:
        async with client(fn.handle) as http:
            headers = binary_headers(type=SPEC.type)
            response = await http.post("/", headers=headers, content=dumps(PAYLOAD))
        assert response.status_code == httpx.codes.OK
        assert response.headers["ce-type"] == SPEC.reply.type
    finally:
        await fn.aclose()


async def test_handle_serves_the_facade() -> None:
    """The facade's synchronous route is served through `handle` too."""
    fn = await started(Function(isolated_settings()))
    try:
        async with client(fn.handle) as http:
            response = await http.post(SPEC.facade_path, json=PAYLOAD)
        assert response.status_code == httpx.codes.OK
        SPEC.reply.model.model_validate(response.json())
    finally:
        await fn.aclose()


async def test_readiness_follows_the_lifespan() -> None:
    """Not ready before start, ready after it, draining after stop; alive throughout."""
    fn = Function(isolated_settings())
    assert fn.ready() == (False, "starting")
    await started(fn)
    assert fn.alive() == (True, "alive")
    await fn.aclose()
    assert fn.ready() == (False, "draining")
    assert fn.alive() == (True, "alive")


async def test_stop_refuses_new_work_with_a_retryable_503() -> None:
    """After `stop()` readiness is false and a new event gets 503: the broker retries it."""
    fn = await started(Function(isolated_settings()))
    try:
        fn.stop()
        assert fn.ready() == (False, "draining")
        async with client(fn.handle) as http:
            headers = binary_headers(type=SPEC.type)
            response = await http.post("/", headers=headers, content=dumps(PAYLOAD))
        assert response.status_code == httpx.codes.SERVICE_UNAVAILABLE
    finally:
        await fn.aclose()


def test_the_lifespan_closes_whole_when_the_loop_ends_after_stop() -> None:
    """As under func-python: stop(), the server returns, asyncio.run cancels what is left; the
    lifespan's close still runs to its end."""
    fn = Function(isolated_settings())
    recorder = Recorder()

    async def serve_until_stop() -> None:
        await fn.runtime.attach(recorder)
        await started(fn)
        fn.stop()

    asyncio.run(serve_until_stop())
    assert recorder.stopped


def test_new_lets_func_pythons_server_hand_websockets_to_handle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """func-python 0.8 refuses non-HTTP scopes; `new()` lets WebSockets through to `handle`."""

    class ASGIApplication:
        """func-python's shape: HTTP to `f.handle`, any other scope refused."""

        def __init__(self, f: Any) -> None:
            self.f = f

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await send({"type": "refused"})
                return
            await self.f.handle(scope, receive, send)

    http = types.ModuleType("func_python.http")
    http.ASGIApplication = ASGIApplication  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "func_python.http", http)
    function.new()
    handled: list[str] = []
    sent: list[Any] = []

    class Handle:
        async def handle(self, scope: Any, receive: Any, send: Any) -> None:
            handled.append(scope["type"])

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {}

    app = ASGIApplication(Handle())
    asyncio.run(app({"type": "websocket"}, receive, send))
    asyncio.run(app({"type": "http"}, receive, send))
    assert handled == ["websocket", "http"]
    assert sent == []
