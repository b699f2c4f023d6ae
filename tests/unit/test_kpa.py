"""bench/kpa.py: the KPA's arithmetic and the pod model the scaling figures come from."""

from __future__ import annotations

import math

import pytest

from bench import kpa, sweep

CURVE = kpa.Curve.of([(1, 1000.0, 2.0), (8, 4000.0, 4.0), (32, 4000.0, 12.0)])


def config(**overrides: float) -> kpa.Config:
    values: dict[str, float] = {"target": 10.0, "max_scale": 10.0, **overrides}
    return kpa.Config(
        target=values["target"],
        container_concurrency=int(values.get("container_concurrency", 0)),
        min_scale=int(values.get("min_scale", 1)),
        max_scale=int(values["max_scale"]),
        pod_start_seconds=values.get("pod_start_seconds", 5.0),
    )


def test_stable_mode_wants_the_concurrency_over_target_times_utilization() -> None:
    """Stable: ceil(average concurrency / (target x 70%)) pods: 30 in flight at 10 -> 5."""
    scaler = kpa.Autoscaler(config())
    assert scaler.desired(now=2, stable=30.0, panic=30.0, ready=4) == math.ceil(30 / 7)


def test_scale_down_is_at_most_half_the_ready_pods_per_tick() -> None:
    """max-scale-down-rate 2: from 8 ready pods and no load, 4 at the next tick."""
    scaler = kpa.Autoscaler(config())
    assert scaler.desired(now=2, stable=0.0, panic=0.0, ready=8) == 4


def test_panic_starts_when_the_panic_window_wants_twice_the_ready_pods() -> None:
    """Panic window asking 2x the ready pods: the KPA follows it at once."""
    scaler = kpa.Autoscaler(config())
    assert scaler.desired(now=2, stable=7.0, panic=14.0 * 2, ready=2) == 4
    assert scaler.panicking_since == 2


def test_below_the_panic_threshold_the_stable_window_decides() -> None:
    """Short of 2x, no panic: the stable window's (lower) count wins."""
    scaler = kpa.Autoscaler(config())
    assert scaler.desired(now=2, stable=14.0, panic=20.0, ready=2) == 2
    assert scaler.panicking_since is None


def test_panicking_never_scales_down_and_ends_after_a_calm_stable_window() -> None:
    """In panic the most pods asked for stay; a stable window without reaching the threshold
    ends the panic and the stable count applies again."""
    scaler = kpa.Autoscaler(config())
    assert scaler.desired(now=2, stable=7.0, panic=56.0, ready=2) == 8
    assert scaler.desired(now=4, stable=7.0, panic=7.0, ready=8) == 8
    assert scaler.desired(now=61, stable=7.0, panic=7.0, ready=8) == 8
    assert scaler.desired(now=62, stable=7.0, panic=7.0, ready=8) == 4  # halved, then 1 later


def test_max_scale_and_min_scale_bound_the_count() -> None:
    """Whatever the windows say, the count stays within min-scale..max-scale."""
    scaler = kpa.Autoscaler(config(max_scale=3, min_scale=2))
    assert scaler.desired(now=2, stable=700.0, panic=700.0, ready=1) == 3
    assert kpa.Autoscaler(config(min_scale=2)).desired(2, 0.0, 0.0, 2) == 2


def test_window_average_takes_only_the_samples_inside_the_window() -> None:
    """Mean of the samples of the last N seconds: older ones do not count."""
    samples = [(1.0, 100.0), (5.0, 10.0), (6.0, 20.0)]
    assert kpa.window_average(samples, now=6.0, window=2.0) == 15.0
    assert kpa.window_average([], now=6.0, window=2.0) == 0.0


def test_a_pods_concurrency_and_p99_are_interpolated_from_the_sweep() -> None:
    """Rate -> concurrency on the sweep's curve (0 at 0), concurrency -> p99 between steps."""
    assert CURVE.concurrency_at(0) == 0
    assert CURVE.concurrency_at(500.0) == pytest.approx(0.5)
    assert CURVE.concurrency_at(2500.0) == pytest.approx(4.5)
    assert CURVE.p99_at(0.2) == 2.0
    assert CURVE.p99_at(20.0) == pytest.approx(8.0)
    assert CURVE.capacity == 4000.0


