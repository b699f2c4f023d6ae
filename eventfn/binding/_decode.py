"""Decoding: binary, structured and batched requests into validated events, one JSON dialect."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

import orjson

from eventfn.binding._attributes import (
    _LONG_DIGITS,
    _VALID_NAMES,
    _check_name,
    _extension_value,
    _unescape,
    _validate,
)
from eventfn.binding._encode import _PERCENT
from eventfn.binding._event import (
    _CORE,
    _STRING_ATTRIBUTES,
    BATCH,
    NOTHING,
    SPEC_V03,
    SPEC_V1,
    STRUCTURED,
    Event,
    Mode,
    Request,
    _event_format,
    is_json,
)
from eventfn.binding._head import Head, read_head
from eventfn.core.errors import InvalidBatch, MalformedEvent, PayloadTooLarge


def _binary(
    ce_headers: list[tuple[str, bytes]],
    content_type: str | None,
    body: bytes,
    check_data: bool = True,
) -> Event:
    attributes: dict[str, Any] = {}
    for attr, raw in ce_headers:
        if attr not in _VALID_NAMES:
            _check_name(attr, f"header ce-{attr}")
        if attr in attributes:
            raise MalformedEvent(f"header ce-{attr} appears more than once")
        if attr == "datacontenttype":
            raise MalformedEvent(
                "binary mode carries datacontenttype in Content-Type, not ce-datacontenttype",
            )
        if _PERCENT in raw:
            attributes[attr] = _unescape(attr, raw)
            continue
        try:  # the usual case: no escapes to check or undo
            attributes[attr] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEvent(f"header ce-{attr} is not valid UTF-8 after decoding") from None
    if "specversion" not in attributes:
        raise MalformedEvent(
            "not a CloudEvent: no ce-specversion header and the Content-Type is not a "
            f"CloudEvents format ({STRUCTURED} or {BATCH})",
        )
    if content_type:
        attributes["datacontenttype"] = content_type
    _validate(attributes)
    if check_data and body and is_json(content_type):
        _parse(body)  # the one JSON dialect; the bytes stay as they came, integers exact
    return Event(attributes, body if body else None)


def event_from_json(obj: Any) -> Event:
    """Build an event from one parsed JSON-format object (structured body or batch member)."""
    if not isinstance(obj, dict):
        raise MalformedEvent("a JSON-format CloudEvent must be a JSON object")
    version = obj.get("specversion")
    core = _CORE.get(version, _CORE[SPEC_V1]) if isinstance(version, str) else _CORE[SPEC_V1]
    attributes: dict[str, Any] = {}
    data: bytes | None = None
    json_data: Any = NOTHING
    for name, value in obj.items():
        if value is None:  # JSON null means the attribute is not set
            continue
        if name == "data":
            json_data = value
        elif name == "data_base64" and version != SPEC_V03:
            if not isinstance(value, str):
                raise MalformedEvent("'data_base64' must be a string")
            data = _b64decode(value, "data_base64")
        else:
            _check_name(name, "the event")
            if name in _STRING_ATTRIBUTES and name in core:
                if not isinstance(value, str):
                    raise MalformedEvent(f"attribute {name!r} must be a string")
                attributes[name] = value
            else:
                attributes[name] = _extension_value(name, value)
    if data is not None and json_data is not NOTHING:
        raise MalformedEvent("an event must not carry both 'data' and 'data_base64'")
    _validate(attributes)
    return _with_data(attributes, data, json_data)


def _with_data(attributes: dict[str, Any], data: bytes | None, json_data: Any) -> Event:
    """The event, its `data` member decoded as its encoding and content type say."""
    if attributes["specversion"] == SPEC_V03 and attributes.get("datacontentencoding") is not None:
        if str(attributes["datacontentencoding"]).lower() != "base64":
            raise MalformedEvent("datacontentencoding must be 'base64' when present")
        if json_data is not NOTHING:
            if not isinstance(json_data, str):
                raise MalformedEvent("base64-encoded 'data' must be a string")
            data, json_data = _b64decode(json_data, "data"), NOTHING
    elif json_data is not NOTHING and not is_json(attributes.get("datacontenttype")):
        # Non-JSON data in the JSON format is carried as a JSON string (JSON format 3.1).
        if not isinstance(json_data, str):
            raise MalformedEvent("data of a non-JSON datacontenttype must be a JSON string")
        data, json_data = json_data.encode("utf-8"), NOTHING
    return Event(attributes, data=data, json_data=json_data)


def _b64decode(value: str, member: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvent(f"{member!r} is not valid base64") from None


def _parse(body: bytes) -> Any:
    """`body` read in the one JSON dialect of every door: RFC 8259, nothing more.

    orjson refuses `NaN`, `Infinity` and numbers a double cannot hold (`1e400`), as the JSON
    format requires, at every door alike: binary-mode data is checked here too, not left to the
    payload's model (pydantic reads `NaN` into a float).
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"body is not valid JSON: {exc.msg}") from None


