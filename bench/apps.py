"""The FastAPI servers the function is measured against, each an ASGI app for uvicorn.

* `tutorial`: the receiver most tutorials show: FastAPI + the cloudevents SDK, per request.
* `hello`: FastAPI's hello world, the yardstick for cold start and memory.

The bare ASGI app lives in `bench/bare.py`, so that it imports nothing of FastAPI.
Run one with `python -m uvicorn bench.apps:tutorial --loop uvloop --http httptools`.
"""

from __future__ import annotations

from cloudevents.v1.conversion import to_binary
from cloudevents.v1.http import CloudEvent, from_http
from fastapi import FastAPI, Request, Response

tutorial = FastAPI()


@tutorial.post("/")
async def receive_event(request: Request) -> Response:
    """The tutorial receiver: parse with the SDK, answer a binary-mode reply event."""
    event = from_http(dict(request.headers), await request.body())
    reply = CloudEvent(
        {"type": "com.example.query.response", "source": "/bench"},
        {"result": {"message": f"Processed query: {event.data['query']}"}},
    )
    headers, body = to_binary(reply)
    return Response(body, headers=headers, media_type="application/json")


hello = FastAPI()


@hello.get("/")
async def hello_world() -> dict[str, str]:
    """FastAPI's hello world."""
    return {"message": "Hello World"}
