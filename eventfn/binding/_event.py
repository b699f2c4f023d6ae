"""The CloudEvent record, its content modes and media types: what every other part shares."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from eventfn.core.errors import MalformedEvent, UnsupportedMediaType

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
