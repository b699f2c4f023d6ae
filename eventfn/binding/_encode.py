"""Encoding: events out as binary-mode headers and body, structured JSON or a batch."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote

import orjson

from eventfn.binding._attributes import _FIELD_VALUE, _NAME
from eventfn.binding._event import _CACHED, NOTHING, Event, Unencodable, is_json

# Percent-encode space, double quote, percent and anything outside printable ASCII (3.1.3.2).
_HEADER_SAFE: Final = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
# `%` as a byte value: `37 in raw` is a memchr, while CPython 3.11's `b"%" in raw` first tries the
# operand as an int, raising and clearing a TypeError on every call.
_PERCENT: Final = ord("%")


def encode_header_value(value: Any) -> bytes:
    """Percent-encode an attribute value for a `ce-` header."""
    text = value if value.__class__ is str else _attribute_text(value)
    # Nothing to escape (the usual case): skip urllib's per-character work.
    if text.isascii() and text.isprintable() and not (" " in text or '"' in text or "%" in text):
        return text.encode("ascii")
    return quote(text, safe=_HEADER_SAFE).encode("ascii")


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Header names and the values that repeat from event to event (the spec version, source and
# type of replies), encoded once; bounded like the other caches of input.
_HEADER_NAMES: dict[str, bytes] = {}
_REPEATING = frozenset({"specversion", "source", "type"})
_HEADER_VALUES: dict[str, bytes] = {}
# Content types already encoded (bounded like the other caches of input).
_CONTENT_TYPES: dict[str, bytes] = {}


def _content_type(value: Any) -> bytes:
    """`datacontenttype` as a Content-Type value, or Unencodable (it is not percent-encoded)."""
    text = str(value)
    encoded = _CONTENT_TYPES.get(text)
    if encoded is None:
        if not _FIELD_VALUE.fullmatch(text):
            raise Unencodable(
                f"datacontenttype {text!r} cannot be a Content-Type header "
                "(visible ASCII, spaces and tabs only)"
            )
        encoded = text.encode("ascii")
        if len(_CONTENT_TYPES) < _CACHED:
            _CONTENT_TYPES[text] = encoded
    return encoded


def to_binary(event: Event) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of `event` in binary mode, or Unencodable (`check_binary`)."""
    headers: list[tuple[bytes, bytes]] = []
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            headers.append((b"content-type", _content_type(value)))
            continue
        header = _HEADER_NAMES.get(name)
        if header is None:
            if not (name.__class__ is str and _NAME.fullmatch(name)):
                raise Unencodable(f"attribute name {name!r} cannot be a ce- header")
            header = b"ce-" + name.encode("ascii")
            if len(_HEADER_NAMES) < _CACHED:
                _HEADER_NAMES[name] = header
        if name in _REPEATING and value.__class__ is str:
            encoded = _HEADER_VALUES.get(value)
            if encoded is None:
                encoded = encode_header_value(value)
                if len(_HEADER_VALUES) < _CACHED:
                    _HEADER_VALUES[value] = encoded
        else:
            encoded = encode_header_value(value)
        headers.append((header, encoded))
    if event.data is not None:
        body = event.data
    elif event.json_data is not NOTHING:
        body = orjson.dumps(event.json_data)
    else:
        body = b""
    return headers, body


def check_binary(event: Event) -> None:
    """Unencodable if `event` cannot be written in binary mode (what a replay checks first)."""
    to_binary(event)


def to_json_object(event: Event) -> dict[str, Any]:
    """`event` as a JSON-format object; JSON data is embedded without re-parsing."""
    obj: dict[str, Any] = dict(event.attributes)
    if event.json_data is not NOTHING:
        obj["data"] = event.json_data
    elif event.data is not None:
        if is_json(event.datacontenttype):
            obj["data"] = orjson.Fragment(event.data)
        else:
            obj["data_base64"] = base64.b64encode(event.data).decode("ascii")
    return obj


def to_structured(event: Event) -> bytes:
    """Body of `event` in structured mode (`application/cloudevents+json`)."""
    return orjson.dumps(to_json_object(event))


def to_batch(events: Iterable[Event]) -> bytes:
    """Body of `events` in batched mode (`application/cloudevents-batch+json`)."""
    return orjson.dumps([to_json_object(e) for e in events])
