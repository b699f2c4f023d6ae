"""CloudEvents over HTTP, strictly: bytes and headers in, validated events (or a typed error) out.

Pure functions, no I/O, no framework: the ingress hands in the raw ASGI header list and the body,
and gets back `Event`s or a `MalformedEvent`/`UnsupportedMediaType`/`PayloadTooLarge`.

Why not the cloudevents SDK here: its 2.2 `cloudevents.core` binding invents a missing `id`, adds
a `time` on receive, accepts invalid percent-escapes and invalid UTF-8, parses `time` with
dateutil's lax ISO 8601 parser and has no batch mode. Every one of those is a MUST of the HTTP
protocol binding v1.0.2 or the JSON event format. The SDK also builds and validates an object per
event with regexes and dateutil, which costs more than the rest of the hot path together. So the
binding is ours; the SDK remains the reference client in the tests and the `send` CLI.

References: CloudEvents spec v1.0.2 (context attributes, type system), HTTP protocol binding
v1.0.2 (binary/structured/batched modes, header encoding), JSON event format v1.0.2, and the
v0.3 equivalents (`datacontentencoding`, `schemaurl`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote, unquote_to_bytes

import orjson

from eventfn.core.errors import InvalidBatch, MalformedEvent, PayloadTooLarge, UnsupportedMediaType

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
JSON: Final = "application/json"

UTF8: Final = ("utf-8", "utf8")

SPEC_V1: Final = "1.0"
SPEC_V03: Final = "0.3"

_REQUIRED: Final = ("id", "source", "type", "specversion")
# Context attributes that are not extensions, per spec version.
_CORE: Final[dict[str, frozenset[str]]] = {
    SPEC_V1: frozenset(
        {*_REQUIRED, "datacontenttype", "dataschema", "subject", "time"},
    ),
    SPEC_V03: frozenset(
        {*_REQUIRED, "datacontenttype", "datacontentencoding", "schemaurl", "subject", "time"},
    ),
}
# Attributes whose value is a String (or a URI, URI-reference or Timestamp written as one).
_STRING_ATTRIBUTES: Final = frozenset(_CORE[SPEC_V1] | _CORE[SPEC_V03])

# Attribute names: lowercase ASCII letters and digits only (spec, "Attribute Naming Convention").
_NAME = re.compile(r"[a-z0-9]+")
# A `%` not followed by two hex digits is an invalid percent-encoding (HTTP binding 3.1.3.2).
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# RFC 3339 `date-time`: full date, `T`, full time with a mandatory offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
)
# An absolute URI starts with a scheme (RFC 3986 section 3.1).
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S*")
_INT32 = range(-(2**31), 2**31)
# Percent-encode space, double quote, percent and anything outside printable ASCII (3.1.3.2).
_HEADER_SAFE: Final = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in ' "%')
# `%` as a byte value: `37 in raw` is a memchr, while CPython 3.11's `b"%" in raw` first tries the
# operand as an int, raising and clearing a TypeError on every call.
_PERCENT: Final = ord("%")
# Unicode whitespace: exactly what str.isspace() accepts (both use Py_UNICODE_ISSPACE).
_SPACE = re.compile(r"\s")
# 19 digits in a row: where an integer beyond 64 bits may be (2**63 has 19 digits). orjson reads
# such an integer as a float, silently; a body holding such a run is read again exactly.
_LONG_DIGITS = re.compile(rb"\d{19}")
# What a Content-Type header may carry: visible ASCII, spaces and tabs (no CR, LF or NUL).
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


class Mode(StrEnum):
    """HTTP content mode of a request; replies use the same one."""

    BINARY = "binary"
    STRUCTURED = "structured"
    BATCH = "batch"


class _Nothing:
    """Marks an event whose `data` member was absent (distinct from JSON `null`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Final = _Nothing()


class Unencodable(MalformedEvent):
    """An event that cannot be written in binary mode (a `datacontenttype` with characters no
    header can carry, an attribute name that is not one): sending it again fails the same way."""

    problem = "unencodable-event"
    title = "Event cannot be encoded"


# Not frozen, like the other per-request records (Request, Outcome, ClaimResult, Reply): a
# frozen dataclass's __init__ pays an object.__setattr__ per field. Treat them as immutable.
@dataclass(slots=True)
class Event:
    """A CloudEvent whose context attributes are valid for its spec version.

    `data` holds the payload bytes as they arrived (binary body, decoded `data_base64`);
    `json_data` holds the already-parsed `data` member of a JSON-format event. At most one is set.
    """

    attributes: dict[str, Any]
    data: bytes | None = None
    json_data: Any = NOTHING

    @property
    def id(self) -> str:
        value: str = self.attributes["id"]  # a non-empty string once validated
        return value

    @property
    def source(self) -> str:
        value: str = self.attributes["source"]  # a non-empty string once validated
        return value

    @property
    def type(self) -> str:
        value: str = self.attributes["type"]  # a non-empty string once validated
        return value

    @property
    def specversion(self) -> str:
        value: str = self.attributes["specversion"]  # a non-empty string once validated
        return value

    @property
    def datacontenttype(self) -> str | None:
        value = self.attributes.get("datacontenttype")
        return None if value is None else str(value)

    @property
    def has_data(self) -> bool:
        return self.data is not None or self.json_data is not NOTHING


@dataclass(slots=True)  # not frozen: see Event
class Request:
    """What the ingress decoded from one HTTP request."""

    mode: Mode
    events: tuple[Event, ...]


# ---------------------------------------------------------------------------------------------
# Media types
# ---------------------------------------------------------------------------------------------


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into its lowercased media type and parameters."""
    if not content_type:
        return "", {}
    main, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), params


# Content types already classified: the same few values arrive on every request (bounded: they
# are input). Parsing one costs more than validating the payload it describes.
_JSON_TYPES: dict[str, bool] = {}
_FORMATS: dict[str, str | None] = {}
_CACHED = 256


def is_json(content_type: str | None) -> bool:
    """True for `application/json`, `text/json` and any `+json` suffix; absent means JSON."""
    if content_type is None:
        return True
    known = _JSON_TYPES.get(content_type)
    if known is not None:
        return known
    main, params = media_type(content_type)
    charset = params.get("charset", "utf-8").lower()
    found = (main in (JSON, "text/json") or main.endswith("+json")) and charset in UTF8
    if len(_JSON_TYPES) < _CACHED:
        _JSON_TYPES[content_type] = found
    return found


def _event_format(content_type: str | None) -> str | None:
    """STRUCTURED or BATCH for the JSON event format, None for binary mode (or 415)."""
    if content_type is None:
        return None
    if content_type in _FORMATS:
        return _FORMATS[content_type]
    main, params = media_type(content_type)
    found = None
    if main.startswith("application/cloudevents"):
        charset = params.get("charset", "utf-8").lower()
        if charset not in UTF8:
            raise UnsupportedMediaType(f"the JSON event format is UTF-8, not {charset}")
        if main not in (STRUCTURED, BATCH):
            raise UnsupportedMediaType(
                f"unsupported event format {main!r}: this function reads {STRUCTURED} and {BATCH}",
            )
        found = main
    if len(_FORMATS) < _CACHED:
        _FORMATS[content_type] = found
    return found


# ---------------------------------------------------------------------------------------------
# Attribute rules shared by both modes
# ---------------------------------------------------------------------------------------------


# Names already found valid: the same dozen names arrive on every event (bounded: names are input).
_VALID_NAMES: set[str] = set()


def _check_name(name: str, where: str) -> None:
    if name in _VALID_NAMES:
        return
    if not _NAME.fullmatch(name):
        raise MalformedEvent(
            f"illegal attribute name {name!r} in {where}: "
            "names are lowercase ASCII letters and digits only",
        )
    if name == "data":
        raise MalformedEvent(f"{where}: 'data' is reserved and cannot be an attribute")
    if len(_VALID_NAMES) < 256:
        _VALID_NAMES.add(name)


def check_time(value: str) -> None:
    """Reject a `time` that is not an RFC 3339 date-time."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise MalformedEvent(f"attribute 'time' is not an RFC 3339 timestamp: {value!r}")
    normalized = value.upper()
    if match.group(6) == "60":  # a leap second is valid RFC 3339; datetime cannot hold it
        normalized = normalized[:17] + "59" + normalized[19:]
    try:
        datetime.fromisoformat(normalized)
    except ValueError:
        raise MalformedEvent(f"attribute 'time' is not a valid date-time: {value!r}") from None


def _validate(attributes: dict[str, Any]) -> dict[str, Any]:
    """Apply the context-attribute MUSTs shared by every mode; returns `attributes`."""
    version = attributes.get("specversion")
    if version is None or version == "":
        raise MalformedEvent("missing required attribute 'specversion'")
    if version not in _CORE:
        raise MalformedEvent(
            f"unsupported specversion {version!r}: this function accepts 1.0 and 0.3",
            supported=[SPEC_V1, SPEC_V03],
        )
    for name in _REQUIRED:
        value = attributes.get(name)
        if value.__class__ is not str or not value:
            _missing_or_not_a_string(name, value)
    if _SPACE.search(attributes["source"]):
        raise MalformedEvent("attribute 'source' must be a URI-reference (no whitespace)")
    if len(attributes) == 4:  # the required four only: nothing optional to check
        return attributes
    for name in ("subject", "datacontenttype"):
        if attributes.get(name) == "":
            raise MalformedEvent(f"attribute {name!r} must not be empty when present")
    schema_attr = "dataschema" if version == SPEC_V1 else "schemaurl"
    schema = attributes.get(schema_attr)
    if schema is not None and not (isinstance(schema, str) and _ABSOLUTE_URI.fullmatch(schema)):
        raise MalformedEvent(f"attribute {schema_attr!r} must be an absolute URI")
    time = attributes.get("time")
    if time is not None:
        check_time(time)
    return attributes


def _missing_or_not_a_string(name: str, value: Any) -> None:
    if value is None:
        raise MalformedEvent(f"missing required attribute {name!r}")
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"attribute {name!r} must be a non-empty string")


