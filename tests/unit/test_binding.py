"""The CloudEvents HTTP protocol binding v1.0.2 and JSON event format, as pure functions.

Every MUST the binding enforces has a good and a bad case here, in binary and structured mode
(and batch, where it applies), for spec versions 1.0 and 0.3.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventfn.binding import (
    BATCH,
    NOTHING,
    STRUCTURED,
    Event,
    Mode,
    check_time,
    decode,
    encode_header_value,
    is_json,
    media_type,
    read_head,
    to_batch,
    to_binary,
    to_json_object,
    to_structured,
)
from eventfn.core.errors import InvalidBatch, MalformedEvent, PayloadTooLarge, UnsupportedMediaType

Headers = list[tuple[bytes, bytes]]
VERSIONS = ["1.0", "0.3"]
MODES = [Mode.BINARY, Mode.STRUCTURED]


def attrs(specversion: str = "1.0", **extra: Any) -> dict[str, Any]:
    """Minimal valid context attributes plus `extra` (None values are dropped)."""
    base: dict[str, Any] = {"specversion": specversion, "id": "e-1", "source": "/s", "type": "t"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def raw(headers: dict[str, str]) -> Headers:
    """A dict of text headers as ASGI raw header pairs."""
    return [(k.lower().encode("latin-1"), v.encode("utf-8")) for k, v in headers.items()]


def binary(
    attributes: dict[str, Any], body: bytes = b"", content_type: str | None = None
) -> Headers:
    """Raw headers of a binary-mode message with `attributes` as ce- headers."""
    headers = [(b"ce-" + k.encode(), str(v).encode("utf-8")) for k, v in attributes.items()]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    return headers


def structured(obj: Any) -> tuple[Headers, bytes]:
    """Headers and body of a structured-mode message carrying `obj`."""
    return [(b"content-type", STRUCTURED.encode())], orjson.dumps(obj)


def decode_in(mode: Mode, attributes: dict[str, Any]) -> Event:
    """Decode one event with `attributes` sent in `mode` (string attribute values)."""
    if mode is Mode.BINARY:
        return decode(binary(attributes), b"").events[0]
    return decode(*structured(attributes)).events[0]


def rejects(mode: Mode, attributes: dict[str, Any], match: str) -> None:
    """Assert that `attributes` in `mode` are rejected as malformed with a message matching."""
    with pytest.raises(MalformedEvent, match=match):
        decode_in(mode, attributes)


# -------------------------------------------------------------------------------------------
# Required attributes and spec versions
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["id", "source", "type"])
def test_missing_required_attribute_is_rejected(mode: Mode, version: str, name: str) -> None:
    """An event without id, source or type is malformed (the SDK would invent an id)."""
    rejects(mode, attrs(version, **{name: None}), f"missing required attribute '{name}'")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["id", "source", "type"])
def test_empty_required_attribute_is_rejected(mode: Mode, version: str, name: str) -> None:
    """A required attribute must be a non-empty string."""
    rejects(mode, attrs(version, **{name: ""}), f"'{name}' must be a non-empty string")


def test_missing_specversion_in_binary_mode_is_not_a_cloudevent() -> None:
    """A binary request without ce-specversion is not a CloudEvent at all."""
    with pytest.raises(MalformedEvent, match="no ce-specversion"):
        decode(binary({"id": "1", "source": "/s", "type": "t"}), b"{}")


def test_missing_specversion_in_structured_mode_is_rejected() -> None:
    """A structured event without specversion is malformed."""
    with pytest.raises(MalformedEvent, match="missing required attribute 'specversion'"):
        decode(*structured({"id": "1", "source": "/s", "type": "t"}))


@pytest.mark.parametrize("mode", MODES)
def test_empty_specversion_is_rejected(mode: Mode) -> None:
    """An empty specversion is as good as none."""
    rejects(mode, attrs(""), "specversion")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", ["0.2", "1.1", "2.0", "1", "1.0 "])
def test_unsupported_specversion_is_rejected(mode: Mode, version: str) -> None:
    """Only spec versions 1.0 and 0.3 are accepted, and the error names them."""
    with pytest.raises(MalformedEvent, match="unsupported specversion") as info:
        decode_in(mode, attrs(version))
    assert info.value.extensions["supported"] == ["1.0", "0.3"]


def test_specversion_as_json_number_is_rejected() -> None:
    """specversion is a String in the JSON format, not the number 1.0."""
    with pytest.raises(MalformedEvent, match="'specversion' must be a string"):
        decode(*structured({**attrs(), "specversion": 1.0}))


@pytest.mark.parametrize("name", ["id", "source", "type"])
def test_required_attribute_as_json_number_is_rejected(name: str) -> None:
    """id, source and type are Strings in the JSON format."""
    with pytest.raises(MalformedEvent, match=f"'{name}' must be a"):
        decode(*structured({**attrs(), name: 7}))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_minimal_event_is_accepted(mode: Mode, version: str) -> None:
    """The four required attributes alone make a valid event without data."""
    event = decode_in(mode, attrs(version))
    assert (event.id, event.source, event.type, event.specversion) == ("e-1", "/s", "t", version)
    assert not event.has_data


@pytest.mark.parametrize("mode", MODES)
def test_no_attribute_is_invented_on_receive(mode: Mode) -> None:
    """Unlike the SDK, decoding adds no `time` and no `id`: the event is what was sent."""
    event = decode_in(mode, attrs())
    assert event.attributes == attrs()


@pytest.mark.parametrize("mode", MODES)
def test_source_with_whitespace_is_rejected(mode: Mode) -> None:
    """source is a URI-reference, which cannot contain whitespace."""
    rejects(mode, attrs(source="/a b"), "URI-reference")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["subject"])
def test_empty_optional_string_is_rejected(mode: Mode, name: str) -> None:
    """An optional String attribute, when present, must not be empty."""
    rejects(mode, attrs(**{name: ""}), f"'{name}' must not be empty")


def test_empty_datacontenttype_in_structured_mode_is_rejected() -> None:
    """datacontenttype, when present, must not be empty."""
    with pytest.raises(MalformedEvent, match="'datacontenttype' must not be empty"):
        decode(*structured(attrs(datacontenttype="")))


# -------------------------------------------------------------------------------------------
# Header encoding (binary mode)
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"%zz", b"%4", b"abc%", b"%", b"a%g1"])
def test_invalid_percent_encoding_is_rejected(value: bytes) -> None:
    """A `%` not followed by two hex digits is an invalid percent-encoding (3.1.3.2)."""
    headers = [*binary(attrs()), (b"ce-ext", value)]
    with pytest.raises(MalformedEvent, match="ce-ext has an invalid percent-encoding"):
        decode(headers, b"")


@pytest.mark.parametrize("value", [b"%C3%28", b"%FF", b"%E2%82"])
def test_invalid_utf8_after_percent_decoding_is_rejected(value: bytes) -> None:
    """Percent-decoded header bytes must be valid UTF-8."""
    headers = [*binary(attrs()), (b"ce-ext", value)]
    with pytest.raises(MalformedEvent, match="not valid UTF-8"):
        decode(headers, b"")


def test_raw_non_utf8_header_bytes_are_rejected() -> None:
    """A ce- header whose raw bytes are not UTF-8 is malformed."""
    headers = [*binary(attrs()), (b"ce-ext", b"caf\xe9")]
    with pytest.raises(MalformedEvent, match="not valid UTF-8"):
        decode(headers, b"")


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        (b"a%20b", "a b"),
        (b"%22quoted%22", '"quoted"'),
        (b"100%25", "100%"),
        (b"%E2%82%AC%20%F0%9F%8C%8E", "\u20ac \U0001f30e"),
        (b"%c3%a9", "\u00e9"),
        (b"plain-value", "plain-value"),
    ],
)
def test_percent_encoded_header_values_are_decoded(encoded: bytes, decoded: str) -> None:
    """Percent-encoded space, quote, percent and unicode decode to the original value."""
    event = decode([*binary(attrs()), (b"ce-ext", encoded)], b"").events[0]
    assert event.attributes["ext"] == decoded


@pytest.mark.parametrize("value", ["a b", '"q"', "100%", "caf\u00e9 \U0001f30e", "x,y;z=1"])
def test_encoded_header_values_round_trip(value: str) -> None:
    """encode_header_value then decoding the header gives back the value."""
    encoded = encode_header_value(value)
    assert all(0x21 <= b < 0x7F for b in encoded)
    event = decode([*binary(attrs()), (b"ce-ext", encoded)], b"").events[0]
    assert event.attributes["ext"] == value


@pytest.mark.parametrize("value", [True, False, 42])
def test_non_string_header_values_are_encoded_canonically(value: Any) -> None:
    """Booleans encode as true/false and integers in decimal."""
    assert encode_header_value(value) == {True: b"true", False: b"false", 42: b"42"}[value]


def test_header_names_are_case_insensitive() -> None:
    """CE-ID, Ce-Source and ce-type are the same headers whatever their case."""
    headers = [
        (b"CE-SpecVersion", b"1.0"),
        (b"CE-ID", b"x"),
        (b"Ce-Source", b"/s"),
        (b"ce-TYPE", b"t"),
        (b"Content-Type", b"application/json"),
    ]
    event = decode(headers, b"{}").events[0]
    assert (event.id, event.source, event.type) == ("x", "/s", "t")
    assert event.datacontenttype == "application/json"


def test_one_pass_over_the_headers_finds_what_the_ingress_reads() -> None:
    """`read_head`: the ce- headers in order, the first Content-Type and Content-Length, and the
    last trace headers; other headers are skipped, whatever the case of any name."""
    headers = [
        (b"Host", b"fn.example"),
        (b"CE-ID", b"x"),
        (b"content-type", b"application/json"),
        (b"Content-Type", b"text/plain"),
        (b"Content-Length", b"2"),
        (b"content-length", b"99"),
        (b"ce-myext", b"1"),
        (b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"),
        (b"TraceState", b"a=1"),
        (b"tracestate", b"b=2"),
        (b"x-request-id", b"r"),
    ]
    for _ in range(2):  # the second pass reads the names it has seen before from its cache
        head = read_head(headers)
        assert head.ce == [("id", b"x"), ("myext", b"1")]
        assert (head.content_type, head.content_length) == ("application/json", b"2")
        assert head.traceparent == "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        assert head.tracestate == "b=2"


def test_a_request_without_the_optional_headers_has_none_of_them() -> None:
    head = read_head([(b"ce-id", b"x")])
    assert head.ce == [("id", b"x")]
    assert head.content_type is head.content_length is head.traceparent is head.tracestate is None


def test_duplicate_ce_header_is_rejected() -> None:
    """The same attribute sent twice is ambiguous, so malformed."""
    headers = [*binary(attrs()), (b"ce-id", b"again")]
    with pytest.raises(MalformedEvent, match="ce-id appears more than once"):
        decode(headers, b"")


def test_ce_datacontenttype_header_is_rejected() -> None:
    """In binary mode datacontenttype travels as Content-Type, never as ce-datacontenttype."""
    headers = [*binary(attrs()), (b"ce-datacontenttype", b"application/json")]
    with pytest.raises(MalformedEvent, match="Content-Type, not ce-datacontenttype"):
        decode(headers, b"")


def test_binary_content_type_becomes_datacontenttype() -> None:
    """The Content-Type of a binary message is the event's datacontenttype, verbatim."""
    event = decode(binary(attrs(), content_type="text/plain; charset=utf-8"), b"hi").events[0]
    assert event.datacontenttype == "text/plain; charset=utf-8"
    assert event.data == b"hi"


