"""`python -m bench.kpa`: Knative's Pod Autoscaler (KPA), simulated, under a ramp of events.

No cluster: the KPA's decision rule as Knative Serving documents and implements it, fed by a
model of one pod taken from `make bench-sweep` (events/s and p99 at each concurrency), under a
load that ramps from 0 to 2,000 events/s and holds. It answers how many pods the rendered
`target`, `containerConcurrency` and `max-scale` give, and what p99 to expect on the way.

The KPA, every tick (2 s): the concurrency observed per second is averaged over the stable
window (60 s) and the panic window (10% of it, 6 s). Desired pods = ceil(average / (target x
target utilization 70%)), each bounded by the scale rates (up: x1000 of the ready pods, down:
at most half of them per tick). When the panic window's desire reaches twice the ready pods
(panic threshold 200%) the KPA panics: it follows the panic window and never scales down,
until a whole stable window passes without reaching the threshold. min-scale and max-scale
bound the result; a new pod serves after `pod_start_seconds`.

One pod, from the sweep: at a per-pod arrival rate r below its best throughput, it holds the
concurrency c where the sweep's closed-loop events/s equals r (interpolated), and answers with
the p99 measured at c. Above it, or above containerConcurrency, the excess waits in the
queue-proxy: the backlog grows by the difference, counts as concurrency for the KPA (the
queue-proxy reports what it holds), and adds the time to drain it to the p99.

Hand-written because no library models the KPA; the arithmetic is tested (tests/unit/test_kpa.py).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# The sweep recorded in docs/operations/scaling.md (make bench-sweep, deployed configuration,
# the server pinned to one core): (connections, events/s per core, p99 ms). Used when no
# bench/results/sweep.json is at hand, so the documented simulation can be rerun as is.
MEASURED: tuple[tuple[int, float, float], ...] = (
    (1, 3453.0, 5.133),
    (8, 6553.0, 7.269),
    (32, 7348.0, 12.595),
    (64, 8157.0, 27.616),
    (128, 7052.0, 53.139),
)


@dataclass(frozen=True)
class Config:
    """The KPA's knobs: the Revision's annotations and Knative's config-autoscaler defaults."""

    target: float
    container_concurrency: int = 0  # 0: no hard cap
    min_scale: int = 1
    max_scale: int = 0  # 0: unbounded
    utilization: float = 0.70  # target-utilization-percentage 70
    stable_window: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold: float = 2.0  # panic-threshold-percentage 200
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    tick: float = 2.0
    pod_start_seconds: float = 5.0

    @property
    def panic_window(self) -> float:
        return self.stable_window * self.panic_window_percentage / 100

    @property
    def per_pod(self) -> float:
        """The concurrency per pod the KPA aims for: target x utilization."""
        return self.target * self.utilization


def window_average(samples: Sequence[tuple[float, float]], now: float, window: float) -> float:
    """Mean of the (time, value) samples within the last `window` seconds up to `now`."""
    inside = [value for at, value in samples if now - window < at <= now]
    return sum(inside) / len(inside) if inside else 0.0


@dataclass
class Autoscaler:
    """The KPA's decision, tick by tick (Knative Serving's scaling.autoscaler)."""

    config: Config
    panicking_since: float | None = None
    max_panic_pods: int = 0

    def desired(self, now: float, stable: float, panic: float, ready: int) -> int:
        """Pods wanted at `now`, from the stable and panic window averages (total concurrency)."""
        c = self.config
        ready = max(1, ready)
        up = math.ceil(c.max_scale_up_rate * ready)
        down = math.floor(ready / c.max_scale_down_rate)
        stable_pods = min(max(math.ceil(stable / c.per_pod), down), up)
        panic_raw = panic / c.per_pod
        panic_pods = min(max(math.ceil(panic_raw), down), up)
        over = panic_raw / ready >= c.panic_threshold
        if over:
            if self.panicking_since is None:
                self.max_panic_pods = ready
            self.panicking_since = now
        elif self.panicking_since is not None and now - self.panicking_since >= c.stable_window:
            self.panicking_since = None
            self.max_panic_pods = 0
        if self.panicking_since is not None:
            # Panicking, the KPA never scales down: it keeps the most it asked for.
            self.max_panic_pods = max(self.max_panic_pods, panic_pods)
            wanted = self.max_panic_pods
        else:
            wanted = stable_pods
        return self.bounded(wanted)

    def bounded(self, pods: int) -> int:
        c = self.config
        if c.max_scale:
            pods = min(pods, c.max_scale)
        return max(pods, c.min_scale)


