"""Which coroutine handles which event type.

The catalogue (in `schemas/`) says what types exist; this registry says who handles them. The app
factory checks at start-up that every consumed type of the catalogue has exactly one handler, so a
type added without its handler fails fast instead of answering 400 in production.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas import Catalogue, EventSpec

# A handler takes the validated payload and returns the reply payload (or None: nothing to say).
Handler = Callable[[Any], Awaitable[BaseModel | None]]


@dataclass(frozen=True, slots=True)
class Route:
    """A consumed event type bound to its handler."""

    spec: EventSpec
    handler: Handler

    @property
    def reply(self) -> EventSpec:
        assert self.spec.reply is not None  # noqa: S101 - guaranteed by Registry.routes
        return self.spec.reply


class Registry:
    """Collects handlers with the `@registry.handles(SPEC)` decorator."""

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[EventSpec, Handler]] = {}

    def handles(self, spec: EventSpec) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine function as the handler of `spec`."""

        def register(func: Handler) -> Handler:
            if spec.type in self._handlers:
                raise ValueError(f"{spec.type!r} already has a handler")
            self._handlers[spec.type] = (spec, func)
            return func

        return register

    def routes(self, catalogue: Catalogue) -> Mapping[str, Route]:
        """Routes for every consumed type of `catalogue`; raises if one has no handler."""
        routes: dict[str, Route] = {}
        for spec in catalogue.consumed:
            if spec.type not in self._handlers:
                raise LookupError(f"event type {spec.type!r} has no registered handler")
            routes[spec.type] = Route(spec, self._handlers[spec.type][1])
        unknown = set(self._handlers) - set(routes)
        if unknown:
            raise LookupError(f"handlers registered for types not in the catalogue: {unknown}")
        return routes