def test_binary_body_is_data_and_empty_body_is_no_data() -> None:
    """The binary body is the data as bytes; an empty body means no data."""
    with_body = decode(binary(attrs(), content_type="application/json"), b'{"a":1}').events[0]
    assert with_body.data == b'{"a":1}'
    assert with_body.json_data is NOTHING
    assert not decode(binary(attrs()), b"").events[0].has_data


def test_non_ce_headers_are_not_attributes() -> None:
    """Transport headers such as user-agent are not context attributes."""
    headers = [*binary(attrs()), (b"user-agent", b"foo"), (b"traceparent", b"00-a-b-01")]
    assert set(decode(headers, b"").events[0].attributes) == {"specversion", "id", "source", "type"}


# -------------------------------------------------------------------------------------------
# Attribute names
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Ext", "my_ext", "my-ext", "ext!", "\u00e9t\u00e9"])
def test_illegal_attribute_name_in_json_is_rejected(name: str) -> None:
    """Attribute names are lowercase ASCII letters and digits only."""
    with pytest.raises(MalformedEvent, match="illegal attribute name"):
        decode(*structured({**attrs(), name: "v"}))


def test_empty_attribute_name_in_json_is_rejected() -> None:
    """An empty member name is not an attribute name."""
    with pytest.raises(MalformedEvent, match="illegal attribute name"):
        decode(*structured({**attrs(), "": "v"}))


