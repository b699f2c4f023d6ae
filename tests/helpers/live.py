"""Helpers for WebSocket tests: a real uvicorn serving an app in the test's own event loop.

Serving in the test's loop (instead of a subprocess) keeps the app's runtime reachable, so a test
can start the drain (`runtime.drain()`) or look at the feed, while the socket is as real as in
production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import uvicorn
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection, connect

from eventfn.app import FunctionApp
from eventfn.dispatch.registry import Registry
from eventfn.server.serve import server_config
from tests.functions import Answer, Question
from tests.helpers.support import free_port, make_app, suite_settings


class StartedServer(uvicorn.Server):
    """uvicorn's server, saying when it has started: `up` is set once start-up is over (the
    app's lifespan has started and the socket accepts), where uvicorn offers a `started` flag
    and no event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, *args: Any, **kwargs: Any) -> None:
        await super().startup(*args, **kwargs)
        self.up.set()


@contextlib.asynccontextmanager
async def serving(app: Any, lifespan: str = "on") -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yields its `host:port` once the app has
    started (a test may then act on its runtime before any request: begin the drain)."""
    port = free_port()
    # As production serves it (eventfn.server.serve), on a loopback port of its own.
    settings = app.state.runtime.settings if isinstance(app, FunctionApp) else suite_settings()
    config = server_config(app, settings, host="127.0.0.1", port=port, lifespan=lifespan)
    server = StartedServer(config)
    task = asyncio.create_task(server.serve())
    up = asyncio.create_task(server.up.wait())
    try:
        async with asyncio.timeout(10):
            await asyncio.wait({task, up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        up.cancel()
    if not server.up.is_set():  # the serving task ended first: its error, or this one
        await task
        raise RuntimeError("server stopped during start-up")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def function_socket(
    registry: Registry | None = None, **overrides: Any
) -> AsyncIterator[tuple[FunctionApp, str]]:
    """A served function built with test settings; yields the app and its `host:port`."""
    app = make_app(suite_settings(**overrides), registry=registry)
    async with serving(app) as address:
        yield app, address


def socket(address: str, **kwargs: Any) -> Any:
    """A `websockets` connection to the function's `/api/v1/ws` (an async context manager)."""
    return connect(f"ws://{address}/api/v1/ws", open_timeout=5, **kwargs)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(orjson.dumps(message).decode())


async def receive(ws: ClientConnection, wait: float = 5.0) -> dict[str, Any]:
    """The next message, parsed."""
    message: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def answers(ws: ClientConnection, count: int, wait: float = 5.0) -> list[dict[str, Any]]:
    """The next `count` messages."""
    return [await receive(ws, wait) for _ in range(count)]


def answer(request: Question) -> Answer:
    return Answer(result={"message": f"Processed query: {request.query}"})


def gated_handler() -> tuple[asyncio.Event, Callable[[Question], Any]]:
    """An `ASK` handler held until the returned event is set, and that event."""
    release = asyncio.Event()

    async def gated(request: Question) -> Answer:
        await release.wait()
        return answer(request)

    return release, gated


class Step(BaseModel):
    """A progress item as a model (handlers may report models or plain JSON values)."""

    step: int
