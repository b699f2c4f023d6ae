"""The limit of the Python stack: reads the body, answers a fixed binary-mode reply.

No framework, no parsing: what uvicorn (httptools, uvloop) costs per request and nothing else.
Run it with `python -m uvicorn bench.bare:app --loop uvloop --http httptools`.
"""

from __future__ import annotations

from typing import Any

_REPLY_HEADERS = [
    (b"ce-specversion", b"1.0"),
    (b"ce-id", b"6b1c1d3e-2f4a-5b6c-8d9e-0f1a2b3c4d5e"),
    (b"ce-source", b"/bench"),
    (b"ce-type", b"com.example.query.response"),
    (b"content-type", b"application/json"),
]
_REPLY_BODY = b'{"result":{"message":"Processed query: bench"}}'
_REPLY_HEADERS.append((b"content-length", str(len(_REPLY_BODY)).encode()))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body, answer the same binary-mode reply every time."""
    if scope["type"] == "lifespan":
        while True:
            if (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _REPLY_HEADERS})
    await send({"type": "http.response.body", "body": _REPLY_BODY})
