"""How the stores name and keep events: identity keys and a byte-exact JSON document."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from eventfn.binding import NOTHING, Event


def dump_event(event: Event) -> dict[str, Any]:
    """`event` as a JSON-safe document that restores it byte for byte (`load_event`)."""
    data = event.data
    if data is None and event.json_data is not NOTHING:
        data = orjson.dumps(event.json_data)
    return {
        "attributes": event.attributes,
        "data": None if data is None else base64.b64encode(data).decode("ascii"),
    }


def load_event(doc: dict[str, Any]) -> Event:
    data = doc.get("data")
    return Event(dict(doc["attributes"]), None if data is None else base64.b64decode(data))


def event_key(source: str, event_id: str) -> str:
    """A store key for the event identity; length-prefixed so no two pairs can collide."""
    return f"{len(source)}:{source}{event_id}"
