"""ASGI plumbing shared by the fast paths: types, reading a bounded body, writing a response.

Written against the ASGI spec directly (no Starlette request or response objects): the ingress,
the dead-letter sink and the probes answer before any framework is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventfn.core.errors import MalformedEvent, PayloadTooLarge

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
else:  # only the type checker needs Starlette's names; at run time nothing is imported
    ASGIApp = Message = Receive = Scope = Send = Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]


class ClientDisconnected(Exception):
    """The client went away before the body was read; nothing to answer."""


def declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The Content-Length of a request (0 when absent), or MalformedEvent if not a number."""
    for name, value in headers:
        if name == b"content-length":
            return content_length(value)
    return 0


def content_length(value: bytes | None) -> int:
    """A Content-Length header's value (0 when absent), or MalformedEvent if not a number."""
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        raise MalformedEvent("Content-Length is not a number") from None


async def read_body(receive: Receive, limit: int, length: int) -> bytes:
    """The request body of declared `length`, or PayloadTooLarge once it exceeds `limit`."""
    if length > limit:
        raise PayloadTooLarge(
            f"the body has {length} bytes; at most {limit} are accepted", limit=limit
        )
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes", limit=limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes", limit=limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Write one complete HTTP response."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