@dataclass(frozen=True)
class Curve:
    """One pod, from the sweep: events/s and p99 at each concurrency (closed loop)."""

    points: tuple[tuple[int, float, float], ...]  # (concurrency, events/s, p99 ms), ascending

    @classmethod
    def of(cls, rows: Sequence[tuple[int, float, float]]) -> Curve:
        ordered = sorted(rows)
        # Past the best step, more concurrency buys no throughput: the curve keeps the best.
        kept, best = [], 0.0
        for c, rate, p99 in ordered:
            best = max(best, rate)
            kept.append((c, best, p99))
        return cls(tuple(kept))

    @property
    def capacity(self) -> float:
        return self.points[-1][1]

    def concurrency_at(self, rate: float) -> float:
        """The concurrency at which the pod serves `rate` events/s (from 0 at 0, linear)."""
        if rate <= 0:
            return 0.0
        xs = [0.0] + [p[1] for p in self.points]
        cs = [0.0] + [float(p[0]) for p in self.points]
        i = bisect.bisect_left(xs, rate)
        if i >= len(xs):
            return cs[-1]
        lo, hi = i - 1, i
        if xs[hi] == xs[lo]:
            return cs[lo]
        return cs[lo] + (cs[hi] - cs[lo]) * (rate - xs[lo]) / (xs[hi] - xs[lo])

    def p99_at(self, concurrency: float) -> float:
        """The p99 (ms) at `concurrency`, linear between steps, the first below the first."""
        cs = [float(p[0]) for p in self.points]
        ps = [p[2] for p in self.points]
        if concurrency <= cs[0]:
            return ps[0]
        i = bisect.bisect_left(cs, concurrency)
        if i >= len(cs):
            return ps[-1] * concurrency / cs[-1]  # queueing: latency grows with what is held
        lo, hi = i - 1, i
        return ps[lo] + (ps[hi] - ps[lo]) * (concurrency - cs[lo]) / (cs[hi] - cs[lo])


@dataclass(frozen=True)
class Second:
    """The simulated system at one second."""

    at: float
    rate: float  # arriving events/s
    ready: int
    desired: int
    panicking: bool
    concurrency_per_pod: float
    backlog: float
    p99_ms: float


@dataclass
class Pods:
    ready: int
    starting: list[float] = field(default_factory=list)  # when each starting pod is ready

    def advance(self, now: float) -> None:
        done = [t for t in self.starting if t <= now]
        self.ready += len(done)
        self.starting = [t for t in self.starting if t > now]

    def scale_to(self, desired: int, now: float, start: float) -> None:
        total = self.ready + len(self.starting)
        if desired > total:
            self.starting += [now + start] * (desired - total)
        elif desired < total:
            excess = total - desired
            dropped = min(excess, len(self.starting))
            self.starting = self.starting[: len(self.starting) - dropped]
            self.ready -= excess - dropped


def ramp(peak: float, ramp_seconds: float) -> Callable[[float], float]:
    """Events/s rising linearly from 0 to `peak` over `ramp_seconds`, then holding."""
    return lambda t: peak * min(1.0, t / ramp_seconds)


def pod_capacity(curve: Curve, cap: float, io: float = 0.0) -> float:
    """The most events/s one pod takes: its best throughput, or less where holding them would
    take more than `cap` requests in flight (each also awaiting `io` seconds of I/O)."""

    def held(rate: float) -> float:
        return curve.concurrency_at(rate) + rate * io

    if held(curve.capacity) <= cap:
        return curve.capacity
    low, high = 0.0, curve.capacity
    for _ in range(60):  # bisection: held() is increasing in the rate
        middle = (low + high) / 2
        low, high = (middle, high) if held(middle) <= cap else (low, middle)
    return low


