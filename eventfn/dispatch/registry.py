"""Which coroutine handles which event type.

The catalogue (in `schemas/`) says what types exist; this registry says who handles them. The app
factory checks at start-up that every consumed type of the catalogue has exactly one handler, so a
type added without its handler fails fast instead of answering 400 in production.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel

from schemas import Catalogue, EventSpec

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
            async for item in stream:
                if isinstance(item, self.reply.model):
                    return item
                report(item)
        finally:
            await stream.aclose()
        return None

    @property
    def reply(self) -> EventSpec:
        assert self.spec.reply is not None  # noqa: S101 - guaranteed by Registry.routes
        return self.spec.reply


class Registry:
    """Collects handlers with the `@registry.handles(SPEC)` decorator."""

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[EventSpec, Callable[..., Any]]] = {}

    def handles(self, spec: EventSpec) -> Callable[[AnyHandler], AnyHandler]:
        """Register the decorated coroutine function as the handler of `spec`."""

        def register(func: AnyHandler) -> AnyHandler:
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
            func = self._handlers[spec.type][1]
            routes[spec.type] = Route(spec, func, handler_kind(func))
        unknown = set(self._handlers) - set(routes)
        if unknown:
            raise LookupError(f"handlers registered for types not in the catalogue: {unknown}")
        return routes