@pytest.mark.parametrize("name", [b"ce-", b"ce-my_ext", b"ce-my-ext", b"ce-ext.1"])
def test_illegal_attribute_name_in_header_is_rejected(name: bytes) -> None:
    """A ce- header must name a legal attribute after its prefix."""
    with pytest.raises(MalformedEvent, match="illegal attribute name"):
        decode([*binary(attrs()), (name, b"v")], b"")


def test_data_is_a_reserved_attribute_name_in_headers() -> None:
    """`ce-data` would shadow the data member; the name is reserved."""
    with pytest.raises(MalformedEvent, match="'data' is reserved"):
        decode([*binary(attrs()), (b"ce-data", b"v")], b"")


def test_attribute_names_with_digits_are_legal() -> None:
    """Lowercase letters and digits make a legal extension name."""
    event = decode(*structured({**attrs(), "ext2go": "v"})).events[0]
    assert event.attributes["ext2go"] == "v"


# -------------------------------------------------------------------------------------------
# time, dataschema
# -------------------------------------------------------------------------------------------

BAD_TIMES = [
    "2020-01-01",
    "2020-01-01T00:00:00",
    "2020-01-01 00:00:00Z",
    "20200101T000000Z",
    "2020-13-01T00:00:00Z",
    "2020-02-30T00:00:00Z",
    "2020-01-01T25:00:00Z",
    "2020-01-01T00:00:00+0100",
    "2020-01-01T00:00:00.Z",
    "Wed, 25 Nov 2026 12:00:00 GMT",
    "now",
    "\uff12\uff10\uff12\uff10-01-01T00:00:00Z",
    "2020-01-01T00:00:00+05:30:00",
    "2020-01-01T00:00:00+24:00",
    " 2020-01-01T00:00:00Z",
]
GOOD_TIMES = [
    "2020-01-01T00:00:00Z",
    "2020-01-01t00:00:00z",
    "2020-01-01T00:00:00.123Z",
    "2020-01-01T00:00:00.123456789Z",
    "2020-01-01T00:00:00+05:30",
    "2020-01-01T00:00:00-08:00",
    "2016-12-31T23:59:60Z",
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", BAD_TIMES)
def test_time_that_is_not_rfc3339_is_rejected(mode: Mode, value: str) -> None:
    """time must be an RFC 3339 date-time (the SDK's dateutil parser is laxer)."""
    rejects(mode, attrs(time=value), "attribute 'time'")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", GOOD_TIMES)
def test_rfc3339_time_is_accepted_verbatim(mode: Mode, value: str) -> None:
    """Lowercase t/z, fractions, offsets and leap seconds are valid RFC 3339."""
    assert decode_in(mode, attrs(time=value)).attributes["time"] == value


@pytest.mark.parametrize("value", GOOD_TIMES)
def test_check_time_accepts_rfc3339(value: str) -> None:
    """check_time is silent for valid RFC 3339 timestamps."""
    check_time(value)


def test_time_as_json_number_is_rejected() -> None:
    """time is a String in the JSON format."""
    with pytest.raises(MalformedEvent, match="'time' must be a string"):
        decode(*structured(attrs(time=1600000000)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", ["schema.json", "/schemas/q", "//host/x", ""])
def test_dataschema_that_is_not_absolute_is_rejected(mode: Mode, value: str) -> None:
    """dataschema (1.0) is an absolute URI."""
    rejects(mode, attrs(dataschema=value), "'dataschema' must be an absolute URI")


@pytest.mark.parametrize("mode", MODES)
def test_schemaurl_of_v03_must_be_absolute(mode: Mode) -> None:
    """schemaurl is v0.3's dataschema and is held to the same rule."""
    rejects(mode, attrs("0.3", schemaurl="relative/path"), "'schemaurl' must be an absolute URI")


@pytest.mark.parametrize("value", ["https://example.com/s.json", "urn:example:schema"])
def test_absolute_dataschema_is_accepted(value: str) -> None:
    """Absolute http(s) and urn URIs are valid dataschemas."""
    assert decode_in(Mode.STRUCTURED, attrs(dataschema=value)).attributes["dataschema"] == value


# -------------------------------------------------------------------------------------------
# JSON event format: null, data, data_base64, extension types
# -------------------------------------------------------------------------------------------


def test_json_null_attributes_are_unset() -> None:
    """A JSON null attribute is the same as an absent one."""
    event = decode(*structured({**attrs(), "subject": None, "time": None, "ext": None})).events[0]
    assert set(event.attributes) == {"specversion", "id", "source", "type"}


def test_json_null_required_attribute_is_missing() -> None:
    """A required attribute set to null is missing."""
    with pytest.raises(MalformedEvent, match="missing required attribute 'id'"):
        decode(*structured(attrs(id=None) | {"id": None}))


def test_json_null_data_is_no_data() -> None:
    """`data: null` means the event carries no data."""
    assert not decode(*structured({**attrs(), "data": None})).events[0].has_data


def test_json_data_is_kept_parsed() -> None:
    """JSON data of a JSON event is handed on already parsed."""
    event = decode(*structured({**attrs(), "data": {"query": "q"}})).events[0]
    assert event.json_data == {"query": "q"}
    assert event.data is None


def test_data_with_data_base64_is_rejected() -> None:
    """An event must not carry both data and data_base64."""
    with pytest.raises(MalformedEvent, match="both 'data' and 'data_base64'"):
        decode(*structured({**attrs(), "data": {"a": 1}, "data_base64": "aGk="}))


@pytest.mark.parametrize("value", ["not base64!", "aGk", "a===", "\u00e9"])
def test_invalid_base64_is_rejected(value: str) -> None:
    """data_base64 must be valid base64."""
    with pytest.raises(MalformedEvent, match="'data_base64' is not valid base64"):
        decode(*structured({**attrs(), "data_base64": value}))


def test_data_base64_must_be_a_string() -> None:
    """data_base64 is a JSON string."""
    with pytest.raises(MalformedEvent, match="'data_base64' must be a string"):
        decode(*structured({**attrs(), "data_base64": 12}))


def test_data_base64_is_decoded_to_bytes() -> None:
    """data_base64 arrives as the bytes it encodes."""
    payload = b'{"query":"q"}\x00\xff'
    encoded = base64.b64encode(payload).decode()
    event = decode(*structured({**attrs(), "data_base64": encoded})).events[0]
    assert event.data == payload


def test_v03_base64_data_content_encoding_is_decoded() -> None:
    """v0.3 `datacontentencoding: base64` means data is a base64 string of the bytes."""
    obj = {**attrs("0.3"), "datacontentencoding": "base64", "data": "eyJxdWVyeSI6InEifQ=="}
    event = decode(*structured(obj)).events[0]
    assert event.data == b'{"query":"q"}'
    assert event.json_data is NOTHING


def test_v03_base64_data_must_be_a_string() -> None:
    """v0.3 base64 data must be a JSON string."""
    obj = {**attrs("0.3"), "datacontentencoding": "base64", "data": {"a": 1}}
    with pytest.raises(MalformedEvent, match="base64-encoded 'data' must be a string"):
        decode(*structured(obj))


def test_v03_unknown_data_content_encoding_is_rejected() -> None:
    """base64 is the only datacontentencoding v0.3 defines."""
    obj = {**attrs("0.3"), "datacontentencoding": "gzip", "data": "x"}
    with pytest.raises(MalformedEvent, match="datacontentencoding must be 'base64'"):
        decode(*structured(obj))


def test_v03_invalid_base64_data_is_rejected() -> None:
    """v0.3 base64 data must be valid base64."""
    obj = {**attrs("0.3"), "datacontentencoding": "base64", "data": "%%%"}
    with pytest.raises(MalformedEvent, match="'data' is not valid base64"):
        decode(*structured(obj))


def test_data_base64_is_not_a_v03_member() -> None:
    """data_base64 belongs to 1.0; in v0.3 its name is an illegal attribute."""
    with pytest.raises(MalformedEvent, match="illegal attribute name 'data_base64'"):
        decode(*structured({**attrs("0.3"), "data_base64": "aGk="}))


def test_non_json_datacontenttype_data_is_a_string() -> None:
    """Data of a non-JSON type is carried as a JSON string and arrives as its UTF-8 bytes."""
    obj = {**attrs(), "datacontenttype": "text/plain", "data": "Hello, \U0001f30e!"}
    event = decode(*structured(obj)).events[0]
    assert event.data == "Hello, \U0001f30e!".encode()
    assert event.json_data is NOTHING


def test_non_json_datacontenttype_data_that_is_not_a_string_is_rejected() -> None:
    """A non-JSON datacontenttype cannot carry a JSON object as data."""
    obj = {**attrs(), "datacontenttype": "application/xml", "data": {"a": 1}}
    with pytest.raises(MalformedEvent, match="must be a JSON string"):
        decode(*structured(obj))


@pytest.mark.parametrize("value", [True, False, 0, -(2**31), 2**31 - 1, "text", ""], ids=repr)
def test_extension_of_a_cloudevents_type_is_accepted(value: Any) -> None:
    """Extensions may be Boolean, 32-bit Integer or String in the JSON format."""
    event = decode(*structured({**attrs(), "ext": value})).events[0]
    assert event.attributes["ext"] == value
    assert type(event.attributes["ext"]) is type(value)


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 2**63])
def test_extension_integer_out_of_int32_range_is_rejected(value: int) -> None:
    """Integer is a signed 32-bit number."""
    with pytest.raises(MalformedEvent, match="outside the 32-bit range"):
        decode(*structured({**attrs(), "ext": value}))


@pytest.mark.parametrize("value", [1.5, 1.0, {"a": 1}, [1, 2]], ids=repr)
def test_extension_of_no_cloudevents_type_is_rejected(value: Any) -> None:
    """Floats, objects and arrays are not CloudEvents attribute types."""
    with pytest.raises(MalformedEvent, match="must be a string, integer or boolean"):
        decode(*structured({**attrs(), "ext": value}))


@pytest.mark.parametrize("name", ["subject", "datacontenttype", "dataschema"])
def test_core_string_attribute_of_another_type_is_rejected(name: str) -> None:
    """Core String attributes must be JSON strings."""
    with pytest.raises(MalformedEvent, match=f"'{name}' must be a string"):
        decode(*structured({**attrs(), name: 1}))


# -------------------------------------------------------------------------------------------
# Structured mode
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b'{"a":1}x'])
def test_structured_body_that_is_not_json_is_rejected(body: bytes) -> None:
    """A structured body must be one JSON document."""
    with pytest.raises(MalformedEvent, match="not valid JSON"):
        decode([(b"content-type", STRUCTURED.encode())], body)


