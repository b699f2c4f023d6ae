"""Which coroutine handles which event type.

A registry is built on the function's catalogue (`Registry(CATALOGUE)`) and carries it: the app
factory takes the catalogue from the registry, so the two cannot disagree. Registering a handler
for a type the catalogue does not hold, or does not consume, fails at import; a consumed type
without a handler fails when the app is built, instead of answering 400 in production.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel

from eventfn.dispatch.catalogue import Catalogue, EventSpec
from eventfn.dispatch.context import EventContext

if TYPE_CHECKING:  # `schemas/` imports this module: pydantic-settings waits for the app
    from pydantic_settings import BaseSettings

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


def context_parameter(func: Callable[..., Any]) -> str | None:
    """The name of `func`'s parameter annotated `EventContext`, if it has one.

    Read once, at registration (as FastAPI reads a route's signature): string annotations
    (`from __future__ import annotations`) are resolved in the handler's module. Any parameter
    after the payload that is neither `progress` nor the context must have a default: nothing
    else is passed, and a handler that cannot be called fails here rather than on an event.
    """
    try:
        signature = inspect.signature(func, eval_str=True)
    except NameError as exc:
        raise TypeError(
            f"the annotations of handler {func.__qualname__} do not resolve: {exc}"
        ) from None
    params = list(signature.parameters.values())
    if not params or params[0].kind not in _POSITIONAL:
        raise TypeError(f"handler {func.__qualname__} must take the payload as its first argument")
    found = None
    for param in params[1:]:
        if param.annotation is EventContext:
            found = param.name
        elif (
            param.name != "progress"
            and param.default is inspect.Parameter.empty
            and (
                param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            )
        ):
            raise TypeError(
                f"handler {func.__qualname__}: nothing is passed to {param.name!r}; a handler "
                "takes the payload, and optionally `progress` and a parameter annotated "
                "EventContext"
            )
    return found


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True, slots=True)
class Route:
    """A consumed event type bound to its handler."""

    spec: EventSpec
    handler: Callable[..., Any]
    kind: str = "plain"
    # The handler's parameter annotated EventContext (None: it asks for none, none is built).
    context: str | None = None

    def run(
        self, payload: Any, progress: Progress | None = None, context: EventContext | None = None
    ) -> Coroutine[Any, Any, BaseModel | None]:
        """Run the handler, whatever its form, reporting progress to `progress` if given.

        A plain handler's own coroutine is returned as it is: wrapping it in another one would
        cost every event a coroutine frame for nothing.
        """
        if self.kind == "plain":
            if self.context is None:
                work: Coroutine[Any, Any, BaseModel | None] = self.handler(payload)  # not cast
                return work
            return cast(
                Coroutine[Any, Any, BaseModel | None],
                self.handler(payload, **{self.context: context}),
            )
        return self._run_reporting(payload, progress or _ignore, context)

    async def _run_reporting(
        self, payload: Any, report: Progress, context: EventContext | None
    ) -> BaseModel | None:
        extra = {} if self.context is None else {self.context: context}
        if self.kind == "callback":
            return cast(BaseModel | None, await self.handler(payload, progress=report, **extra))
        stream = self.handler(payload, **extra)
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

    def __init__(self, catalogue: Catalogue, *, settings: type[BaseSettings] | None = None) -> None:
        self.catalogue = catalogue
        # The function's own settings model: built (so validated) when the app is, handed to
        # handlers as `ctx.settings`, rendered into the ConfigMap by `make manifests`.
        self.settings = settings
        self._handlers: dict[str, Route] = {}
        self._lifespan: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None

    def lifespan(
        self, func: Callable[[Any], AsyncIterator[Any]]
    ) -> Callable[[Any], AsyncIterator[Any]]:
        """Register the function's own start-up and shutdown, an async generator of its settings:

            @registry.lifespan
            async def clients(settings: OrderSettings) -> AsyncIterator[Clients]:
                async with PricingClient(settings.pricing_url) as pricing:
                    yield Clients(pricing)      # handlers see it as `ctx.state`

        It runs before readiness turns true (an exception stops the start-up) and resumes after
        the drain, once the last request has been answered.
        """
        if self._lifespan is not None:
            raise ValueError("the registry has a lifespan already: one per function")
        if not inspect.isasyncgenfunction(func):
            raise TypeError(f"{func.__qualname__} must be an async generator function (yield)")
        self._lifespan = contextlib.asynccontextmanager(func)
        return func

    def open_lifespan(self, settings: Any) -> AbstractAsyncContextManager[Any]:
        """The function's lifespan around `settings` (a no-op one when none is registered)."""
        if self._lifespan is None:
            return contextlib.nullcontext()
        return self._lifespan(settings)

    def build_settings(self) -> Any:
        """The function's own settings, read from the environment now; None without a model.

        A bad value stops the start-up with pydantic's message naming the variable.
        """
        return None if self.settings is None else self.settings()

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
            # The signature is read here, once: a handler that cannot be called fails at import.
            self._handlers[spec.type] = Route(
                spec, func, handler_kind(func), context_parameter(func)
            )
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
        return {spec.type: self._handlers[spec.type] for spec in self.catalogue.consumed}
