"""The event catalogue: the CloudEvents types, which the function consumes, what each answers.

    EventSpec(type, model, consumes=True, reply=ANSWER)   consumed; the handler's result replies
    EventSpec(type, model, consumes=True)                 consumed, fire-and-forget: 202, no reply
    EventSpec(type, model)                                produced: a reply type or a published one

Everything that names an event type reads it from a catalogue: the ingress (what it accepts and
how it validates it), the facade (a route per consumed type), the WebSocket and its AsyncAPI
document, the JSON Schemas served and exported, and the rendered Knative manifests (a Trigger
per consumed type, an EventType per type). The function's catalogue lives in `schemas/`; the
registry of handlers is built on it (`Registry(catalogue)`), so the two cannot disagree.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from eventfn.core.policy import BROKER_DELIVERY, BrokerDelivery
from eventfn.routing.filters import Route

FACADE_PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One CloudEvents type: its payload model, whether the function consumes it, its reply.

    `name` is a short name for people: the consumed type is served by the facade at
    `/api/v1/<name>` and asked on the WebSocket with `{"type": "<name>", ...}`. Without it the
    facade route is `/api/v1/events/<type>` and the WebSocket message type is the event type.
    """

    type: str
    model: builtins.type[BaseModel]
    description: str
    consumes: bool = False
    reply: EventSpec | None = None
    name: str | None = None
    datacontenttype: str = "application/json"
    # The Triggers that deliver a consumed type: one per `Route` (eventfn.routing.filters), its
    # filters beside the type match. None: one Trigger matching the type alone.
    routes: tuple[Route, ...] = ()
    # How the broker redelivers this type (its Triggers' `delivery`); None: the function's
    # default policy (`eventfn.core.policy.BROKER_DELIVERY`).
    delivery: BrokerDelivery | None = None

    def __post_init__(self) -> None:
        if self.delivery is not None and not self.consumes:
            raise ValueError(f"{self.type!r}: only a consumed type has a delivery policy")
        if self.routes and not self.consumes:
            raise ValueError(f"{self.type!r}: only a consumed type has routes (Triggers)")
        if len({r.name for r in self.routes}) != len(self.routes):
            raise ValueError(f"{self.type!r}: two routes share a name")
        if self.reply is not None and not self.consumes:
            raise ValueError(
                f"{self.type!r} has a reply type but is not consumed: "
                "only a consumed type is answered (set consumes=True)"
            )
        if self.name is not None and not self.consumes:
            raise ValueError(f"{self.type!r}: only a consumed type has a facade name")

    @property
    def slug(self) -> str:
        """A file- and URL-friendly name (dots become dashes, lowercase)."""
        return self.type.replace(".", "-").lower()

    @property
    def facade_path(self) -> str:
        """Where the facade answers this type synchronously (consumed types only)."""
        tail = self.name if self.name is not None else f"events/{self.type}"
        return f"{FACADE_PREFIX}/{tail}"

    @property
    def message_type(self) -> str:
        """The `type` of the WebSocket message that asks for this type to be handled."""
        return self.name if self.name is not None else self.type

    def json_schema(self) -> dict[str, Any]:
        """The payload's JSON Schema (draft 2020-12), titled and identified by the event type."""
        schema: dict[str, Any] = self.model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = self.type
        schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class Catalogue(Mapping[str, EventSpec]):
    """All event types of the function, by type name: the specs given and their reply types.

    The first consumed spec is the default type: what a plain JSON `POST /` and a WebSocket
    message without `type` ask for.
    """

    specs: tuple[EventSpec, ...]
    _by_type: dict[str, EventSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type: dict[str, EventSpec] = {}
        names: dict[str, str] = {}
        for spec in self.specs:
            for s in (spec, spec.reply):
                if s is None:
                    continue
                if by_type.get(s.type, s) is not s:
                    raise ValueError(f"event type {s.type!r} is defined twice")
                by_type[s.type] = s
                if s.consumes and names.setdefault(s.message_type, s.type) != s.type:
                    raise ValueError(f"two consumed types are named {s.message_type!r}")
        object.__setattr__(self, "_by_type", by_type)

    def __getitem__(self, key: str) -> EventSpec:
        return self._by_type[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)

    @property
    def consumed(self) -> tuple[EventSpec, ...]:
        """Types the function accepts on its ingress, facade and WebSocket."""
        return tuple(s for s in self._by_type.values() if s.consumes)

    @property
    def produced(self) -> tuple[EventSpec, ...]:
        """Types the function emits: the replies, and the types it publishes on its own."""
        replies = {s.reply.type for s in self.consumed if s.reply is not None}
        return tuple(s for s in self._by_type.values() if s.type in replies or not s.consumes)

    @property
    def deliveries(self) -> tuple[BrokerDelivery, ...]:
        """The delivery policy of every consumed type (the default where it sets none)."""
        return tuple(s.delivery or BROKER_DELIVERY for s in self.consumed)

    @property
    def default(self) -> EventSpec | None:
        """The first consumed type (None when the function consumes nothing)."""
        consumed = self.consumed
        return consumed[0] if consumed else None