@pytest.mark.parametrize("body", [b"[]", b'"event"', b"42", b"null", b"true"])
def test_structured_body_that_is_not_an_object_is_rejected(body: bytes) -> None:
    """A structured event is a JSON object."""
    with pytest.raises(MalformedEvent, match="must be a JSON object"):
        decode([(b"content-type", STRUCTURED.encode())], body)


def test_structured_request_with_ce_headers_is_read_from_its_body() -> None:
    """ce- headers on a structured request are ignored; the body is the event."""
    headers = [
        (b"content-type", b"application/cloudevents+json; charset=utf-8"),
        (b"ce-id", b"from-header"),
        (b"ce-specversion", b"0.3"),
        (b"ce-bogus_name", b"%zz"),
    ]
    request = decode(headers, orjson.dumps(attrs(id="from-body")))
    assert request.mode is Mode.STRUCTURED
    assert request.events[0].id == "from-body"
    assert request.events[0].specversion == "1.0"


def test_structured_content_type_is_case_insensitive() -> None:
    """Media types compare case-insensitively."""
    request = decode([(b"Content-Type", b"Application/CloudEvents+JSON")], orjson.dumps(attrs()))
    assert request.mode is Mode.STRUCTURED


@pytest.mark.parametrize("charset", ["iso-8859-1", "utf-16", "us-ascii"])
def test_structured_charset_other_than_utf8_is_unsupported(charset: str) -> None:
    """The JSON event format is UTF-8 only: 415."""
    headers = [(b"content-type", f"{STRUCTURED}; charset={charset}".encode())]
    with pytest.raises(UnsupportedMediaType, match="UTF-8"):
        decode(headers, orjson.dumps(attrs()))


