"""Prometheus metrics: what the function did, counted on the hot path for a few nanoseconds.

The counters are plain Python numbers owned by one `Metrics` object per app (so tests can build
several apps side by side); prometheus-client is imported only when `/metrics` is first scraped,
and reads them through a custom collector registered in the app's own `CollectorRegistry` (never
the global one). All updates happen on the event loop thread, so plain `+=` is safe and costs a
fraction of a prometheus-client child's lock.

Cardinality is bounded: the `type` label takes the catalogue's types and `other`, `mode` the three
content modes and `unknown`, `outcome` the five outcomes below.

Calls other components make (all cheap, all synchronous; `runtime.metrics` is the object):

    metrics.published(ok)           Publisher.attempt: one delivery attempt to K_SINK
    metrics.dead_letter_stored()    DeadLetterSink: one dead letter stored

The open WebSockets, the outbox depth and what the live feed and the WebSocket dropped (slow
consumers) are read from their components' own counters at scrape time (`Runtime.sample`), so the
WebSocket, feed and outbox code never call `Metrics`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

OTHER = "other"
MODES = ("binary", "structured", "batch", "unknown")
# ok: handled (replied or 202); duplicate: a stored reply replayed; rejected: 4xx, not retried;
# conflict: 409, the same event in progress; failed: 5xx, the broker retries.
OUTCOMES = ("ok", "duplicate", "rejected", "conflict", "failed")
# Handler time in seconds: sub-millisecond handlers up to the 30 s default budget.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5, 10, 30)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Histogram:
    """Cumulative-at-export bucket counts and a sum, for one label value."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds


class Metrics:
    """The function's counters and gauges; `render()` is the `/metrics` body."""

    def __init__(self, event_types: Iterable[str]) -> None:
        self.types = frozenset(event_types)
        labels = (*sorted(self.types), OTHER)
        # The usual series exist from the start, so `rate()` sees their first increment; the
        # others appear on first use (their label values are bounded all the same).
        self.events: dict[tuple[str, str, str], int] = {
            (t, m, "ok"): 0 for t in sorted(self.types) for m in MODES[:3]
        }
        self.durations: dict[str, _Histogram] = {t: _Histogram() for t in labels}
        self.replies: dict[str, int] = dict.fromkeys(labels, 0)
        self.in_flight = 0
        self.dedupe_hits = 0
        self.dedupe_conflicts = 0
        self.publish_attempts = 0
        self.publish_failures = 0
        self.outbox_depth = 0
        self.dead_letters = 0
        # Replies to a delivery without `Prefer: reply`: published to K_SINK, or answered in
        # the body for a sender that said it would not process them.
        self.sink_unauthorized = 0  # 401/403 from K_SINK: the function's identity refused
        self.replies_published = 0
        self.replies_unrequested = 0
        self.websocket_connections = 0
        # Events handlers emitted (written ahead to the outbox), and what could not be kept.
        self.events_emitted = 0
        self.outbox_write_failures = 0  # write-aheads that failed: answered 503, nothing acked
        self.events_lost = 0  # an event neither delivered nor kept (the outbox failed twice)
        # Requests of the handlers' outgoing client (`ctx.http`), by host and status class.
        self.outgoing: dict[tuple[str, str], int] = {}
        # Copied from the feed and the WebSocket sessions by `Runtime.sample` at scrape time.
        self.feed_events_dropped = 0
        self.feed_subscribers_dropped = 0
        self.websocket_progress_dropped = 0
        self.dedupe_window_seconds = 0.0  # and the dedupe store's
        self.dedupe_evicted_early = 0
        self._registry: Any = None

    # -- the hot path ---------------------------------------------------------------------------

    def label(self, event_type: str | None) -> str:
        """`event_type` if the catalogue knows it, else `other` (bounded cardinality)."""
        return event_type if event_type is not None and event_type in self.types else OTHER

    def event(self, event_type: str | None, mode: str | None, outcome: str) -> None:
        """Count one received event with its outcome (see OUTCOMES)."""
        key = (
            event_type if event_type is not None and event_type in self.types else OTHER,
            mode if mode is not None and mode in MODES else "unknown",
            outcome,
        )
        self.events[key] = self.events.get(key, 0) + 1
        if outcome == "duplicate":
            self.dedupe_hits += 1
        elif outcome == "conflict":
            self.dedupe_conflicts += 1

    def handled(self, event_type: str, seconds: float) -> None:
        """The handler of `event_type` ran for `seconds`."""
        self.durations[event_type if event_type in self.types else OTHER].observe(seconds)

    def replied(self, reply_type: str) -> None:
        """One reply event was sent back to the broker."""
        key = reply_type if reply_type in self.replies else OTHER
        self.replies[key] += 1

    # -- other components -----------------------------------------------------------------------

    def outgoing_request(self, host: str, status: int | None) -> None:
        """One request of the handlers' outgoing client: `status` None for a network error."""
        key = (host, "error" if status is None else f"{status // 100}xx")
        self.outgoing[key] = self.outgoing.get(key, 0) + 1

    def published(self, ok: bool) -> None:
        """One attempt to deliver an event to K_SINK."""
        self.publish_attempts += 1
        if not ok:
            self.publish_failures += 1

    def dead_letter_stored(self) -> None:
        """One dead letter stored by the inbox."""
        self.dead_letters += 1

    # -- exposition -----------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text format of every metric (imports prometheus-client on first use)."""
        from prometheus_client import generate_latest

        if self._registry is None:
            from prometheus_client import CollectorRegistry

            self._registry = CollectorRegistry(auto_describe=False)
            self._registry.register(_Collector(self))
        body: bytes = generate_latest(self._registry)
        return body


