"""Context attributes: names, types and values checked per spec version (v1.0, v0.3)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from eventfn.binding._event import _CORE, _REQUIRED, SPEC_V03, SPEC_V1
from eventfn.core.errors import MalformedEvent

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
# Unicode whitespace: exactly what str.isspace() accepts (both use Py_UNICODE_ISSPACE).
_SPACE = re.compile(r"\s")
# 19 digits in a row: where an integer beyond 64 bits may be (2**63 has 19 digits). orjson reads
# such an integer as a float, silently; a body holding such a run is read again exactly.
_LONG_DIGITS = re.compile(rb"\d{19}")
# What a Content-Type header may carry: visible ASCII, spaces and tabs (no CR, LF or NUL).
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
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


def _unescape(name: str, raw: bytes) -> str:
    """A percent-encoded header value, decoded (HTTP binding 3.1.3.2)."""
    if _BAD_ESCAPE.search(raw):
        raise MalformedEvent(f"header ce-{name} has an invalid percent-encoding")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEvent(f"header ce-{name} is not valid UTF-8 after decoding") from None


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
