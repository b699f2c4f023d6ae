"""Reply identity and time: deterministic reply ids and RFC 3339 timestamps."""

from __future__ import annotations

import hashlib
import uuid

from eventfn.core.clock import iso_now
from eventfn.stores.records import event_key

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