def simulate(
    config: Config,
    curve: Curve,
    load: Callable[[float], float],
    seconds: int,
    io_ms: float = 0.0,
) -> list[Second]:
    """Second by second: arrivals, what each pod holds, the KPA's ticks, pods starting.

    `io_ms`: time each event's handler awaits I/O (a database, an API) on top of what the
    sweep measured; it holds a request in flight without using the CPU (Little's law: a pod at
    r events/s holds r x io more), and adds to every latency.
    """
    io = io_ms / 1000
    kpa = Autoscaler(config)
    pods = Pods(ready=config.min_scale)
    samples: list[tuple[float, float]] = []
    backlog, desired = 0.0, config.min_scale
    per_pod_max = pod_capacity(curve, config.container_concurrency or math.inf, io)
    out = []
    for now in range(1, seconds + 1):
        pods.advance(now)
        rate = load(now)
        ready = pods.ready
        # What the ready pods take this second; the rest joins the queue-proxies' backlog.
        capacity = ready * per_pod_max
        offered = rate + backlog
        served = min(offered, capacity)
        backlog = offered - served
        per_pod = served / ready if ready else 0.0
        busy = curve.concurrency_at(per_pod)  # competing for the event loop
        total = ready * (busy + per_pod * io) + backlog
        samples.append((now, total))
        drain_ms = 1000 * backlog / capacity if capacity else math.inf
        p99 = curve.p99_at(busy) + io_ms + drain_ms
        if now % config.tick == 0:
            stable = window_average(samples, now, config.stable_window)
            panic = window_average(samples, now, config.panic_window)
            desired = kpa.desired(now, stable, panic, ready)
            pods.scale_to(desired, now, config.pod_start_seconds)
            samples = [s for s in samples if now - s[0] < config.stable_window]
        out.append(
            Second(
                at=now,
                rate=rate,
                ready=ready,
                desired=desired,
                panicking=kpa.panicking_since is not None,
                concurrency_per_pod=total / ready if ready else total,
                backlog=backlog,
                p99_ms=p99,
            )
        )
    return out


def load_sweep(path: Path) -> tuple[tuple[int, float, float], ...]:
    """(connections, events/s per core, p99 ms) of a `make bench-sweep` run, else the recorded
    one. Events/s per core (1e6 / CPU µs per event) is what a pod does with its core to itself,
    as `limits.cpu` = `requests.cpu` = 1 gives it; what the shared measuring machine let the
    server do is lower and moves with the machine's other load."""
    if not path.is_file():
        return MEASURED
    steps = json.loads(path.read_text())["steps"]
    return tuple((s["connections"], round(1e6 / s["cpu_us"]), s["p99_ms"]) for s in steps)


def report(run: list[Second], every: int) -> str:
    rows = [
        "| s | events/s | pods ready | pods wanted | mode | in flight per pod | backlog | p99 ms |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for s in run:
        if s.at % every == 0:
            mode = "panic" if s.panicking else "stable"
            rows.append(
                f"| {s.at:.0f} | {s.rate:.0f} | {s.ready} | {s.desired} | {mode} | "
                f"{s.concurrency_per_pod:.1f} | {s.backlog:.0f} | {s.p99_ms:.1f} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    from manifests.deployment import DEPLOYMENT

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, default=RESULTS / "sweep.json")
    parser.add_argument("--peak", type=float, default=2000.0, help="events/s at the top")
    parser.add_argument("--ramp", type=float, default=300.0, help="seconds from 0 to the peak")
    parser.add_argument("--seconds", type=int, default=480)
    parser.add_argument("--pod-start", type=float, default=5.0, help="seconds to a ready pod")
    parser.add_argument("--every", type=int, default=30, help="print one row every N seconds")
    parser.add_argument("--io-ms", type=float, default=0.0, help="I/O each handler call awaits")
    parser.add_argument("--target", type=float, default=DEPLOYMENT.target)
    parser.add_argument("--cc", type=int, default=DEPLOYMENT.container_concurrency)
    parser.add_argument("--max-scale", type=int, default=DEPLOYMENT.max_scale)
    parser.add_argument("--min-scale", type=int, default=DEPLOYMENT.min_scale)
    args = parser.parse_args(argv)
    curve = Curve.of(load_sweep(args.sweep))
    config = Config(
        target=args.target,
        container_concurrency=args.cc,
        min_scale=args.min_scale,
        max_scale=args.max_scale,
        pod_start_seconds=args.pod_start,
    )
    run = simulate(config, curve, ramp(args.peak, args.ramp), args.seconds, args.io_ms)
    print(report(run, args.every))
    held = [s for s in run if s.at > args.ramp + config.stable_window]
    worst = max(run, key=lambda s: s.p99_ms)
    print(
        f"\nKPA: target {config.target:g} (x{config.utilization:.0%}), containerConcurrency "
        f"{config.container_concurrency}, scale {config.min_scale}..{config.max_scale}; handler "
        f"I/O {args.io_ms:g} ms; one pod serves up to "
        f"{pod_capacity(curve, config.container_concurrency or math.inf, args.io_ms / 1000):.0f}"
        " events/s"
    )
    if held:
        print(
            f"at {args.peak:.0f} events/s, settled: {held[-1].ready} pods, "
            f"{held[-1].concurrency_per_pod:.1f} in flight each, p99 {held[-1].p99_ms:.1f} ms"
        )
    print(f"worst p99 on the way: {worst.p99_ms:.1f} ms at {worst.at:.0f} s ({worst.ready} pods)")
    print(f"most pods: {max(s.ready for s in run)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
