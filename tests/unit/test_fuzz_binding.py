"""Property tests: whatever a caller sends, the binding answers with an event or our own 4xx."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventfn.binding import (
    BATCH,
    STRUCTURED,
    Event,
    Mode,
    decode,
    to_batch,
    to_binary,
    to_structured,
)
from eventfn.core.errors import ClientError

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ATTRIBUTES = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "dataschema",
    "schemaurl",
    "datacontenttype",
    "datacontentencoding",
    "data",
    "data_base64",
    "traceparent",
    "Bad-Name",
    "x",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "text/plain",
    STRUCTURED,
    f"{STRUCTURED}; charset=utf-8",
    f"{STRUCTURED}; charset=utf-16",
    BATCH,
    "application/cloudevents+xml",
    "application/cloudevents",
    "",
    ";;;==",
]

header_names = st.one_of(
    st.sampled_from(ATTRIBUTES).map(lambda a: f"ce-{a}".encode()),
    st.just(b"content-type"),
    st.binary(min_size=1, max_size=20).map(bytes.lower),
)
header_values = st.one_of(
    st.sampled_from([b"1.0", b"0.3", b"2.0", b"", b"%", b"%zz", b"%C3%A9", b"%FF", b"/src"]),
    st.sampled_from(CONTENT_TYPES).map(str.encode),
    st.text(max_size=40).map(lambda t: t.encode("utf-8")),
    st.binary(max_size=40),
)
headers = st.lists(st.tuples(header_names, header_values), max_size=12)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
attribute_values = st.one_of(
    json_values,
    st.sampled_from(["1.0", "0.3", "", "2026-11-25T12:00:00Z", "2026-13-45T99:00:00Z"]),
    st.sampled_from(["https://example.com/schema", "not a uri", "aGVsbG8=", "!!!"]),
    st.integers(min_value=-(2**40), max_value=2**40),
)
events = st.dictionaries(st.sampled_from(ATTRIBUTES), attribute_values, max_size=10)
valid_core = st.fixed_dictionaries(
    {"specversion": st.sampled_from(["1.0", "0.3"]), "id": st.just("1"), "source": st.just("/s")},
    optional={"type": st.text(min_size=1, max_size=10)},
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(orjson.dumps),
    events.map(orjson.dumps),
    st.lists(events, max_size=5).map(orjson.dumps),
    st.tuples(valid_core, events).map(lambda pair: orjson.dumps({**pair[1], **pair[0]})),
)


def decode_or_client_error(raw_headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    """decode(), with ClientError as the only acceptable failure."""
    try:
        return decode(raw_headers, body, max_batch=3)
    except ClientError:
        return None


@FUZZ
@given(headers, bodies)
def test_any_binary_request_decodes_or_is_a_client_error(
    raw_headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Random headers and bodies: an event, or a ClientError; nothing else escapes."""
    decode_or_client_error(raw_headers, body)


@FUZZ
@given(st.sampled_from([STRUCTURED, BATCH]), bodies)
def test_any_json_format_body_decodes_or_is_a_client_error(content_type: str, body: bytes) -> None:
    """Random structured and batched bodies: an event, or a ClientError."""
    decode_or_client_error([(b"content-type", content_type.encode())], body)


@FUZZ
@given(headers, bodies)
def test_decoded_events_survive_a_round_trip(
    raw_headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Whatever decodes, encoded again in its own mode, decodes to the same attributes."""
    request = decode_or_client_error(raw_headers, body)
    if request is None:
        return
    events: tuple[Event, ...] = request.events
    if request.mode is Mode.BINARY:
        out_headers, out_body = to_binary(events[0])
        if "datacontenttype" not in events[0].attributes:
            out_headers.append((b"content-type", b"application/json"))
    elif request.mode is Mode.STRUCTURED:
        out_headers, out_body = [(b"content-type", STRUCTURED.encode())], to_structured(events[0])
    else:
        out_headers, out_body = [(b"content-type", BATCH.encode())], to_batch(events)
    again = decode(out_headers, out_body, max_batch=3)
    expected = [dict(e.attributes) for e in events]
    if request.mode is Mode.BINARY and "datacontenttype" not in events[0].attributes:
        expected[0]["datacontenttype"] = "application/json"
    assert [e.attributes for e in again.events] == expected
