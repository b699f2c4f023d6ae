"""The CloudEvents ingress: `POST /` from the Knative Broker, at the ASGI level.

This is the hot path, so the app hands it its path before FastAPI's middleware and routing: no
Request object, no dependency injection, no response classes. It reads the body within its limit,
lets the pure binding decode it, lets the dispatcher handle it, and writes the reply in the mode
the request came in. Everything else falls through to the FastAPI app.
"""

from __future__ import annotations

import time

from eventfn.binding import (
    BATCH,
    STRUCTURED,
    Event,
    Head,
    Mode,
    is_plain_json,
    read_head,
    to_batch,
    to_binary,
)
from eventfn.binding import to_structured as encode_structured
from eventfn.core.errors import (
    FunctionError,
    MethodNotAllowed,
    problem_response,
)
from eventfn.core.http import ASGIApp, ClientDisconnected, Receive, Scope, Send, send_response
from eventfn.dispatch.dispatcher import Outcome
from eventfn.ingress.deadline import BodyDeadline
from eventfn.ingress.request import read_events
from eventfn.observability.logs import HotLogger, get_logger
from eventfn.observability.tracing import TraceContext, adopt, bound, extract, ingress_span, parse
from eventfn.runtime import Runtime

log = get_logger("eventfn.ingress.endpoint")
# The one line per handled event (see HotLogger); warnings and errors go through `log`.
event_log = HotLogger("eventfn.ingress.endpoint")


def _trace_id(event: Event | None, scope: Scope) -> str | None:
    """The trace id of a rejected request, for its log line (validated like any trace)."""
    context = extract(scope["headers"], event.attributes if event is not None else None)
    return None if context is None else context.trace_id


