"""What the Live page charts, from the function's `/metrics`: pure functions over samples.

A `Scrape` is one `/metrics` text parsed once with prometheus_client's own parser (never regexes),
by event type; a `Sample` is what a chart needs of it for the types it shows: the event counters by
outcome and the handler-duration histogram's buckets. Rates and quantiles come from
the difference of two samples, as Prometheus computes `rate()` and `histogram_quantile()`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

EVENTS = "function_events"
DURATION = "function_handler_duration_seconds"


@dataclass(frozen=True)
class Sample:
    """One scrape: when, events counted by outcome, and handler-duration buckets (le -> count)."""

    at: float
    outcomes: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scrape:
    """One scrape by event type, parsed once: `select` sums it for the types a chart shows."""

    at: float
    events: dict[tuple[str, str], float] = field(default_factory=dict)  # (type, outcome)
    buckets: dict[tuple[str, float], float] = field(default_factory=dict)  # (type, le)


def scrape(text: str, at: float) -> Scrape:
    """The exposition `text` scraped at `at`, by type (the parser runs once per scrape)."""
    events: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, float], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == EVENTS:
            for s in family.samples:
                if s.name == f"{EVENTS}_total":
                    key = (s.labels["type"], s.labels["outcome"])
                    events[key] = events.get(key, 0.0) + s.value  # summed over content modes
        elif family.name == DURATION:
            for s in family.samples:
                if s.name == f"{DURATION}_bucket":
                    buckets[(s.labels["type"], float(s.labels["le"]))] = s.value
    return Scrape(at, events, buckets)


def select(scraped: Scrape, types: Iterable[str] = ()) -> Sample:
    """The `Sample` of `types` (every type when none given) in one scrape."""
    wanted = frozenset(types)
    outcomes: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for (event_type, outcome), count in scraped.events.items():
        if not wanted or event_type in wanted:
            outcomes[outcome] = outcomes.get(outcome, 0.0) + count
    for (event_type, bound), count in scraped.buckets.items():
        if not wanted or event_type in wanted:
            buckets[bound] = buckets.get(bound, 0.0) + count
    return Sample(scraped.at, outcomes, buckets)


def parse(text: str, at: float, types: Iterable[str] = ()) -> Sample:
    """A `Sample` of the exposition `text` scraped at `at`; only event `types` if any given."""
    return select(scrape(text, at), types)


def rates(before: Sample, after: Sample) -> dict[str, float]:
    """Events per second by outcome between two samples (a counter reset counts from zero)."""
    seconds = after.at - before.at
    if seconds <= 0:
        return {}
    result = {}
    for outcome, count in after.outcomes.items():
        delta = count - before.outcomes.get(outcome, 0.0)
        result[outcome] = (count if delta < 0 else delta) / seconds
    return result


def quantile(q: float, before: Sample, after: Sample) -> float | None:
    """The `q` quantile (0..1) of handler durations between two samples, interpolated in its
    bucket like `histogram_quantile`; None when nothing was handled in between."""
    bounds = sorted(after.buckets)
    counts = [after.buckets[b] - before.buckets.get(b, 0.0) for b in bounds]
    if not bounds or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower  # above the last finite bucket: its bound, as Prometheus does
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def series(samples: Sequence[Sample]) -> list[dict[str, float | None]]:
    """One row per pair of consecutive samples: events/s by outcome, p50 and p99 in ms."""
    rows: list[dict[str, float | None]] = []
    for before, after in itertools.pairwise(samples):
        p50, p99 = quantile(0.5, before, after), quantile(0.99, before, after)
        rows.append(
            {
                "at": after.at,
                **rates(before, after),
                "p50 ms": None if p50 is None else p50 * 1000,
                "p99 ms": None if p99 is None else p99 * 1000,
            }
        )
    return rows