@pytest.mark.parametrize(
    "content_type",
    ["application/cloudevents+avro", "application/cloudevents", "application/cloudevents+xml"],
)
def test_unsupported_event_format_is_415(content_type: str) -> None:
    """Only the JSON event format is read; other formats get 415."""
    with pytest.raises(UnsupportedMediaType, match="unsupported event format"):
        decode([(b"content-type", content_type.encode())], b"\x00")


# -------------------------------------------------------------------------------------------
# Batched mode
# -------------------------------------------------------------------------------------------


def batch(items: Any, max_batch: int = 100) -> tuple[Event, ...]:
    """Decode a batched-mode body of `items`."""
    request = decode([(b"content-type", BATCH.encode())], orjson.dumps(items), max_batch=max_batch)
    assert request.mode is Mode.BATCH
    return request.events


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_decodes_every_event_in_order(version: str) -> None:
    """A batch is a JSON array of JSON-format events."""
    events = batch([attrs(version, id=str(i)) for i in range(3)])
    assert [e.id for e in events] == ["0", "1", "2"]


def test_empty_batch_is_an_empty_tuple() -> None:
    """An empty array is a valid batch of no events."""
    assert batch([]) == ()


@pytest.mark.parametrize("body", [{"specversion": "1.0"}, "x", 1, None])
def test_batch_that_is_not_an_array_is_rejected(body: Any) -> None:
    """A batch body is a JSON array."""
    with pytest.raises(InvalidBatch, match="must be a JSON array"):
        batch(body)