# ---------------------------------------------------------------------------------------------
# Binary mode
# ---------------------------------------------------------------------------------------------


def _unescape(name: str, raw: bytes) -> str:
    """A percent-encoded header value, decoded (HTTP binding 3.1.3.2)."""
    if _BAD_ESCAPE.search(raw):
        raise MalformedEvent(f"header ce-{name} has an invalid percent-encoding")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvent(f"header ce-{name} is not valid UTF-8 after decoding") from None


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


def _binary(ce_headers: list[tuple[str, bytes]], content_type: str | None, body: bytes) -> Event:
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
    if body and is_json(content_type):
        _parse(body)  # the one JSON dialect; the bytes stay as they came, integers exact
    return Event(attributes, body if body else None)


# ---------------------------------------------------------------------------------------------
# JSON event format (structured mode and batches)
# ---------------------------------------------------------------------------------------------


def _extension_value(name: str, value: Any) -> Any:
    """Extension values are Boolean, Integer (32-bit) or String in the JSON format."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if value not in _INT32:
            raise MalformedEvent(f"extension {name!r} is an Integer outside the 32-bit range")
        return value
    raise MalformedEvent(
        f"extension {name!r} must be a string, integer or boolean, not {type(value).__name__}",
    )


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


def decode_head(head: Head, body: bytes, *, max_batch: int = 100) -> Request:
    """`decode` of a request whose headers `read_head` has read already."""
    content_type = head.content_type
    event_format = _event_format(content_type)
    if event_format is None:
        return Request(Mode.BINARY, (_binary(head.ce, content_type, body),))
    if event_format == STRUCTURED:
        return Request(Mode.STRUCTURED, (decode_structured(body),))
    return Request(Mode.BATCH, decode_batch(body, max_batch))


# ---------------------------------------------------------------------------------------------
# Encoding (replies and published events)
# ---------------------------------------------------------------------------------------------


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
