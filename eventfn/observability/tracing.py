"""W3C trace context: taken from deliveries, put on log lines, replies and outgoing calls.

A delivery carries the trace it belongs to in two places: the CloudEvents distributed-tracing
extension (`traceparent`/`tracestate` attributes, set by the producer and kept with the event)
and the HTTP `traceparent`/`tracestate` headers (set by the hop that delivered it: the broker).
The extension wins; the header is the fallback. Invalid values are ignored, never rejected: a
bad trace header must not dead-letter a good event.

While an event is handled, its trace context is in a context variable (`current()`), bound into
structlog's context variables (every log line of the event carries `trace_id`), copied onto the
reply event, and added to outgoing httpx requests by `inject_headers` (an httpx request hook).

OpenTelemetry is optional (the `otel` extra): with `OTEL_EXPORTER_OTLP_ENDPOINT` set, FastAPI's
native telemetry exports spans of the facade and health routes, and `ingress_span` opens a server
span per delivery on the ingress (which bypasses FastAPI's routing). Without it nothing of
OpenTelemetry is imported.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

# version-traceid-parentid-flags, lowercase hex (W3C Trace Context, section 3.2).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# tracestate: at most 32 list members, 512 characters kept at most (section 3.3).
_MAX_TRACESTATE = 512


class TraceContext(NamedTuple):
    """A valid W3C trace context."""

    traceparent: str
    tracestate: str | None
    trace_id: str
    parent_id: str
    sampled: bool


_current: ContextVar[TraceContext | None] = ContextVar("trace_context", default=None)


def parse(traceparent: Any, tracestate: Any = None) -> TraceContext | None:
    """The trace context of a `traceparent` (and `tracestate`), or None when invalid."""
    if not isinstance(traceparent, str):
        return None
    value = traceparent.strip()
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    # Version ff is invalid; version 00 has exactly four fields; later versions may add fields.
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return TraceContext(
        value, _tracestate(tracestate), trace_id, parent_id, bool(int(flags, 16) & 1)
    )


def _tracestate(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text: str = value.strip()
    if not text or len(text) > _MAX_TRACESTATE or text.count(",") >= 32:
        return None
    return text


def extract(
    headers: Sequence[tuple[bytes, bytes]], attributes: dict[str, Any] | None
) -> TraceContext | None:
    """The delivery's trace context: the event's extension, else the HTTP headers."""
    if attributes is not None and "traceparent" in attributes:
        found = parse(attributes["traceparent"], attributes.get("tracestate"))
        if found is not None:
            return found
    traceparent = tracestate = None
    for name, value in headers:
        if name == b"traceparent":
            traceparent = value.decode("latin-1")
        elif name == b"tracestate":
            tracestate = value.decode("latin-1")
    return None if traceparent is None else parse(traceparent, tracestate)


def adopt(attributes: dict[str, Any], context: TraceContext) -> None:
    """Give an event without the tracing extension the delivery's trace (copied to its reply)."""
    if "traceparent" not in attributes:
        attributes["traceparent"] = context.traceparent
        if context.tracestate is not None:
            attributes["tracestate"] = context.tracestate


@contextlib.contextmanager
def bound(context: TraceContext | None) -> Iterator[None]:
    """Make `context` current: in `current()` and on every structlog line meanwhile."""
    if context is None:
        yield
        return
    import structlog

    token = _current.set(context)
    tokens = structlog.contextvars.bind_contextvars(
        trace_id=context.trace_id, span_id=context.parent_id
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
        _current.reset(token)


def current() -> TraceContext | None:
    """The trace context of the event being handled, if any."""
    return _current.get()


def extensions() -> dict[str, str]:
    """The distributed-tracing extension attributes for an event published now."""
    context = _current.get()
    if context is None:
        return {}
    if context.tracestate is None:
        return {"traceparent": context.traceparent}
    return {"traceparent": context.traceparent, "tracestate": context.tracestate}


async def inject_headers(request: Any) -> None:
    """httpx request hook: pass the current trace on (`event_hooks={"request": [...]}`)."""
    context = _current.get()
    if context is None or "traceparent" in request.headers:
        return
    request.headers["traceparent"] = context.traceparent
    if context.tracestate is not None:
        request.headers["tracestate"] = context.tracestate


def telemetry_config(otlp_endpoint: str | None) -> dict[str, Any]:
    """FastAPI's `telemetry=` argument: OTLP export configured from the environment when set."""
    return {"auto_configure": bool(otlp_endpoint)}


@contextlib.contextmanager
def ingress_span(enabled: bool, context: TraceContext | None, path: str) -> Iterator[None]:
    """An OpenTelemetry server span for one delivery, child of its trace (no-op when disabled)."""
    if not enabled:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {} if context is None else {"traceparent": context.traceparent}
    if context is not None and context.tracestate is not None:
        carrier["tracestate"] = context.tracestate
    parent = TraceContextTextMapPropagator().extract(carrier)
    tracer = trace.get_tracer("eventfn.ingress.endpoint")
    with tracer.start_as_current_span(f"POST {path}", context=parent, kind=trace.SpanKind.SERVER):
        yield