def encode_outcomes(
    mode: Mode, outcomes: list[Outcome]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The HTTP response for the handled events, in the request's mode."""
    replies = [o.reply for o in outcomes if o.reply is not None]
    if not replies:
        return 202, [(b"content-length", b"0")], b""
    if mode is Mode.BINARY:
        headers, body = to_binary(replies[0])
    elif mode is Mode.STRUCTURED:
        headers, body = [(b"content-type", STRUCTURED.encode())], encode_structured(replies[0])
    else:
        headers, body = [(b"content-type", BATCH.encode())], to_batch(replies)
    headers.append((b"content-length", str(len(body)).encode()))
    return 200, headers, body


class Ingress:
    """The ASGI endpoint of `POST /`; `FunctionApp` sends it that path before any middleware."""

    def __init__(self, runtime: Runtime, *, plain_json: ASGIApp | None = None) -> None:
        self.runtime = runtime
        # Where a plain JSON request goes (see `is_plain_json`): the facade's default type.
        self._plain_json = plain_json if runtime.catalogue.default is not None else None
        self._limit = runtime.settings.max_body_bytes
        self._max_batch = runtime.settings.max_batch_events
        self._deadline = BodyDeadline(runtime.settings.body_timeout_seconds)
        self.metrics = runtime.metrics
        self._otel = bool(runtime.settings.otel_exporter_otlp_endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        metrics = self.metrics
        metrics.in_flight += 1
        events: tuple[Event, ...] = ()
        mode = None
        try:
            if scope["method"] != "POST":
                raise MethodNotAllowed(
                    f"{scope['method']} is not allowed on the CloudEvents ingress; use POST",
                    allow="POST",
                )
            head = read_head(scope["headers"])
            if self._plain_json is not None and is_plain_json(head):
                await self._plain_json(scope, receive, send)  # not a CloudEvent: the facade's
                return
            if self.runtime.delivery_auth is not None:
                await self.runtime.delivery_auth.check(scope)
            request = await read_events(head, receive, self._limit, self._max_batch, self._deadline)
            mode, events = request.mode, request.events
            trace = self._trace(head, events)
            if trace is None and not self._otel:
                outcomes = await self._handle(events, batch=mode is Mode.BATCH)
            else:
                outcomes = await self._handle_traced(events, mode is Mode.BATCH, trace)
            if not head.prefer_reply:
                outcomes = await self._unrequested(outcomes)
            status, headers, body = encode_outcomes(mode, outcomes)
            await send_response(send, status, headers, body)
        except ClientDisconnected:
            return
        except FunctionError as error:
            await self._reject(scope, send, error, events, mode, started)
            return
        except Exception:  # a bug of ours: answer like ServerErrorMiddleware would, in problem+json
            log.exception("ingress_bug")
            bug = FunctionError("the function failed unexpectedly; the event may be retried")
            await self._reject(scope, send, bug, events, mode, started)
            return
        finally:
            metrics.in_flight -= 1
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        for index, event in enumerate(events):
            outcome = outcomes[index]
            # The first event's trace is `trace`; the others carry theirs (the header's adopted).
            context = trace if index == 0 else extract((), event.attributes)
            metrics.event(event.type, mode, "duplicate" if outcome.outcome == "duplicate" else "ok")
            if outcome.reply is not None:
                metrics.replied(outcome.reply.type)
            event_log.info(
                "event",
                id=event.id,
                type=event.type,
                source=event.source,
                mode=mode,
                trace_id=None if context is None else context.trace_id,
                outcome=outcome.outcome,
                status=status,
                duration_ms=elapsed_ms,
            )

    async def _unrequested(self, outcomes: list[Outcome]) -> list[Outcome]:
        """The replies of a sender that did not say `Prefer: reply` (a source posting to the
        function, `kn event send`, a PingSource): it will not process them, so with K_SINK they
        are published there (durably, before the 202) and the answer carries none; without it
        they are answered as always, and counted."""
        replies = [o.reply for o in outcomes if o.reply is not None]
        if not replies:
            return outcomes
        publisher = self.runtime.publisher
        if publisher is None:
            self.metrics.replies_unrequested += len(replies)
            return outcomes
        for reply in replies:
            await publisher.enqueue(reply)
        self.metrics.replies_published += len(replies)
        return [Outcome(None, o.outcome) for o in outcomes]

    @staticmethod
    def _trace(head: Head, events: tuple[Event, ...]) -> TraceContext | None:
        """The first event's trace; events without the extension adopt the HTTP header's."""
        if head.traceparent is not None:
            delivery = parse(head.traceparent, head.tracestate)
            if delivery is not None:
                for event in events:
                    adopt(event.attributes, delivery)
        return extract((), events[0].attributes) if events else None

    async def _handle_traced(
        self, events: tuple[Event, ...], batch: bool, trace: TraceContext | None
    ) -> list[Outcome]:
        """`_handle` with the trace bound to every log line (and an OTel span when enabled)."""
        with bound(trace), ingress_span(self._otel, trace, "/"):
            return await self._handle(events, batch=batch)

    async def _handle(self, events: tuple[Event, ...], *, batch: bool) -> list[Outcome]:
        dispatcher = self.runtime.dispatcher
        # A batch is validated whole before any of its events is handled.
        if not batch:  # one event: no list of checked events to build
            event = events[0]
            route = dispatcher.route(event.type)
            return [await dispatcher.handle(event, route, dispatcher.validate(route, event))]
        checked = []
        for index, event in enumerate(events):
            try:
                route = dispatcher.route(event.type)
                checked.append((event, route, dispatcher.validate(route, event)))
            except FunctionError as error:
                error.detail = f"event [{index}]: {error.detail}"
                error.extensions["index"] = index
                raise
        return [await dispatcher.handle(e, r, p) for e, r, p in checked]

    async def _reject(
        self,
        scope: Scope,
        send: Send,
        error: FunctionError,
        events: tuple[Event, ...],
        mode: Mode | None,
        started: float,
    ) -> None:
        status, headers, body = problem_response(error, instance=scope["path"])
        await send_response(send, status, headers, body)
        first = events[0] if events else None
        log_method = log.warning if status >= 500 else log.info
        outcome = "failed" if status >= 500 else ("conflict" if status == 409 else "rejected")
        for event in events or (None,):
            self.metrics.event(event.type if event else None, mode, outcome)
        log_method(
            "event",
            id=first.id if first else None,
            type=first.type if first else None,
            source=first.source if first else None,
            mode=mode,
            batch=len(events) if len(events) > 1 else None,
            trace_id=_trace_id(first, scope),
            outcome=outcome,
            status=status,
            problem=error.problem,
            detail=error.detail,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
