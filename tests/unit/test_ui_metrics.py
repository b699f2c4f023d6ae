"""The Live page's numbers (`ui/metrics.py`): the function's own `/metrics` text, parsed."""

from __future__ import annotations

from eventfn.observability.metrics import Metrics
from ui import metrics

TYPES = ("com.example.a", "com.example.b")


def scrape(m: Metrics, at: float, types: tuple[str, ...] = ()) -> metrics.Sample:
    return metrics.parse(m.render().decode(), at, types)


def test_events_are_summed_by_outcome_across_types_and_modes() -> None:
    """`function_events_total` becomes one count per outcome."""
    m = Metrics(TYPES)
    m.event("com.example.a", "binary", "ok")
    m.event("com.example.b", "structured", "ok")
    m.event("com.example.a", "binary", "rejected")
    assert scrape(m, 0).outcomes == {"ok": 2, "rejected": 1}


def test_a_type_filter_counts_only_those_types() -> None:
    """Given types, the sample counts their events and handler times only."""
    m = Metrics(TYPES)
    m.event("com.example.a", "binary", "ok")
    m.event("com.example.b", "binary", "ok")
    m.handled("com.example.b", 0.2)
    sample = scrape(m, 0, ("com.example.a",))
    assert sample.outcomes == {"ok": 1}
    assert max(sample.buckets.values()) == 0


def test_rates_are_the_difference_over_the_interval() -> None:
    """Events per second by outcome between two scrapes."""
    m = Metrics(TYPES)
    before = scrape(m, 10.0)
    for _ in range(6):
        m.event("com.example.a", "binary", "ok")
    m.event("com.example.a", "binary", "failed")
    after = scrape(m, 12.0)
    assert metrics.rates(before, after) == {"ok": 3.0, "failed": 0.5}


def test_a_counter_reset_counts_from_zero() -> None:
    """A restarted function's counters start again: the new count is the increase."""
    before = metrics.Sample(0.0, {"ok": 100.0})
    after = metrics.Sample(1.0, {"ok": 4.0})
    assert metrics.rates(before, after) == {"ok": 4.0}


def test_quantiles_interpolate_within_the_bucket() -> None:
    """p50 of durations all in the (5 ms, 10 ms] bucket lies inside it, as Prometheus says."""
    m = Metrics(TYPES)
    before = scrape(m, 0)
    for _ in range(100):
        m.handled("com.example.a", 0.007)
    after = scrape(m, 1)
    p50 = metrics.quantile(0.5, before, after)
    assert p50 is not None
    assert 0.005 < p50 <= 0.01
    assert 0.005 < (metrics.quantile(0.99, before, after) or 0) <= 0.01


def test_p99_sees_the_slow_tail() -> None:
    """One slow call in a hundred puts p99 in the slow bucket's range, p50 in the fast one."""
    m = Metrics(TYPES)
    before = scrape(m, 0)
    for _ in range(98):
        m.handled("com.example.a", 0.001)
    m.handled("com.example.a", 2.0)
    m.handled("com.example.a", 2.0)
    after = scrape(m, 1)
    assert (metrics.quantile(0.5, before, after) or 1) <= 0.001
    assert 1.0 < (metrics.quantile(0.99, before, after) or 0) <= 2.5


def test_no_handled_event_has_no_quantile() -> None:
    """Nothing handled between two scrapes: no latency to chart."""
    m = Metrics(TYPES)
    assert metrics.quantile(0.5, scrape(m, 0), scrape(m, 1)) is None


def test_series_pairs_consecutive_samples() -> None:
    """Three scrapes make two chart rows, in milliseconds."""
    m = Metrics(TYPES)
    samples = [scrape(m, 0)]
    m.event("com.example.a", "binary", "ok")
    m.handled("com.example.a", 0.003)
    samples.append(scrape(m, 1))
    samples.append(scrape(m, 2))
    rows = metrics.series(samples)
    assert [r["at"] for r in rows] == [1, 2]
    assert rows[0]["ok"] == 1.0
    assert rows[1]["p50 ms"] is None
    assert 2.5 < (rows[0]["p50 ms"] or 0) <= 5.0


def test_one_scrape_serves_every_type_filter() -> None:
    """Parsed once, a scrape gives each selection of types its own counts."""
    m = Metrics(TYPES)
    m.event("com.example.a", "binary", "ok")
    m.event("com.example.b", "batch", "ok")
    m.event("com.example.b", "binary", "failed")
    scraped = metrics.scrape(m.render().decode(), 5.0)
    assert metrics.select(scraped, ["com.example.a"]).outcomes == {"ok": 1}
    assert metrics.select(scraped, ["com.example.b"]).outcomes == {"ok": 1, "failed": 1}
    assert metrics.select(scraped).outcomes == {"ok": 2, "failed": 1}
    assert metrics.select(scraped).at == 5.0
