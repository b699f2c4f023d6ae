"""One pass over the request's headers: the CloudEvents ones, the media type, `Prefer`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from eventfn.binding._event import _CACHED, _event_format, is_json
from eventfn.core.errors import UnsupportedMediaType

# What each request header is to the ingress, by its name as received: a `ce-` header's
# attribute name (lowercased, not yet validated), or one of these. Header names repeat from
# request to request, so the lowercasing and slicing happen once per name (bounded: names are
# input). One dict lookup per header is what one pass over them costs.
_OTHER: Final = 0
_CONTENT_TYPE: Final = 1
_CONTENT_LENGTH: Final = 2
_TRACEPARENT: Final = 3
_TRACESTATE: Final = 4
_PREFER: Final = 5
_FIXED_ROLES: Final = {
    b"content-type": _CONTENT_TYPE,
    b"content-length": _CONTENT_LENGTH,
    b"traceparent": _TRACEPARENT,
    b"tracestate": _TRACESTATE,
    b"prefer": _PREFER,
}
_ROLES: dict[bytes, str | int] = {}


def _role(raw_name: bytes) -> str | int:
    name = raw_name.lower()
    role: str | int = (
        name[3:].decode("latin-1") if name[:3] == b"ce-" else _FIXED_ROLES.get(name, _OTHER)
    )
    if len(_ROLES) < 4 * _CACHED:
        _ROLES[raw_name] = role
    return role


@dataclass(slots=True)  # not frozen: see Event
class Head:
    """What the ingress reads from the request headers, found in one pass (`read_head`)."""

    ce: list[tuple[str, bytes]]  # the `ce-` headers: attribute name (lowercased) and raw value
    content_type: str | None = None  # the first Content-Type
    content_length: bytes | None = None  # the first Content-Length, as sent
    traceparent: str | None = None  # W3C trace context headers (the last of each)
    tracestate: str | None = None
    prefer_reply: bool = False  # `Prefer: reply` (RFC 7240): the sender processes a reply event


# Prefer values already read: Brokers and Channels send the same one on every delivery.
_PREFERS: dict[bytes, bool] = {b"reply": True}


def prefers_reply(value: bytes) -> bool:
    """Whether a `Prefer` header value holds the `reply` preference (RFC 7240: a comma-separated
    list of preferences, each a token with optional `=value` and `;` parameters, any case)."""
    known = _PREFERS.get(value)
    if known is None:
        names = (p.split(b";", 1)[0].split(b"=", 1)[0].strip().lower() for p in value.split(b","))
        known = b"reply" in names
        if len(_PREFERS) < _CACHED:
            _PREFERS[value] = known
    return known


def read_head(headers: Iterable[tuple[bytes, bytes]]) -> Head:
    """One pass over the headers: the `ce-` ones, Content-Type, Content-Length and the trace."""
    head = Head([])
    ce = head.ce
    for raw_name, value in headers:
        role = _ROLES.get(raw_name)
        if role is None:
            role = _role(raw_name)
        if role == _OTHER:
            continue
        if role.__class__ is str:
            ce.append((role, value))  # a str role is a ce- attribute name
        elif role == _CONTENT_TYPE:
            if head.content_type is None:
                head.content_type = value.decode("latin-1")
        elif role == _CONTENT_LENGTH:
            if head.content_length is None:
                head.content_length = value
        elif role == _TRACEPARENT:
            head.traceparent = value.decode("latin-1")
        elif role == _TRACESTATE:
            head.tracestate = value.decode("latin-1")
        elif not head.prefer_reply:
            head.prefer_reply = prefers_reply(value)
    return head


def is_plain_json(head: Head) -> bool:
    """Whether a request is plain JSON: no `ce-` header, and a JSON Content-Type that is not one of
    the CloudEvents formats. Such a request is not a CloudEvent and does not claim to be one; all
    else is held to the binding (a binary event without its `ce-` headers is a 400)."""
    content_type = head.content_type
    if head.ce or content_type is None or not is_json(content_type):
        return False
    try:
        return _event_format(content_type) is None
    except UnsupportedMediaType:  # a CloudEvents media type this function does not read
        return False
