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

The implementation is in private modules (`_event`, `_attributes`, `_head`, `_decode`,
`_encode`); this module is the binding's API, and the one place the rest of the runtime and the
tests import it from.
"""

from __future__ import annotations

from eventfn.binding._attributes import check_time
from eventfn.binding._decode import (
    decode,
    decode_batch,
    decode_head,
    decode_structured,
    event_from_json,
    loads,
)
from eventfn.binding._encode import (
    check_binary,
    encode_header_value,
    to_batch,
    to_binary,
    to_json_object,
    to_structured,
)
from eventfn.binding._event import (
    BATCH,
    JSON,
    NOTHING,
    SPEC_V03,
    SPEC_V1,
    STRUCTURED,
    UTF8,
    Event,
    Mode,
    Request,
    Unencodable,
    is_json,
    media_type,
)
from eventfn.binding._head import Head, is_plain_json, prefers_reply, read_head

__all__ = [
    "BATCH",
    "JSON",
    "NOTHING",
    "SPEC_V03",
    "SPEC_V1",
    "STRUCTURED",
    "UTF8",
    "Event",
    "Head",
    "Mode",
    "Request",
    "Unencodable",
    "check_binary",
    "check_time",
    "decode",
    "decode_batch",
    "decode_head",
    "decode_structured",
    "encode_header_value",
    "event_from_json",
    "is_json",
    "is_plain_json",
    "loads",
    "media_type",
    "prefers_reply",
    "read_head",
    "to_batch",
    "to_binary",
    "to_json_object",
    "to_structured",
]