def test_batch_body_that_is_not_json_is_rejected() -> None:
    """A batch body must be JSON."""
    with pytest.raises(MalformedEvent, match="not valid JSON"):
        decode([(b"content-type", BATCH.encode())], b"[{")


@pytest.mark.parametrize("member", ["event", 1, None, [attrs()]], ids=repr)
def test_batch_member_that_is_not_an_object_is_rejected_with_its_index(member: Any) -> None:
    """Every batch member must be a JSON object; the error names its index."""
    with pytest.raises(InvalidBatch, match=r"event \[1\]") as info:
        batch([attrs(), member, attrs()])
    assert info.value.extensions["index"] == 1


def test_batch_with_malformed_third_event_names_index_2() -> None:
    """One malformed event rejects the whole batch, naming its index."""
    items = [attrs(id="a"), attrs(id="b"), attrs(id="c", time="yesterday")]
    with pytest.raises(InvalidBatch, match=r"event \[2\]: attribute 'time'") as info:
        batch(items)
    assert info.value.extensions["index"] == 2
    assert info.value.status_code == 400


def test_batch_mixing_spec_versions_is_rejected() -> None:
    """All events of a batch share one spec version."""
    with pytest.raises(InvalidBatch, match="must not mix spec versions"):
        batch([attrs("1.0"), attrs("0.3")])