class _Collector:
    """Reads a `Metrics` into prometheus-client metric families at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            HistogramMetricFamily,
        )

        m = self.m
        events = CounterMetricFamily(
            "function_events",
            "CloudEvents received on the ingress, by type, content mode and outcome.",
            labels=("type", "mode", "outcome"),
        )
        for key, count in m.events.items():
            events.add_metric(key, count)
        yield events
        durations = HistogramMetricFamily(
            "function_handler_duration_seconds",
            "Time the handler of each event type took (dedupe and encoding excluded).",
            labels=("type",),
        )
        for event_type, hist in m.durations.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), hist.counts, strict=True):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            durations.add_metric((event_type,), buckets, hist.total)
        yield durations
        replies = CounterMetricFamily(
            "function_replies", "Reply events sent to the broker, by type.", labels=("type",)
        )
        for event_type, count in m.replies.items():
            replies.add_metric((event_type,), count)
        yield replies
        outgoing = CounterMetricFamily(
            "function_outgoing_requests",
            "Requests of the handlers' outgoing HTTP client, by host and status class.",
            labels=("host", "status"),
        )
        for (host, status), count in m.outgoing.items():
            outgoing.add_metric((host, status), count)
        yield outgoing
        yield from _simple(m)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


def _simple(m: Metrics) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    counters = (
        ("function_dedupe_hits", "Redeliveries answered from the dedupe store.", m.dedupe_hits),
        (
            "function_dedupe_conflicts",
            "Redeliveries answered 409 (in progress).",
            m.dedupe_conflicts,
        ),
        ("function_publish_attempts", "Attempts to deliver events to K_SINK.", m.publish_attempts),
        ("function_publish_failures", "Failed attempts to deliver to K_SINK.", m.publish_failures),
        (
            "function_publish_unauthorized",
            "Attempts K_SINK refused with 401/403 (the function's OIDC identity); the event waits.",
            m.sink_unauthorized,
        ),
        ("function_dead_letters_stored", "Dead letters stored by the inbox.", m.dead_letters),
        (
            "function_replies_published",
            "Replies to deliveries without `Prefer: reply`, published to K_SINK instead.",
            m.replies_published,
        ),
        (
            "function_replies_unrequested",
            "Replies answered to senders without `Prefer: reply` and no K_SINK: likely dropped.",
            m.replies_unrequested,
        ),
        (
            "function_feed_events_dropped",
            "Events the live feed dropped because its pump fell behind (queue full).",
            m.feed_events_dropped,
        ),
        (
            "function_feed_subscribers_dropped",
            "Live feed subscribers cut off as slow consumers (their queue was full).",
            m.feed_subscribers_dropped,
        ),
        (
            "function_dedupe_evicted_early",
            "Replies the in-memory dedupe store dropped before their TTL (memory bound): "
            "redeliveries of those events count as new.",
            m.dedupe_evicted_early,
        ),
        (
            "function_events_emitted",
            "Events handlers emitted, written ahead to the outbox for K_SINK.",
            m.events_emitted,
        ),
        (
            "function_outbox_write_failures",
            "Outbox write-aheads that failed: the request was answered 503, nothing acknowledged.",
            m.outbox_write_failures,
        ),
        (
            "function_events_lost",
            "Events neither delivered nor kept: the outbox failed after the sink did (page).",
            m.events_lost,
        ),
        (
            "function_websocket_progress_dropped",
            "WebSocket progress messages not delivered because the client read too slowly.",
            m.websocket_progress_dropped,
        ),
    )
    for name, doc, value in counters:
        yield CounterMetricFamily(name, doc, value=value)
    gauges: tuple[tuple[str, str, float], ...] = (
        ("function_requests_in_flight", "Ingress requests being handled now.", m.in_flight),
        ("function_outbox_depth", "Events in the outbox waiting for K_SINK.", m.outbox_depth),
        ("function_websocket_connections", "Open WebSocket connections.", m.websocket_connections),
        (
            "function_dedupe_window_seconds",
            "How far back a redelivery is recognised now: DEDUPE_TTL_SECONDS, unless the "
            "in-memory store's memory bound cut it short.",
            m.dedupe_window_seconds,
        ),
    )
    for name, doc, level in gauges:
        yield GaugeMetricFamily(name, doc, value=level)
