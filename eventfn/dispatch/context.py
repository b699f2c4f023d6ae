"""`EventContext`: what a handler may know of the event it handles, and how it emits events.

A handler asks for it with a parameter annotated `EventContext` (read once, at registration):

    @registry.handles(ORDER)
    async def place(order: Order, ctx: EventContext) -> Accepted:
        price = await ctx.http.get(settings.pricing_url, params={"sku": order.sku})
        await ctx.publish(INVENTORY_RESERVE, Reserve(sku=order.sku), subject=order.sku)
        return Accepted(order_id=ctx.idempotency_key)

Handlers that do not ask for one never get one built: the hot path pays nothing for it.

Emitted events are held here while the handler runs and leave only if it succeeds: the
dispatcher writes them ahead into the outbox (with the reply) before it answers, so an event
acknowledged is an event that will reach K_SINK, and a handler that fails emits nothing. Their
ids derive from the request's identity (source, id) and their position, so the retry of a
delivery whose handler ran but whose answer was lost (a crash, a 503) emits the same ids again
and the sink can drop the duplicates; a redelivery of a handled event emits nothing at all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from eventfn.binding import SPEC_V1, Event
from eventfn.dispatch.replies import rfc3339_now
from eventfn.stores.records import event_key

if TYPE_CHECKING:
    import httpx

    from eventfn.dispatch.catalogue import Catalogue, EventSpec

# Emitted event ids are UUIDv5 of the request's identity and the event's position, in a
# namespace of their own (a reply id is UUIDv5 of the identity alone, in another one).
EMIT_NAMESPACE = uuid.UUID("0c6f3a51-2f7e-5b1c-a3e4-7d4b9e2f6a18")
# Context attributes a handler may not set through `extensions`: the envelope is the runtime's.
_RESERVED = frozenset(
    {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema",
     "data", "data_base64", "traceparent", "tracestate"}
)  # fmt: skip
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
# The attributes of an event that are not extensions.
_CORE = frozenset({"specversion", "id", "source", "type", "time", "subject", "datacontenttype",
                   "dataschema"})  # fmt: skip


class UndeclaredEvent(LookupError):
    """`publish` was given a type the catalogue does not declare as produced."""


class EventContext:
    """The event being handled (or the facade/WebSocket request), and what the handler may use.

    Attributes:
        id: the event's id (a facade or WebSocket call: its request id).
        source: the event's source (a facade or WebSocket call: the route it came through).
        type: the event type being handled.
        subject: the event's `subject`, if any (None on the facade and the WebSocket).
        time: the event's `time`, if any (None on the facade and the WebSocket).
        extensions: the event's extension attributes, read-only (empty on the facade).
        traceparent: the W3C trace context of the event, if it carries one.
        tracestate: its `tracestate`, if any.
        idempotency_key: a key that is the same for every delivery of this event and differs
            between events: send it with downstream calls that must happen once.
        settings: the function's own settings (`Registry(..., settings=Model)`), or None.
        state: what the function's lifespan (`@registry.lifespan`) yielded, or None.
        broker: True for a broker delivery, False for a facade or WebSocket call.
    """

    __slots__ = (
        "_can_emit",
        "_catalogue",
        "_emitted",
        "_http",
        "_source_of_events",
        "broker",
        "extensions",
        "id",
        "idempotency_key",
        "settings",
        "source",
        "state",
        "subject",
        "time",
        "traceparent",
        "tracestate",
        "type",
    )

    def __init__(
        self,
        *,
        id: str,
        source: str,
        type: str,
        catalogue: Catalogue,
        event_source: str,
        subject: str | None = None,
        time: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
        settings: Any = None,
        http: Any = None,
        state: Any = None,
        can_emit: bool = True,
        broker: bool = True,
    ) -> None:
        self.id = id
        self.source = source
        self.type = type
        self.subject = subject
        self.time = time
        self.extensions: Mapping[str, Any] = MappingProxyType(dict(extensions or {}))
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.idempotency_key = str(uuid.uuid5(EMIT_NAMESPACE, event_key(source, id)))
        self.settings = settings
        self.state = state
        self.broker = broker
        self._can_emit = can_emit
        self._catalogue = catalogue
        self._source_of_events = event_source
        self._http = http
        self._emitted: list[Event] = []

    @classmethod
    def of_event(cls, event: Event, catalogue: Catalogue, event_source: str, **kw: Any) -> Any:
        """The context of a broker delivery."""
        attributes = event.attributes
        return cls(
            id=event.id,
            source=event.source,
            type=event.type,
            subject=attributes.get("subject"),
            time=attributes.get("time"),
            extensions={k: v for k, v in attributes.items() if k not in _CORE},
            traceparent=attributes.get("traceparent"),
            tracestate=attributes.get("tracestate"),
            catalogue=catalogue,
            event_source=event_source,
            **kw,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The runtime's outgoing HTTP client: the event's trace context on every request, the
        `OUTGOING_TIMEOUT_SECONDS` timeout, a metric per host; closed when the function stops."""
        if self._http is None:
            raise RuntimeError("no outgoing HTTP client: the function's runtime is not running")
        client: httpx.AsyncClient = self._http()
        return client

    @property
    def emitted(self) -> tuple[Event, ...]:
        """The events `publish` collected so far, in order."""
        return tuple(self._emitted)

    async def publish(
        self,
        spec: EventSpec,
        payload: BaseModel,
        *,
        subject: str | None = None,
        extensions: Mapping[str, str | int | bool] | None = None,
    ) -> str:
        """Emit an event of the produced type `spec` carrying `payload`; returns its id.

        It leaves when the handler has succeeded, through the publisher (outbox, retries, the
        OIDC token, K_CE_OVERRIDES, trace context); if the handler fails, it never leaves.
        """
        declared = self._catalogue.get(spec.type)
        if declared is not spec or spec not in self._catalogue.produced:
            raise UndeclaredEvent(
                f"{spec.type!r} is not a produced type of the catalogue: add its EventSpec "
                "(consumes=False) to the Catalogue before a handler emits it"
            )
        if not self._can_emit:
            raise RuntimeError(
                f"cannot emit {spec.type!r}: K_SINK is not set (bind the function with a "
                "SinkBinding, or set K_SINK for a local run)"
            )
        if not isinstance(payload, spec.model):
            raise TypeError(
                f"{spec.type!r} carries {spec.model.__name__}, not {type(payload).__name__}"
            )
        position = len(self._emitted)
        attributes: dict[str, Any] = {
            "specversion": SPEC_V1,
            "id": str(uuid.uuid5(EMIT_NAMESPACE, f"{event_key(self.source, self.id)}/{position}")),
            "source": self._source_of_events,
            "type": spec.type,
            "time": rfc3339_now(),
            "datacontenttype": spec.datacontenttype,
        }
        if subject is not None:
            attributes["subject"] = subject
        for name, value in (extensions or {}).items():
            if name in _RESERVED or not _EXTENSION_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} cannot be an extension: 1 to 20 lowercase letters or digits, "
                    "not a context attribute"
                )
            attributes[name] = value
        if self.traceparent is not None:
            attributes["traceparent"] = self.traceparent
            if self.tracestate is not None:
                attributes["tracestate"] = self.tracestate
        self._emitted.append(Event(attributes, payload.__pydantic_serializer__.to_json(payload)))
        return str(attributes["id"])