def test_a_steady_load_settles_on_the_pods_littles_law_asks_for() -> None:
    """12,000 events/s, pods serving 4,000 at 8 in flight, target 10 (7 per pod): 3 pods would
    hold 8 each (24 > 3 x 7), 4 hold 5.7 each (22.7 / 7 -> 4): it settles on 4, nothing waits."""
    run = kpa.simulate(config(), CURVE, lambda t: 12_000.0, seconds=400)
    last = run[-1]
    assert last.backlog == 0
    assert last.ready == 4
    assert last.concurrency_per_pod == pytest.approx(CURVE.concurrency_at(3000.0))


def test_an_overload_beyond_max_scale_builds_a_backlog_that_shows_in_p99() -> None:
    """Past max-scale x capacity the excess waits in the queue-proxies; p99 grows with it."""
    run = kpa.simulate(config(max_scale=2), CURVE, lambda t: 10_000.0, seconds=60)
    assert run[-1].ready == 2
    assert run[-1].backlog == pytest.approx(
        60 * 10_000 - sum(min(10_000, s.ready * 4000) for s in run)
    )
    assert run[-1].p99_ms > run[0].p99_ms


def test_new_pods_serve_only_after_they_started() -> None:
    """A pod the KPA asks for at a tick is ready `pod_start_seconds` later."""
    run = kpa.simulate(config(pod_start_seconds=10), CURVE, lambda t: 8000.0, seconds=20)
    asked = next(s.at for s in run if s.desired > 1)
    assert all(s.ready == 1 for s in run if s.at < asked + 10)
    assert next(s for s in run if s.at == asked + 10).ready > 1


def test_the_sweeps_rule_picks_the_knee_and_the_cap_within_the_p99_budget() -> None:
    """knee: fewest connections at 90% of the best events/s per core (1e6 / CPU µs);
    target = knee / 70%; cap: most connections with p99 within budget; CPU: one core."""
    steps = [
        sweep.Step(1, 1000.0, 0.5, 2.0, 400.0),  # 2,500/s per core
        sweep.Step(8, 3700.0, 1.5, 6.0, 210.0),  # 4,762: 89% of the best, short of the knee
        sweep.Step(32, 4000.0, 6.0, 30.0, 190.0),  # 5,263: the knee
        sweep.Step(64, 4000.0, 12.0, 90.0, 188.0),
        sweep.Step(128, 4000.0, 25.0, 160.0, 188.0),
    ]
    choice = sweep.choose(steps)
    assert choice.knee == 32
    assert choice.target == math.ceil(32 / 0.7)
    assert choice.container_concurrency == 64
    assert choice.capacity == pytest.approx(1e6 / 190)
    assert choice.busy == pytest.approx(4000 * 190 / 1e6, abs=0.01)
    assert (choice.cpu_request, choice.cpu_limit) == ("1", "1")


def test_a_pods_capacity_is_its_best_rate_or_what_the_cap_lets_it_hold() -> None:
    """No cap: the sweep's best; cap 4.5 in flight: 2,500/s; with 1 ms of I/O each, less."""
    assert kpa.pod_capacity(CURVE, math.inf) == 4000.0
    assert kpa.pod_capacity(CURVE, 4.5) == pytest.approx(2500.0)
    with_io = kpa.pod_capacity(CURVE, 4.5, io=0.001)
    assert CURVE.concurrency_at(with_io) + with_io * 0.001 == pytest.approx(4.5)


def test_handler_io_holds_requests_in_flight_and_adds_to_p99() -> None:
    """20 ms of I/O per event at 1,000 events/s: 20 more in flight (Little's law) beside the 1
    the CPU holds, so 21 / 7 per pod = 3 pods, and p99 carries the 20 ms."""
    quick = kpa.simulate(config(), CURVE, lambda t: 1000.0, seconds=200)
    slow = kpa.simulate(config(), CURVE, lambda t: 1000.0, seconds=200, io_ms=20.0)
    assert quick[-1].ready == 1
    assert slow[-1].ready * slow[-1].concurrency_per_pod == pytest.approx(21.0)
    assert slow[-1].ready == 3
    assert slow[-1].p99_ms == pytest.approx(quick[-1].p99_ms + 20.0)
