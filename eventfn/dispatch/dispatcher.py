"""From a decoded event to its reply: route by type, validate the payload, dedupe, run the handler.

No HTTP here: the ingress, the facade and the WebSocket all come through this module, so the same
payload gets the same validation, the same handler and the same errors whichever door it used.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from eventfn.binding import NOTHING, Event, is_json
from eventfn.core.config import Settings
from eventfn.core.errors import (
    Conflict,
    FunctionError,
    HandlerFailed,
    HandlerTimeout,
    SchemaViolation,
    StoreUnavailable,
    UnknownEventType,
    UnsupportedMediaType,
)
from eventfn.dispatch.budget import Renewal, run_within
from eventfn.dispatch.catalogue import Catalogue
from eventfn.dispatch.context import EventContext
from eventfn.dispatch.registry import Progress, Route
from eventfn.dispatch.replies import Replies
from eventfn.observability.logs import get_logger
from eventfn.observability.metrics import Metrics
from eventfn.stores.dedupe import DedupeStore, Reply, State
from eventfn.stores.records import event_key

# Extensions copied from a request to its reply: the distributed-tracing extension.
_TRACE_EXTENSIONS = ("traceparent", "tracestate")

log = get_logger("eventfn.dispatch.dispatcher")
T = TypeVar("T")
# Makes the events a handler emitted durable (the publisher's write-ahead) and sends them in the
# background; raises StoreUnavailable when they cannot be kept. None without K_SINK.
Emit = Callable[[Sequence[Event]], Awaitable[None]]


def validation_errors(exc: ValidationError, prefix: str = "data") -> list[dict[str, Any]]:
    """Pydantic's errors as problem+json items; input values are left out on purpose."""
    return [
        {
            "loc": [prefix, *err["loc"]] if prefix else list(err["loc"]),
            "msg": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


@dataclass(slots=True)  # not frozen: see eventfn.binding.Event
class Outcome:
    """How one event was answered."""

    reply: Event | None
    outcome: str  # "ok", "duplicate" or "no-reply"

    @property
    def status(self) -> int:
        return 200 if self.reply is not None else 202


class Dispatcher:
    """Routes events to their handlers; shared by every door into the function."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        dedupe: DedupeStore,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        observe: Callable[[Event], None] | None = None,
        catalogue: Catalogue,
        emit: Emit | None = None,
        function_settings: Any = None,
        http: Callable[[], Any] | None = None,
    ) -> None:
        self.routes = dict(routes)
        # Builds every reply and answer event (this function's EVENT_SOURCE).
        self.replies = Replies(settings.event_source)
        # What a handler's EventContext carries (built only for handlers that ask for one).
        self.catalogue = catalogue
        self.emit = emit
        self.function_settings = function_settings
        self.http = http
        self.state: Any = None  # what the function's lifespan yielded, once it runs
        self.dedupe = dedupe
        self._source = settings.event_source
        self._timeout = settings.handler_timeout_seconds
        # A handler that suspends renews its claim three times a lease (see `_keep_claim`).
        self._renew_every = settings.dedupe_lease_seconds / 3
        self._accepted = sorted(self.routes)
        # Handler durations by type go there (GET /metrics).
        self.metrics = metrics
        # Sees every handled event and its reply (the live feed's `offer`); must not block.
        self.observe = observe

    def route(self, event_type: str) -> Route:
        """The route of `event_type`, or UnknownEventType listing the accepted types."""
        route = self.routes.get(event_type)
        if route is None:
            raise UnknownEventType(
                f"no handler for event type {event_type!r}",
                accepted_types=self._accepted,
            )
        return route

    def validate(self, route: Route, event: Event) -> BaseModel:
        """The event's payload as its route's model, or a 415/400 error."""
        content_type = event.attributes.get("datacontenttype")
        if content_type is not None and not is_json(content_type):
            raise UnsupportedMediaType(
                f"{route.spec.type} carries JSON; datacontenttype {event.datacontenttype!r} "
                "is not a JSON media type",
            )
        # The model's validator itself: `model_validate_json` adds a Python call with keywords.
        validator = route.spec.model.__pydantic_validator__
        try:
            payload: BaseModel  # what the validator of a model returns (typing.cast is a call)
            if event.json_data is not NOTHING:
                payload = validator.validate_python(event.json_data)
                return payload
            if event.data is not None:
                payload = validator.validate_json(event.data)
                return payload
        except ValidationError as exc:
            raise SchemaViolation(
                f"the data of {route.spec.type} does not match its schema",
                validation_errors(exc),
            ) from None
        raise SchemaViolation(
            f"{route.spec.type} requires data and the event carries none",
            [{"loc": ["data"], "msg": "Field required", "type": "missing"}],
        )

    async def call(
        self,
        route: Route,
        payload: BaseModel,
        progress: Progress | None = None,
        *,
        event: Event | None = None,
        claim: str | None = None,
        context: EventContext | None = None,
    ) -> BaseModel | None:
        """Run the handler within its time budget.

        A `Reject` or `Retry` it raises (any error of the function's tree) is its answer and
        keeps its status; anything else becomes a `HandlerFailed` 500 that discloses nothing.
        `event`, when the payload came in one, names it in the log lines of a failure; `claim`,
        the dedupe key it holds, is renewed while the handler works; `context` is what a
        handler that asks for an EventContext gets.
        """
        started = time.perf_counter()
        try:
            if claim is None:
                result = await run_within(self._timeout, route.run(payload, progress, context))
            else:
                coro = route.run(payload, progress, context)
                result = await run_within(self._timeout, coro, self._keep_claim, claim)
        except TimeoutError:
            raise HandlerTimeout(
                f"the handler of {route.spec.type} did not finish within {self._timeout:g}s",
            ) from None
        except FunctionError as exc:
            (log.warning if exc.status_code >= 500 else log.info)(
                "handler_refused",
                type=route.spec.type,
                id=event.id if event is not None else None,
                source=event.source if event is not None else None,
                status=exc.status_code,
                problem=exc.problem,
                detail=exc.detail,
            )
            raise
        except Exception as exc:
            log.exception(
                "handler_failed",
                type=route.spec.type,
                id=event.id if event is not None else None,
                source=event.source if event is not None else None,
                error=type(exc).__name__,
            )
            raise HandlerFailed(f"the handler of {route.spec.type} failed") from None
        finally:
            if self.metrics is not None:
                self.metrics.handled(route.spec.type, time.perf_counter() - started)
        if result is None:
            return result
        reply = route.spec.reply
        if reply is not None and isinstance(result, reply.model):
            return result
        log.error("handler_bad_result", type=route.spec.type, result=type(result).__name__)
        if reply is None:
            raise HandlerFailed(
                f"the handler of {route.spec.type} returned a result, but the type has no reply"
            )
        raise HandlerFailed(f"the handler of {route.spec.type} returned an invalid reply")

    async def handle(self, event: Event, route: Route, payload: BaseModel) -> Outcome:
        """Handle one validated event exactly once: replay, 409, or run the handler."""
        key = event_key(event.source, event.id)
        fingerprint = hashlib.blake2b(
            payload.__pydantic_serializer__.to_json(payload), digest_size=16
        ).hexdigest()
        claim = await self.dedupe.claim(key, fingerprint)
        if claim.state is State.DONE:
            assert claim.reply is not None  # noqa: S101 - DONE always carries the reply
            if claim.fingerprint != fingerprint:
                # Same identity, different payload: the producer broke the CloudEvents contract.
                # The first answer stands (the event was handled once); the mismatch is logged.
                log.warning(
                    "producer_error_payload_changed",
                    id=event.id,
                    source=event.source,
                    type=event.type,
                )
            stored = claim.reply
            if stored.time is None or stored.data is None:
                return Outcome(None, "duplicate")
            # The same reply again: same id, time and data; the rest follows from the request.
            return Outcome(
                self.replies.event(event, route.spec, stored.data, stored.time), "duplicate"
            )
        if claim.state is State.IN_PROGRESS:
            raise Conflict(
                f"event {event.id!r} from {event.source!r} is being handled; retry later",
                retry_after=1,
            )
        context = None if route.context is None else self.context_of(event)
        try:
            result = await self.call(route, payload, event=event, claim=key, context=context)
            reply = None if result is None else self.replies.to(event, route.spec, result)
            if context is not None and context.emitted:
                # Durable before the claim completes: a crash from here on reruns the handler,
                # which emits the same ids again; a redelivery after `complete` emits nothing.
                await self._write_emitted(context)
        except BaseException:
            await self.dedupe.release(key)
            raise
        # What a redelivery needs to get the same reply: its time and data (see Reply).
        stored = (
            Reply(None, None, fingerprint)
            if reply is None
            else Reply(reply.attributes["time"], reply.data, fingerprint)
        )
        try:
            await self.dedupe.complete(key, stored)
        except StoreUnavailable:
            # The handler ran: answering 503 now would make the broker run it again at once.
            # The reply goes out; the claim stays until its lease ends, so a redelivery in
            # that window gets 409 rather than a second run.
            log.exception(
                "dedupe_complete_failed", id=event.id, source=event.source, type=event.type
            )
        if self.observe is not None:
            self.observe(event)
            if reply is not None:
                self.observe(reply)
        return Outcome(reply, "ok" if reply is not None else "no-reply")

    async def ask(
        self,
        route: Route,
        payload: BaseModel,
        progress: Progress | None = None,
        *,
        request_id: str,
        origin: str,
    ) -> BaseModel | None:
        """Handle a facade or WebSocket request `request_id` that came in through `origin`
        (never deduplicated): the handler, then what it emitted made durable."""
        context = None
        if route.context is not None:
            context = self._context(
                id=request_id, source=origin, type=route.spec.type, broker=False
            )
        result = await self.call(route, payload, progress, context=context)
        if context is not None and context.emitted:
            await self._write_emitted(context)
        return result

    def context_of(self, event: Event) -> EventContext:
        """The EventContext of a broker delivery `event`."""
        context: EventContext = EventContext.of_event(
            event, self.catalogue, self._source, **self._context_parts()
        )
        return context

    def _context(self, **attributes: Any) -> EventContext:
        return EventContext(
            **attributes,
            catalogue=self.catalogue,
            event_source=self._source,
            **self._context_parts(),
        )

    def _context_parts(self) -> dict[str, Any]:
        return {
            "settings": self.function_settings,
            "http": self.http,
            "state": self.state,
            "can_emit": self.emit is not None,
        }

    async def _write_emitted(self, context: EventContext) -> None:
        """Make what the handler emitted durable (the outbox), or fail the request: 503."""
        events = context.emitted
        # `EventContext.publish` refuses to collect anything without a sink (can_emit).
        assert self.emit is not None  # noqa: S101
        await self.emit(events)
        if self.metrics is not None:
            self.metrics.events_emitted += len(events)

    def _keep_claim(self, key: str) -> Callable[[], None]:
        """Renew the claim on `key` while its handler works; returns what stops renewing."""
        dedupe = self.dedupe

        async def renew() -> None:
            try:
                if not await dedupe.renew(key):
                    log.warning("dedupe_claim_lost", key=key)
            except StoreUnavailable:
                pass  # logged by the store; the next tick tries again within the lease

        return Renewal(self._renew_every, renew).stop
