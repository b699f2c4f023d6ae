"""The limit of the Python stack: reads the body, answers a fixed binary-mode reply.

No framework, no parsing: what uvicorn (httptools, uvloop) costs per request and nothing else.
The reply is the one the function gives the same event (`bench/target.py`): its reply type with
that type's example, or 202 without a body for a type without a reply, so the bench compares
servers answering the same shape. The bench passes it in the environment; imported without it
(the tests, the instruction counter), the app resolves it once, at its first request.
Run it with `python -m uvicorn bench.bare:app --loop uvloop --http httptools`.
"""

from __future__ import annotations

from typing import Any

_REPLY: list[tuple[int, list[tuple[bytes, bytes]], bytes]] = []


def _reply() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    from bench.target import reply_from_env

    reply_type, body = reply_from_env()
    if reply_type is None:
        return 202, [(b"content-length", b"0")], b""
    headers = [
        (b"ce-specversion", b"1.0"),
        (b"ce-id", b"6b1c1d3e-2f4a-5b6c-8d9e-0f1a2b3c4d5e"),
        (b"ce-source", b"/bench"),
        (b"ce-type", reply_type.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return 200, headers, body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body, answer the same binary-mode reply every time."""
    if scope["type"] == "lifespan":
        while True:
            if (await receive())["type"] == "lifespan.startup":
                _REPLY[:] = _REPLY or [_reply()]
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if not _REPLY:
        _REPLY.append(_reply())
    status, headers, body = _REPLY[0]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
