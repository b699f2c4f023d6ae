"""Replies: the reply event to a delivery, the answer event of a facade call, their ids and time.

A reply's id is deterministic per request (a redelivery is answered again with the same reply);
an answer's id is deterministic per answer (see `Replies.answer`). Both carry the request's
trace context and, for a request with a `correlationid`, a `replyid`.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from pydantic import BaseModel

from eventfn.binding import SPEC_V1, Event
from eventfn.core.clock import iso_now
from eventfn.core.errors import HandlerFailed
from eventfn.dispatch.catalogue import EventSpec
from eventfn.stores.records import event_key

# Extensions copied from a request to its reply: the distributed-tracing extension.
_TRACE_EXTENSIONS = ("traceparent", "tracestate")

# Reply ids are UUIDv5 of the request's source and id in this namespace: a redelivery of the
# same event gets the same reply id, whichever replica answers it.
REPLY_NAMESPACE = uuid.UUID("6f1f4d3e-8a53-5c39-9d0e-1f5b2b7c9a10")


_NAMESPACE_BYTES = REPLY_NAMESPACE.bytes


# The RFC 4122 variant bits (10xx) applied to the first hex digit of the clock sequence.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def reply_id(source: str, event_id: str) -> str:
    """The deterministic id of the reply to the event `source` + `event_id`.

    `uuid.uuid5` by hand (same string): SHA-1 of namespace and name, version 5 and the RFC 4122
    variant written into the hex digits; the UUID object costs more than the hash itself.
    """
    name = event_key(source, event_id).encode()
    h = hashlib.sha1(_NAMESPACE_BYTES + name).hexdigest()  # noqa: S324 - RFC 4122 v5
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def rfc3339_now() -> str:
    """The current UTC time as an RFC 3339 timestamp with milliseconds."""
    return iso_now()[:23] + "Z"  # the log timestamp (microseconds, formatted once a second)


class Replies:
    """Builds the reply and answer events of a function whose events come from `source`."""

    __slots__ = ("_source",)

    def __init__(self, source: str) -> None:
        self._source = source

    def to(self, request: Event, spec: EventSpec, result: BaseModel) -> Event:
        """The reply CloudEvent to `request` (of type `spec`) carrying `result`, made now."""
        data = result.__pydantic_serializer__.to_json(result)
        return self.event(request, spec, data, rfc3339_now())

    def event(self, request: Event, spec: EventSpec, data: bytes, time: str) -> Event:
        """The reply CloudEvent to `request` made at `time`, carrying the JSON `data`."""
        attributes: dict[str, Any] = {
            "specversion": SPEC_V1,
            "id": reply_id(request.source, request.id),
            "source": self._source,
            "type": reply_type(spec),
            "time": time,
            "datacontenttype": "application/json",
        }
        correlation = request.attributes.get("correlationid")
        if correlation is not None:
            attributes["replyid"] = correlation
        for name in _TRACE_EXTENSIONS:
            value = request.attributes.get(name)
            if value is not None:
                attributes[name] = value
        return Event(attributes, data)

    def answer(self, spec: EventSpec, result: BaseModel, request_id: str, source: str) -> Event:
        """The reply event of an answer given through the facade or the WebSocket.

        Built like the reply to a broker event of id `request_id` from `source` (the facade's
        route), with an id of its own: UUIDv5 of the source, `request_id` and the answer itself
        (its time and a digest of its data). A broker event's reply id must be deterministic
        per request (a redelivery is answered again, the same reply); a facade request is never
        deduplicated, so two requests sharing an X-Request-Id (a retried POST, a proxy reusing
        ids) are two answers, two events: with one id, the second replaced the first in the
        outbox. The id stays deterministic per answer: the outbox resends one answer under one id.
        """
        request = Event(
            {"specversion": SPEC_V1, "id": request_id, "source": source, "type": spec.type}
        )
        reply = self.to(request, spec, result)
        digest = hashlib.blake2b(reply.data or b"", digest_size=8).hexdigest()
        answer = f"{request_id}@{reply.attributes['time']}#{digest}"
        reply.attributes["id"] = reply_id(source, answer)
        return reply


def reply_type(spec: EventSpec) -> str:
    """The reply type of `spec`, whose handler produced a result (checked before this)."""
    reply = spec.reply
    if reply is None:  # pragma: no cover - `Dispatcher.call` refuses results of such types
        raise HandlerFailed(f"{spec.type} has no reply type")
    return reply.type
