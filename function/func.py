"""The Knative func contract, wrapped around the same FastAPI app `python -m eventfn` serves.

func's Python scaffolding (func-python's middleware) owns the server: it answers the health paths
itself from `alive()`/`ready()`, calls `start(cfg)`/`stop()` from its ASGI lifespan, and hands
every other request to `handle(scope, receive, send)`. Here `handle` is the whole app (ingress,
dead-letter sink, facade, metrics), `start`/`stop` drive the app's own lifespan, and the health
answers come from its runtime, so both ways of running the function behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from eventfn.app import create_app
from eventfn.core.config import Settings
from eventfn.ingress.probes import readiness

# Headers describing the body func's CloudEvents middleware already consumed and decoded.
_BODY_HEADERS = frozenset({b"content-type", b"content-length", b"transfer-encoding"})


class Function:
    """One function instance: func creates it once per process through `new()`."""

    def __init__(self, settings: Settings | None = None) -> None:
        # Building the app does no I/O; stores open in the lifespan that `start` runs.
        self.app = create_app(settings or Settings())
        self.runtime = self.app.state.runtime
        self._stopping: asyncio.Event | None = None
        self._lifespan: asyncio.Task[None] | None = None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request with the FastAPI app."""
        event = scope.get("event")
        if event is not None:
            # `invoke: cloudevent`: func's middleware read the body and decoded one event into
            # the scope. Hand the app that event re-encoded (structured mode) so the strict
            # ingress validates it exactly as on the `python -m eventfn` path.
            scope, receive = _reencoded(scope, event, receive)
        # func's CloudEventSender wraps the raw ASGI `send` as `.http`; plain `send` otherwise.
        raw_send: Send = getattr(send, "http", send)
        await self.app(scope, receive, raw_send)

    def start(self, cfg: Mapping[str, str]) -> None:
        """Start the app's lifespan (stores, publisher...) beside func's server.

        func calls this synchronously from inside its running event loop, so the lifespan runs as
        a task there; readiness turns true once it has started. `cfg` is a copy of the process
        environment, the same one `Settings()` read when the instance was built.
        """
        del cfg
        self._stopping = asyncio.Event()
        self._lifespan = asyncio.get_running_loop().create_task(self._run(self._stopping))

    async def _run(self, stopping: asyncio.Event) -> None:
        async with self.app.lifespan_context():
            await stopping.wait()

    def stop(self) -> None:
        """Begin the drain: readiness turns false and the lifespan closes what it opened."""
        if self._stopping is not None:
            self._stopping.set()

    def alive(self) -> tuple[bool, str]:
        """False once the lifespan died of an error (the pod should be restarted)."""
        task = self._lifespan
        if task is not None and task.done() and not task.cancelled() and task.exception():
            return False, f"lifespan failed: {type(task.exception()).__name__}"
        return True, "alive"

    def ready(self) -> tuple[bool, str]:
        """True between a completed start-up and the beginning of the drain."""
        status, body = readiness(self.runtime)
        return status == 200, body["status"]

    async def aclose(self) -> None:
        """Stop and wait for the lifespan to finish (tests, and callers that can await)."""
        self.stop()
        if self._lifespan is not None:
            with contextlib.suppress(Exception):
                await self._lifespan


def new() -> Function:
    """func's factory: the only name its scaffolding needs."""
    return Function()


def _reencoded(scope: Scope, event: Any, receive: Receive) -> tuple[Scope, Receive]:
    """The request again, carrying `event` as a structured-mode body; other headers kept."""
    from cloudevents.core.bindings.http import to_structured_event

    message = to_structured_event(event)
    body = message.body
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _BODY_HEADERS]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in message.headers.items()
    ]
    headers.append((b"content-length", str(len(body)).encode()))
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # the client's disconnect, if it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return {**scope, "headers": headers}, replay
