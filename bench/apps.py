"""The FastAPI servers the function is measured against, each an ASGI app for uvicorn.

* `tutorial`: the receiver most tutorials show: FastAPI + the cloudevents SDK, per request. It
  answers the function's reply type with that type's example (`bench/target.py`), as bare ASGI
  does, or 202 for a type without a reply.
* `hello`: FastAPI's hello world, the yardstick for cold start and memory.

The bare ASGI app lives in `bench/bare.py`, so that it imports nothing of FastAPI.
Run one with `python -m uvicorn bench.apps:tutorial --loop uvloop --http httptools`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from cloudevents.v1.conversion import to_binary
from cloudevents.v1.http import CloudEvent, from_http
from fastapi import FastAPI, Request, Response

from bench.target import reply_from_env

tutorial = FastAPI()


@functools.cache
def _reply() -> tuple[str | None, Any]:
    reply_type, body = reply_from_env()
    return reply_type, json.loads(body) if body else None


@tutorial.post("/")
async def receive_event(request: Request) -> Response:
    """The tutorial receiver: parse with the SDK, answer a binary-mode reply event."""
    from_http(dict(request.headers), await request.body())  # parsed and validated, per request
    reply_type, data = _reply()
    if reply_type is None:
        return Response(status_code=202)
    reply = CloudEvent({"type": reply_type, "source": "/bench"}, data)
    headers, body = to_binary(reply)
    return Response(body, headers=headers, media_type="application/json")


hello = FastAPI()


@hello.get("/")
async def hello_world() -> dict[str, str]:
    """FastAPI's hello world."""
    return {"message": "Hello World"}
