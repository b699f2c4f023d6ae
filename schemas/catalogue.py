"""The event catalogue: the one place that names event types.

Every part of the function that mentions an event type reads it from here: the ingress (which
types it accepts and how to validate them), the facade, the JSON Schemas it serves and exports,
and the rendered Knative manifests (one Trigger per consumed type, one EventType per type).

Adding an event type: a Pydantic model, an `EventSpec` below, a handler registered for it in
`handler/functions.py`, then `make manifests`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas.query import QueryRequest, QueryResponse


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One CloudEvents type: its payload model and, for consumed types, the type of its reply."""

    type: str
    model: builtins.type[BaseModel]
    description: str
    reply: EventSpec | None = None
    datacontenttype: str = "application/json"

    @property
    def slug(self) -> str:
        """A file- and URL-friendly name (dots become dashes, lowercase)."""
        return self.type.replace(".", "-").lower()

    def json_schema(self) -> dict[str, Any]:
        """The payload's JSON Schema (draft 2020-12), titled and identified by the event type."""
        schema: dict[str, Any] = self.model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = self.type
        schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class Catalogue(Mapping[str, EventSpec]):
    """All event types of the function, by type name."""

    specs: tuple[EventSpec, ...]
    _by_type: dict[str, EventSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type: dict[str, EventSpec] = {}
        for spec in self.specs:
            for s in (spec, spec.reply):
                if s is None:
                    continue
                if by_type.get(s.type, s) is not s:
                    raise ValueError(f"event type {s.type!r} is defined twice")
                by_type[s.type] = s
        object.__setattr__(self, "_by_type", by_type)

    def __getitem__(self, key: str) -> EventSpec:
        return self._by_type[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)

    @property
    def consumed(self) -> tuple[EventSpec, ...]:
        """Types the function accepts on its ingress (those with a reply type)."""
        return tuple(s for s in self.specs if s.reply is not None)

    @property
    def produced(self) -> tuple[EventSpec, ...]:
        """Types the function emits: replies and published events."""
        return tuple(dict.fromkeys(s.reply for s in self.specs if s.reply is not None))


QUERY_RESPONSE = EventSpec(
    type="com.example.query.response",
    model=QueryResponse,
    description="The answer to a query, emitted as the reply to com.example.query.request "
    "and published to K_SINK for queries asked through the synchronous facade.",
)

QUERY_REQUEST = EventSpec(
    type="com.example.query.request",
    model=QueryRequest,
    description="A query for the query handler.",
    reply=QUERY_RESPONSE,
)

CATALOGUE = Catalogue((QUERY_REQUEST,))