def test_batch_over_the_event_limit_is_413() -> None:
    """More events than max_batch is too large (413), whatever the byte size."""
    with pytest.raises(PayloadTooLarge, match="at most 2"):
        batch([attrs(id=str(i)) for i in range(3)], max_batch=2)


def test_batch_at_the_event_limit_is_accepted() -> None:
    """Exactly max_batch events are fine."""
    assert len(batch([attrs(id=str(i)) for i in range(2)], max_batch=2)) == 2


def test_batch_charset_other_than_utf8_is_unsupported() -> None:
    """Batches are UTF-8 JSON too."""
    with pytest.raises(UnsupportedMediaType):
        decode([(b"content-type", f"{BATCH}; charset=latin1".encode())], b"[]")


# -------------------------------------------------------------------------------------------
# Media types
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, True),
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ('application/json; charset="utf8"', True),
        ("text/json", True),
        ("application/vnd.example+json", True),
        ("application/json; charset=latin-1", False),
        ("text/plain", False),
        ("application/xml", False),
        ("application/octet-stream", False),
        ("", False),
    ],
)
def test_is_json(content_type: str | None, expected: bool) -> None:
    """JSON media types are application/json, text/json and +json suffixes, in UTF-8."""
    assert is_json(content_type) is expected


def test_media_type_splits_parameters() -> None:
    """media_type lowercases the type and parameter names and unquotes values."""
    assert media_type('Text/Plain ; Charset="UTF-8"; x') == ("text/plain", {"charset": "UTF-8"})
    assert media_type(None) == ("", {})


# -------------------------------------------------------------------------------------------
# Encoding, and decode(encode(e)) == e
# -------------------------------------------------------------------------------------------


def reply_event(**extensions: Any) -> Event:
    """An event as the dispatcher builds replies: JSON bytes as data."""
    attributes = {
        "specversion": "1.0",
        "id": "r-1",
        "source": "/fn",
        "type": "com.example.answer",
        "time": "2026-11-25T12:00:00.000Z",
        "datacontenttype": "application/json",
        **extensions,
    }
    return Event(attributes, b'{"result":{"message":"hi \\u00e9"}}')


