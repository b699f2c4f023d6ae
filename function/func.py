"""The Knative func contract, wrapped around the same app `python -m eventfn` serves.

func's Python scaffolding for `invoke: http` (func.yaml) runs `func_python.http.serve(new)`:
func-python owns the server (hypercorn), answers `/health/liveness` and `/health/readiness`
itself from `alive()`/`ready()`, calls `start(cfg)`/`stop()` from its ASGI lifespan, and hands
every other request, untouched, to `handle(scope, receive, send)`. Here `handle` is the whole
app (the ingress in every mode, the dead-letter sink, the facade, its WebSocket, metrics), so
each door answers as under `python -m eventfn`. What func-python does differently is in
docs/deploy/func.md; tests/system/test_func_host_builder.py serves the function as func builds it.

`invoke: cloudevent` is not supported: func-python's CloudEvents middleware refuses everything
that is not a CloudEvent (the facade, `/metrics`, the plain JSON `POST /`) and re-encodes
replies in structured mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from typing import Any

from eventfn import Registry, Settings, create_app, load_registry, readiness


class Function:
    """One function instance: func creates it once per process through `new()`."""

    def __init__(self, settings: Settings | None = None, registry: Registry | None = None) -> None:
        # The handlers are the Registry FUNCTION_REGISTRY names, as for `python -m eventfn`.
        # Building the app does no I/O; stores open in the lifespan that `start` runs.
        settings = settings or Settings()
        if registry is None:
            registry = load_registry(settings.function_registry)
        self.app = create_app(settings, registry)
        self.runtime = self.app.state.runtime
        self._lifespan: asyncio.Task[None] | None = None

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one HTTP request or WebSocket with the function's app."""
        await self.app(scope, receive, send)

    def start(self, cfg: Mapping[str, str]) -> None:
        """Start the app's lifespan (stores, publisher, redeliverer...) beside func's server.

        func calls this synchronously from inside its running event loop, so the lifespan runs
        as a task there; readiness turns true once it has started. `cfg` is a copy of the
        process environment, the same one `Settings()` read when the instance was built.
        """
        del cfg
        loop = asyncio.get_running_loop()
        self._lifespan = loop.create_task(self._run(), name="function-lifespan")

    async def _run(self) -> None:
        """The app's lifespan: open until this task is cancelled, then closed to the end.

        func-python's `stop()` cannot be awaited, and its server returns right after calling
        it; `asyncio.run` then cancels every task left, once, and waits for them. So the close
        starts on that cancellation, in a task of its own created after it, which is never
        cancelled: the publisher's flush and the stores' close run to the end before the
        process exits (`aclose` does the same for callers that own the loop).
        """
        context = self.app.lifespan_context()
        await context.__aenter__()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            closing = asyncio.create_task(context.__aexit__(None, None, None))
            while not closing.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(closing)
            closing.result()
            raise

    def stop(self) -> None:
        """Begin the drain: readiness turns false and new requests get 503 (retried)."""
        self.runtime.begin_drain()

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
        """Stop, then close the lifespan and wait for it (tests, callers that own the loop)."""
        self.stop()
        task = self._lifespan
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def new() -> Function:
    """func's factory: the only name its scaffolding needs."""
    _let_websockets_through()
    return Function()


def _let_websockets_through() -> None:
    """Let func-python hand WebSocket connections to `handle` as it hands HTTP requests.

    func-python 0.8 (`func_python.http.ASGIApplication.__call__`) answers every ASGI scope
    that is not HTTP with a 400 before calling `handle`, so the facade's WebSocket could not
    open under func, although its server (hypercorn) speaks WebSocket. Only that check is
    bypassed, for WebSocket scopes; lifespan and HTTP stay func-python's. Written by hand
    because func-python has no option for it; the host-builder test opens a WebSocket through
    it, so a func-python that changes this fails there.
    """
    http = sys.modules.get("func_python.http")
    if http is None:  # not served by func-python's HTTP scaffolding: nothing to let through
        return
    application: Any = http.ASGIApplication
    if getattr(application, "websockets_to_handle", False):
        return
    serve_http = application.__call__

    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self.f.handle(scope, receive, send)
            return
        await serve_http(self, scope, receive, send)

    application.__call__ = __call__
    application.websockets_to_handle = True
