"""Which coroutine handles which event type.

A registry is built on the function's catalogue (`Registry(CATALOGUE)`) and carries it: the app
factory takes the catalogue from the registry, so the two cannot disagree. Registering a handler
for a type the catalogue does not hold, or does not consume, fails at import; a consumed type
without a handler fails when the app is built, instead of answering 400 in production.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from eventfn.dispatch.catalogue import Catalogue, EventSpec

# A handler takes the validated payload and returns the reply payload (or None: nothing to say).
Handler = Callable[[Any], Awaitable[BaseModel | None]]
# Progress-capable handlers (only the WebSocket shows their progress; other doors ignore it):
#   async def h(payload, progress: Progress) -> Reply | None     calls progress(item) as it goes
#   async def h(payload) -> AsyncIterator[Any]                   yields items, then the Reply
# An item is any JSON-able value or model; in the generator form the first yielded instance of
# the reply model is the result and ends the handler.
Progress = Callable[[Any], None]
AnyHandler = TypeVar("AnyHandler", bound=Callable[..., Any])


def _ignore(_item: Any) -> None:
    """The progress callback of callers that do not show progress."""


def handler_kind(func: Callable[..., Any]) -> str:
    """`plain`, `callback` (takes a `progress` argument) or `generator` (an async generator)."""
    if inspect.isasyncgenfunction(func):
        return "generator"
    return "callback" if "progress" in inspect.signature(func).parameters else "plain"


@dataclass(frozen=True, slots=True)
class Route:
    """A consumed event type bound to its handler."""

    spec: EventSpec
    handler: Callable[..., Any]
    kind: str = "plain"

    def run(
        self, payload: Any, progress: Progress | None = None
    ) -> Coroutine[Any, Any, BaseModel | None]:
        """Run the handler, whatever its form, reporting progress to `progress` if given.

        A plain handler's own coroutine is returned as it is: wrapping it in another one would
        cost every event a coroutine frame for nothing.
        """
        if self.kind == "plain":
            work: Coroutine[Any, Any, BaseModel | None] = self.handler(payload)  # not cast: a call
            return work
        return self._run_reporting(payload, progress or _ignore)

    async def _run_reporting(self, payload: Any, report: Progress) -> BaseModel | None:
        if self.kind == "callback":
            return cast(BaseModel | None, await self.handler(payload, progress=report))
        stream = self.handler(payload)
        try:
            reply = self.spec.reply
            async for item in stream:
                if reply is not None and isinstance(item, reply.model):
                    return item
                report(item)
        finally:
            await stream.aclose()
        return None

    @property
    def reply(self) -> EventSpec | None:
        """The reply type of the route's event type (None: fire-and-forget, answered 202)."""
        return self.spec.reply


class Registry:
    """The handlers of a catalogue's consumed types, collected with `@registry.handles(SPEC)`."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._handlers: dict[str, Callable[..., Any]] = {}

    def handles(self, spec: EventSpec) -> Callable[[AnyHandler], AnyHandler]:
        """Register the decorated coroutine function as the handler of `spec`."""
        if self.catalogue.get(spec.type) is not spec:
            raise LookupError(
                f"{spec.type!r} is not in this registry's catalogue: add its EventSpec to the "
                "Catalogue the Registry was built with"
            )
        if not spec.consumes:
            raise ValueError(
                f"{spec.type!r} is not consumed by the function, so nothing calls its handler: "
                "declare it with consumes=True"
            )

        def register(func: AnyHandler) -> AnyHandler:
            if spec.type in self._handlers:
                raise ValueError(f"{spec.type!r} already has a handler")
            self._handlers[spec.type] = func
            return func

        return register

    def routes(self) -> Mapping[str, Route]:
        """Routes for every consumed type of the catalogue; LookupError if one has no handler."""
        missing = [s.type for s in self.catalogue.consumed if s.type not in self._handlers]
        if missing:
            raise LookupError(
                f"consumed event types without a handler: {missing}; register one with "
                "@registry.handles(SPEC)"
            )
        return {
            spec.type: Route(spec, func, handler_kind(func))
            for spec in self.catalogue.consumed
            for func in (self._handlers[spec.type],)
        }
