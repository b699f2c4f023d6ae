"""Liveness and readiness, at the paths Knative func probes.

Served at the ASGI entry like the ingress (`probes`): a probe must answer before anything else
is built, and must never be what makes the function import FastAPI. The facade has them as
routes too (`eventfn.facade.factory`), only to document them in OpenAPI; the entry answers first.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson

from eventfn.core.errors import MethodNotAllowed, problem_response
from eventfn.core.http import send_response

if TYPE_CHECKING:
    from eventfn.runtime import Runtime

LIVENESS = "/health/liveness"
READINESS = "/health/readiness"
_HEADERS = ((b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff"))


def liveness() -> tuple[int, dict[str, str]]:
    """200 while the process serves requests at all."""
    return 200, {"status": "alive"}


def readiness(runtime: Runtime) -> tuple[int, dict[str, str]]:
    """200 once start-up is done; 503 before that and again while shutting down."""
    if runtime.ready and not runtime.draining:
        return 200, {"status": "ready"}
    return 503, {"status": "draining" if runtime.draining else "starting"}


async def stores_usable(runtime: Runtime) -> bool:
    """Whether the stores can serve now: Redis (reachable, writable, right mode), or `DATA_DIR`.

    A replica whose Redis is down or unusable (a cluster node reached as a standalone server, a
    replica left read-only by a failover), or whose `DATA_DIR` cannot be created or written, is
    taken out of the Service's endpoints until it is back, rather than answering every delivery
    503. Whatever the check raises means "not usable": a probe never answers 500.
    """
    settings = runtime.settings
    try:
        async with asyncio.timeout(settings.redis_timeout_seconds):
            if not settings.redis_url:
                from eventfn.stores.sqlite import usable

                return await usable(settings.data_dir)
            return await runtime.dedupe.ping()
    except Exception:  # see the docstring
        return False


def unusable(runtime: Runtime) -> str:
    """The readiness status of stores that cannot serve: which of them it is."""
    return "redis-unavailable" if runtime.settings.redis_url else "data-dir-unavailable"


def probes(runtime: Runtime) -> dict[str, Any]:
    """The ASGI endpoints of both probes, by path: GET (and HEAD) only."""

    async def answer(status: int, body: dict[str, str], scope: Any, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            error = MethodNotAllowed(f"{scope['method']} is not allowed on a probe", allow="GET")
            await send_response(send, *problem_response(error, instance=scope["path"]))
            return
        data = orjson.dumps(body)
        headers = [*_HEADERS, (b"content-length", str(len(data)).encode())]
        await send_response(send, status, headers, b"" if scope["method"] == "HEAD" else data)

    async def liveness_probe(scope: Any, _receive: Any, send: Any) -> None:
        await answer(*liveness(), scope, send)

    async def readiness_probe(scope: Any, _receive: Any, send: Any) -> None:
        status, body = readiness(runtime)
        if status == 200 and not await stores_usable(runtime):
            status, body = 503, {"status": unusable(runtime)}
        elif status == 200 and runtime.publisher is not None and runtime.publisher.outbox_failing:
            # Events to publish cannot be kept: out of the endpoints for a moment, then back
            # (the next write-ahead tells whether the outbox writes again).
            status, body = 503, {"status": "outbox-unavailable"}
        await answer(status, body, scope, send)

    return {LIVENESS: liveness_probe, READINESS: readiness_probe}