def _loads(body: bytes) -> tuple[Any, bool]:
    """`_parse(body)`, integers kept exactly; and whether the body may hold big integers.

    orjson reads an integer beyond 64 bits as a float, so a body where one may be (a run of 19
    digits, rare) is read again by the standard library, whose integers are exact: the JSON
    `data` of its events is then kept as bytes (`_exact`), which every encoder carries as is.
    """
    value = _parse(body)
    if _LONG_DIGITS.search(body) is None:
        return value, False
    return json.loads(body), True  # valid, no non-finite number in it: orjson said so


def loads(body: bytes) -> Any:
    """`body` as JSON in the dialect of every door (see `_parse`), integers exact; or
    MalformedEvent. For the doors that are not CloudEvents: the facade, the dead-letter views."""
    return _loads(body)[0]


def _has_big_int(value: Any) -> bool:
    """Whether `value` holds an integer orjson cannot write (beyond 64 bits)."""
    if value.__class__ is int:
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(_has_big_int(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_big_int(v) for v in value)
    return False


def _exact(event: Event) -> Event:
    """`event` with JSON data that holds big integers kept as its bytes, exactly."""
    if event.json_data is NOTHING or not _has_big_int(event.json_data):
        return event
    text = json.dumps(event.json_data, ensure_ascii=False, separators=(",", ":"))
    return Event(event.attributes, data=text.encode("utf-8"))


def decode_structured(body: bytes) -> Event:
    """Decode a structured-mode body (one JSON-format event); `ce-` headers are ignored."""
    parsed, long_digits = _loads(body)
    event = event_from_json(parsed)
    return _exact(event) if long_digits else event


def decode_batch(body: bytes, max_events: int) -> tuple[Event, ...]:
    """Decode a batched-mode body; the whole batch is rejected if any event is malformed."""
    items, long_digits = _loads(body)
    if not isinstance(items, list):
        raise InvalidBatch("a CloudEvents batch must be a JSON array")
    if len(items) > max_events:
        raise PayloadTooLarge(
            f"the batch has {len(items)} events; at most {max_events} are accepted",
            limit=max_events,
        )
    events: list[Event] = []
    for index, item in enumerate(items):
        try:
            events.append(event_from_json(item))
        except MalformedEvent as exc:
            raise InvalidBatch(f"event [{index}]: {exc.detail}", index=index) from None
    if long_digits:
        events = [_exact(e) for e in events]
    versions = {e.specversion for e in events}
    if len(versions) > 1:
        raise InvalidBatch(
            f"a batch must not mix spec versions (found {', '.join(sorted(versions))})",
        )
    return tuple(events)


def decode(
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    *,
    max_batch: int = 100,
) -> Request:
    """Decode an HTTP request in whichever content mode its Content-Type says."""
    return decode_head(read_head(headers), body, max_batch=max_batch)


def decode_head(
    head: Head, body: bytes, *, max_batch: int = 100, check_data: bool = True
) -> Request:
    """`decode` of a request whose headers `read_head` has read already.

    `check_data=False` keeps a binary-mode body whatever its JSON holds (the dead-letter sink:
    bad data may be why the broker dead-lettered the event); the envelope is checked all the same.
    """
    content_type = head.content_type
    event_format = _event_format(content_type)
    if event_format is None:
        return Request(Mode.BINARY, (_binary(head.ce, content_type, body, check_data),))
    if event_format == STRUCTURED:
        return Request(Mode.STRUCTURED, (decode_structured(body),))
    return Request(Mode.BATCH, decode_batch(body, max_batch))