def test_to_binary_puts_datacontenttype_in_content_type() -> None:
    """Binary encoding maps datacontenttype to Content-Type and the rest to ce- headers."""
    headers, body = to_binary(reply_event(replyid="c 1"))
    assert (b"content-type", b"application/json") in headers
    assert (b"ce-replyid", b"c%201") in headers
    assert not any(name == b"ce-datacontenttype" for name, _ in headers)
    assert body == reply_event().data


def test_to_binary_of_json_data_and_of_no_data() -> None:
    """Parsed JSON data is serialized; an event without data has an empty body."""
    assert to_binary(Event(attrs(), json_data={"a": 1}))[1] == b'{"a":1}'
    assert to_binary(Event(attrs()))[1] == b""


def test_to_structured_embeds_json_data_without_reparsing() -> None:
    """JSON data bytes are embedded as a JSON value, not a string."""
    obj = orjson.loads(to_structured(reply_event()))
    assert obj["data"] == {"result": {"message": "hi \u00e9"}}


def test_to_structured_uses_data_base64_for_non_json_data() -> None:
    """Binary data of a non-JSON type is carried as data_base64."""
    event = Event(attrs(datacontenttype="application/octet-stream"), b"\x00\xff")
    assert to_json_object(event)["data_base64"] == "AP8="


def test_to_batch_is_an_array_of_structured_events() -> None:
    """A batch of replies is a JSON array of JSON-format events."""
    body = orjson.loads(to_batch([reply_event(), reply_event(id="r-2")]))
    assert [e["id"] for e in body] == ["r-1", "r-2"]


def encoded_request(mode: Mode, events: list[Event]) -> tuple[Headers, bytes]:
    """Headers and body of `events` encoded in `mode`."""
    if mode is Mode.BINARY:
        return to_binary(events[0])
    if mode is Mode.STRUCTURED:
        return [(b"content-type", STRUCTURED.encode())], to_structured(events[0])
    return [(b"content-type", BATCH.encode())], to_batch(events)


def canonical(event: Event) -> tuple[dict[str, Any], Any]:
    """An event's attributes and data in a mode-independent form."""
    if event.json_data is not NOTHING:
        return event.attributes, event.json_data
    if event.data is not None and is_json(event.datacontenttype):
        return event.attributes, orjson.loads(event.data)
    return event.attributes, event.data


@pytest.mark.parametrize("mode", list(Mode))
def test_reply_round_trips_through_decode(mode: Mode) -> None:
    """decode(encode(reply)) gives back the reply, in every mode."""
    event = reply_event(
        replyid="c-1", traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )
    decoded = decode(*encoded_request(mode, [event]))
    assert decoded.mode is mode
    assert [canonical(e) for e in decoded.events] == [canonical(event)]


header_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)
names = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True).filter(
    lambda n: (
        n
        not in {
            "data",
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "datacontenttype",
            "dataschema",
            "subject",
        }
    )
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Arbitrary valid 1.0 events with string extensions and JSON data."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(header_text),
        "source": draw(st.from_regex(r"/[A-Za-z0-9/._~-]{0,20}", fullmatch=True)),
        "type": draw(header_text),
        "datacontenttype": "application/json",
    }
    if draw(st.booleans()):
        attributes["subject"] = draw(header_text)
    for name in draw(st.lists(names, max_size=3, unique=True)):
        attributes[name] = draw(header_text)
    data = draw(st.one_of(st.none(), json_values))
    return Event(attributes, None if data is None else orjson.dumps(data))


@settings(max_examples=60, deadline=None)
@given(event=events(), mode=st.sampled_from(list(Mode)))
def test_decode_of_encode_is_identity(event: Event, mode: Mode) -> None:
    """For any valid event, decoding its encoding in any mode gives back the event."""
    decoded = decode(*encoded_request(mode, [event]))
    assert [canonical(e) for e in decoded.events] == [canonical(event)]


def test_event_without_data_encodes_without_a_data_member() -> None:
    """No data: no data or data_base64 member in the JSON format."""
    obj = to_json_object(Event(attrs()))
    assert "data" not in obj
    assert "data_base64" not in obj
    assert repr(NOTHING) == "NOTHING"
