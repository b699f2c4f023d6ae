"""One WebSocket connection of `/api/v1/ws`: its reader, its writer and its query tasks.

A query runs as its own task, so several can be in flight on one socket; every answer carries
the query's `id`. One writer task owns the socket's sending side; what it has to send waits in a
queue bounded in messages and bytes (`flow.SendQueue`), and nothing ever waits for room in it:
progress beyond it is dropped, and a client whose queue is full of answers it does not read is
dropped itself (as the feed drops a lagging subscriber). The reader and the writer end together:
when the peer leaves, when a send fails, when the session is dropped, every task of the session
ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from fastapi import WebSocket
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from eventfn.core.errors import (
    ClientError,
    Conflict,
    FunctionError,
    PayloadTooLarge,
    SchemaViolation,
    TooManyRequests,
    TransientError,
    problem_response,
)
from eventfn.dispatch.dispatcher import validation_errors
from eventfn.dispatch.registry import Route
from eventfn.facade.guards import authenticate_websocket
from eventfn.facade.ws.flow import SEND_QUEUE_BYTES, SEND_QUEUE_ITEMS, SendQueue, TokenBucket
from eventfn.observability.feed import Subscription
from eventfn.observability.logs import get_logger
from eventfn.runtime import Runtime

INSTANCE = "/api/v1/ws"
GOING_AWAY = 1001
_MAX_ID = 200

log = get_logger("eventfn.facade.ws.session")


def dumps(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def error_message(ident: str | None, error: FunctionError) -> bytes:
    return dumps({"id": ident, "type": "error", "error": error.to_problem(INSTANCE)})


def to_json(item: Any) -> Any:
    """A progress item or result as something orjson writes (models keep their serialisers)."""
    if isinstance(item, BaseModel):
        return orjson.Fragment(item.__pydantic_serializer__.to_json(item))
    return item


def payload_of(message: dict[str, Any]) -> Any:
    """The payload a message carries: its `data`, or (the short form) its fields but `id`/`type`.

    `{"id": "1", "type": "query", "query": "..."}` and `{"id": "1", "type": "query", "data":
    {"query": "..."}}` ask the same; a message with `data` and other fields is read as the short
    form (a model with a field named `data`).
    """
    fields = {k: v for k, v in message.items() if k not in ("id", "type")}
    if fields.keys() == {"data"}:
        return fields["data"]
    return fields


class SessionSet(Protocol):
    """Where a session registers while open (`endpoint.Sessions`), and what it counts there."""

    active: set[Session]
    progress_dropped: int


class Session:
    """One WebSocket connection."""

    def __init__(self, websocket: WebSocket, runtime: Runtime, sessions: SessionSet) -> None:
        self.ws = websocket
        self.runtime = runtime
        self.sessions = sessions
        settings = runtime.settings
        self._max_bytes = settings.ws_max_message_bytes
        self._max_in_flight = settings.ws_max_in_flight
        self._bucket = TokenBucket(settings.ws_rate_per_second, settings.ws_rate_burst)
        self._out = SendQueue(SEND_QUEUE_ITEMS, SEND_QUEUE_BYTES, self._drop)
        self._tasks: tuple[asyncio.Task[None], ...] = ()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._subscription: Subscription | None = None
        self._forwarder: asyncio.Task[None] | None = None
        self._draining = False
        self.progress_dropped = 0
        # What a message's `type` may ask for: each consumed type by its short name or its type.
        routes = runtime.dispatcher.routes.values()
        self._asks = {
            n: r for r in routes for n in dict.fromkeys((r.spec.message_type, r.spec.type))
        }
        default = runtime.catalogue.default
        self._default = default.message_type if default is not None else None

    async def run(self) -> None:
        if not await self._authenticate(self.ws):
            return
        if self.runtime.draining:
            await self._deny(TransientError("the function is shutting down; connect again"))
            return
        await self.ws.accept()
        self.sessions.active.add(self)
        reader = asyncio.create_task(self._read(), name="ws-reader")
        writer = asyncio.create_task(self._write(), name="ws-writer")
        self._tasks = (reader, writer)
        try:
            # Either ending ends the session: the peer left (reader), a send failed or the close
            # went out (writer), or the session was dropped (both cancelled).
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.sessions.active.discard(self)
            self._unsubscribe()
            # The client is gone: work still in flight has nobody to answer to.
            tasks = [*self._in_flight.values(), reader, writer]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _drop(self) -> None:
        """The client leaves its answers unread: end the session (the server aborts the socket)."""
        if self in self.sessions.active:
            self.sessions.active.discard(self)  # counted closed from now on; logged once
            log.warning("ws_dropped_slow_client", queued_bytes_max=self._out.bytes_max)
        for task in self._tasks:
            task.cancel()

    async def drain(self, deadline: float | None = None) -> None:
        """Take no new queries, let those in flight answer, close with 1001: all by `deadline`.

        `deadline` is a loop time (default: the shutdown grace from now). A client that does
        not read its last answers or the close by then is dropped.
        """
        self._draining = True
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.runtime.settings.shutdown_grace_seconds
        pending = list(self._in_flight.values())
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
        await self._out.put((GOING_AWAY, "server shutting down"))
        if self._tasks and not self._tasks[1].done():
            await asyncio.wait({self._tasks[1]}, timeout=max(0.0, deadline - loop.time()))
        if self._tasks and not self._tasks[1].done():
            self._drop()

    # -- handshake -----------------------------------------------------------------------------

    async def _authenticate(self, websocket: WebSocket) -> bool:
        """The one place the handshake is authenticated, before `accept`."""
        try:
            await authenticate_websocket(websocket)
        except FunctionError as error:
            await self._deny(error)
            return False
        return True

    async def _deny(self, error: FunctionError) -> None:
        """Refuse the handshake with an HTTP problem response (1008 where the server can't)."""
        status, raw, body = problem_response(error, instance=INSTANCE)
        headers = {k.decode(): v.decode() for k, v in raw if k != b"content-length"}
        try:
            await self.ws.send_denial_response(Response(body, status, headers=headers))
        except RuntimeError:
            await self.ws.close(1008, error.title)

    # -- receiving -----------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            body: Any = None
            try:
                body = self._parse(message)
                await self._dispatch(body)
            except FunctionError as error:
                ident = body.get("id") if isinstance(body, dict) else None
                await self._out.put(error_message(ident if isinstance(ident, str) else None, error))

    def _parse(self, message: Mapping[str, Any]) -> Any:
        text = message.get("text")
        if text is None:
            raise ClientError("send JSON text messages; binary messages are not accepted")
        if len(text) * 4 > self._max_bytes and len(text.encode()) > self._max_bytes:
            raise PayloadTooLarge(
                f"messages are limited to {self._max_bytes} bytes", limit=self._max_bytes
            )
        if not self._bucket.take():
            raise TooManyRequests(
                f"more than {self._bucket.rate:g} messages per second; slow down",
            )
        try:
            body = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ClientError("the message is not valid JSON") from None
        if not isinstance(body, dict):
            raise ClientError("a message is a JSON object")
        return body

    async def _dispatch(self, body: dict[str, Any]) -> None:
        kind = body.get("type", self._default)
        if kind == "subscribe":
            await self._subscribe(body.get("types", []))
        elif kind == "unsubscribe":
            self._unsubscribe()
            await self._out.put(dumps({"type": "unsubscribed", "reason": "asked"}))
        elif kind == "ping":
            await self._out.put(dumps({"type": "pong", "id": body.get("id")}))
        elif isinstance(kind, str) and kind in self._asks:
            self._query(self._asks[kind], body)
        else:
            raise ClientError(
                f"unknown message type {kind!r}",
                accepted_types=[*self._asks, "subscribe", "unsubscribe", "ping"],
            )

    # -- queries -------------------------------------------------------------------------------

    def _query(self, route: Route, body: dict[str, Any]) -> None:
        """Start handling one message that asks for `route`'s type (a query, for the UI)."""
        ident = body.get("id")
        if not isinstance(ident, str) or not 0 < len(ident) <= _MAX_ID:
            raise ClientError(f"a query needs an `id`: a string of 1 to {_MAX_ID} characters")
        if self._draining:
            raise TransientError("the function is shutting down; ask again on a new connection")
        if ident in self._in_flight:
            raise Conflict(f"query {ident!r} is already in flight; ids must be unique")
        if len(self._in_flight) >= self._max_in_flight:
            raise TooManyRequests(f"at most {self._max_in_flight} queries may be in flight")
        try:
            payload = route.spec.model.model_validate(payload_of(body))
        except ValidationError as exc:
            raise SchemaViolation(
                f"the {route.spec.message_type} message does not match its schema",
                validation_errors(exc, prefix=""),
            ) from None
        self._in_flight[ident] = asyncio.create_task(self._answer(ident, route, payload))

    async def _answer(self, ident: str, route: Route, payload: BaseModel) -> None:
        def progress(item: Any) -> None:
            message = dumps({"id": ident, "type": "progress", "data": to_json(item)})
            try:
                self._out.put_nowait(message)
            except asyncio.QueueFull:  # the client reads too slowly: progress never waits
                self.progress_dropped += 1
                self.sessions.progress_dropped += 1  # outlives the socket, for /metrics

        # Client ids are only unique per socket: the request's identity is a fresh UUID.
        request_id = str(uuid.uuid4())
        try:
            result = await self.runtime.dispatcher.ask(
                route, payload, progress, request_id=request_id, origin=route.spec.facade_path
            )
            # Durable before the answer, like the facade's: an answer that cannot be kept is
            # not given (the client gets the 503 instead).
            await self._publish(route, result, request_id)
            message = dumps({"id": ident, "type": "result", "data": to_json(result)})
        except FunctionError as error:
            message = error_message(ident, error)
        except Exception:  # a bug of ours: the client still gets its one answer
            log.exception("ws_query_bug", id=ident)
            message = error_message(ident, FunctionError("the query failed unexpectedly"))
        finally:
            self._in_flight.pop(ident, None)
        await self._out.put(message)

    async def _publish(self, route: Route, result: BaseModel | None, request_id: str) -> None:
        """With K_SINK, the answer is published like the facade's (in the outbox before it is
        given, delivered in the background: the client never waits on the sink)."""
        publisher = self.runtime.publisher
        if publisher is not None and result is not None:
            event = self.runtime.dispatcher.replies.answer(
                route.spec, result, request_id, route.spec.facade_path
            )
            await publisher.enqueue(event)

    # -- the live feed -------------------------------------------------------------------------

    async def _subscribe(self, types: Any) -> None:
        feed = self.runtime.feed
        if feed is None:
            raise TransientError("the live feed is not available")
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise ClientError("`types` is a list of event type names (empty: every type)")
        known = sorted(self.runtime.catalogue)
        unknown = sorted(set(types) - set(known))
        if unknown:
            raise ClientError(f"unknown event types {unknown}", accepted_types=known)
        self._unsubscribe()
        self._subscription = feed.subscribe(types)
        await self._out.put(dumps({"type": "subscribed", "types": sorted(set(types))}))
        self._forwarder = asyncio.create_task(self._forward(self._subscription))

    def _unsubscribe(self) -> None:
        if self._subscription is not None and self.runtime.feed is not None:
            self.runtime.feed.unsubscribe(self._subscription)
        self._subscription = None
        if self._forwarder is not None:
            self._forwarder.cancel()
            self._forwarder = None

    async def _forward(self, subscription: Subscription) -> None:
        while True:
            message = await subscription.queue.get()
            if message is None:  # the feed dropped us: we fell too far behind
                self._subscription = self._forwarder = None
                await self._out.put(dumps({"type": "unsubscribed", "reason": "slow consumer"}))
                return
            await self._out.put(message)

    # -- sending -------------------------------------------------------------------------------

    async def _write(self) -> None:
        """The only task that sends on the socket; a close marker, or a failed send, ends it."""
        try:
            while True:
                item = await self._out.get()
                if isinstance(item, tuple):
                    await self.ws.close(*item)
                    return
                await self.ws.send_text(item.decode())
        except Exception as exc:  # the client vanished: `run` ends the reader too
            log.debug("ws_send_failed", error=type(exc).__name__)
