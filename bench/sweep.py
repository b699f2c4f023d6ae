"""`make bench-sweep`: one pod's events/s and p99 at 1, 8, 32, 64 and 128 connections.

The server runs as `eventing/` deploys it: `make bench`'s `function-oidc` row (JSON logs, Redis
dedupe through `REDIS_URL`, an RS256 token on every delivery, checked against a JWKS), on the
production-like venv `bench.run` prepares. It is one event loop, so it uses one core at most,
as `limits.cpu: 1` lets a pod. Each step warms up, then runs in `--rounds` interleaved rounds
of `--duration` seconds; its row is the median round. CPU time per event is measured too: it
moves much less with what else the machine does than events/s, so `1e6 / cpu_us` is what the pod
would do with its core to itself. `--pin` puts the server on a CPU of its own and the rest on the
others (bench/cpus.py); on a machine others are busy on too that starves the load generator
and Redis, so unpinned is the default, and `nice -n -10 make bench-sweep` (root) keeps the
measured processes ahead of the machine's other work.

`choose` turns the table into the Service's numbers by the rule docs/operations/scaling.md
states; the run prints them beside what `manifests.deployment.DEPLOYMENT` renders.
Results go to `bench/results/sweep.json` (read by `bench/kpa.py`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from dataclasses import asdict, dataclass
from typing import Any

from bench import cpus, run

STEPS = (1, 8, 32, 64, 128)
DEPLOYED = "function-oidc"
# Knative's default target-utilization-percentage: the KPA keeps this share of `target` in
# flight per pod on average, the rest is headroom for bursts before the panic mode.
UTILIZATION = 0.70
# Throughput counts as reached from this share of the best step on.
KNEE = 0.90
# p99 a request may take inside the pod at the hard cap (containerConcurrency).
P99_BUDGET_MS = 100.0


@dataclass(frozen=True)
class Step:
    """One row of the sweep: a concurrency and what the pod did at it."""

    connections: int
    events_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # CPU time of the server per event (user + system)
    errors: int = 0  # non-2xx answers and socket errors

    @property
    def cpu_capacity(self) -> float:
        """Events/s with one whole core busy at this step's CPU cost per event."""
        return 1e6 / self.cpu_us


@dataclass(frozen=True)
class Choice:
    """The Service's autoscaling numbers, and why."""

    target: int
    container_concurrency: int
    cpu_request: str
    cpu_limit: str
    knee: int  # the concurrency where throughput is reached
    capacity: float  # events/s of one pod at the knee, its core to itself
    busy: float  # share of a core the server was given at the knee in this run


def choose(steps: list[Step]) -> Choice:
    """The rule: run where throughput is reached at the least latency, cap where p99 still fits.

    - knee: the fewest connections giving at least 90% of the best events/s per core (1e6 /
      CPU µs per event: what the pod does with its core to itself, as its limit and request give
      it; unlike events/s on a shared machine it hardly moves with the machine's other load);
      more in flight only waits longer in the one event loop.
    - target: the KPA keeps target x 70% in flight per pod, so target = knee / 0.7 puts the
      average pod at the knee.
    - containerConcurrency: the most connections whose p99 stays within 100 ms (and at least
      the target); beyond it requests wait in the queue-proxy, where the activator can send
      them to a pod with room instead.
    - CPU: one uvicorn worker is one event loop, so the limit is one core. At the KPA's steady
      state a pod holds target x 70% = the knee in flight, and the knee is where throughput
      stops growing because the loop is busy: the pod burns its whole core there. So the
      request is the limit: a node packed by requests still gives every pod at target the
      core its measured capacity assumes. (`busy` reports the share of a core the server got
      at the knee in the run, a check on how loaded the measuring machine was.)
    """
    ordered = sorted(steps, key=lambda s: s.connections)
    best = max(s.cpu_capacity for s in ordered)
    knee = next(s for s in ordered if s.cpu_capacity >= KNEE * best)
    target = math.ceil(knee.connections / UTILIZATION)
    within = [s.connections for s in ordered if s.p99_ms <= P99_BUDGET_MS]
    cap = max([target, *within])
    return Choice(
        target=target,
        container_concurrency=cap,
        cpu_request="1",
        cpu_limit="1",
        knee=knee.connections,
        capacity=knee.cpu_capacity,
        busy=round(knee.events_per_s * knee.cpu_us / 1e6, 2),
    )


def table(steps: list[Step]) -> str:
    rows = [
        "| connections | events/s | p50 ms | p99 ms | CPU µs/event | events/s per core | errors |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {s.connections} | {s.events_per_s:.0f} | {s.p50_ms:.2f} | {s.p99_ms:.2f} | "
        f"{s.cpu_us:.0f} | {s.cpu_capacity:.0f} | {s.errors} |"
        for s in sorted(steps, key=lambda s: s.connections)
    ]
    return "\n".join(rows)


def sweep(args: argparse.Namespace, binary: str) -> list[Step]:
    """Start the deployed configuration once, then load it at each step, in interleaved rounds.

    On a shared machine the speed drifts within a minute; as `bench.run.rounds` does, the steps
    take turns round by round (the order reversed every other round), so each step's median
    round saw the same machine as the others'.
    """
    from bench import production

    server = run.SERVERS[DEPLOYED]
    rounds: dict[int, list[dict[str, Any]]] = {c: [] for c in args.steps}
    with run.environment([DEPLOYED]), run.running(server) as (proc, port, _):
        token = run.token_for(server)
        for connections in args.steps:
            run.wrk(binary, port, args.warmup, connections, 1, token=token)
        for number in range(args.rounds):
            production.flush(run.PRODUCTION["REDIS_URL"])
            order = args.steps if number % 2 == 0 else list(reversed(args.steps))
            for connections in order:
                user, system = run.cpu_seconds(proc.pid)
                found = run.wrk(binary, port, args.duration, connections, 1, token=token)
                user_after, system_after = run.cpu_seconds(proc.pid)
                spent = user_after - user + system_after - system
                rounds[connections].append({**found, "cpu_us": spent * 1e6 / found["requests"]})
                print(
                    f"  round {number + 1} c={connections:<4} {found['rps']:>7} events/s  "
                    f"p99 {found['p99_ms']:.2f} ms",
                    file=sys.stderr,
                )
    steps = []
    for connections, measured in rounds.items():
        median = sorted(measured, key=lambda r: r["rps"])[len(measured) // 2]
        steps.append(
            Step(
                connections=connections,
                events_per_s=float(median["rps"]),
                p50_ms=median["p50_ms"],
                p99_ms=statistics.median(r["p99_ms"] for r in measured),
                cpu_us=round(statistics.median(r["cpu_us"] for r in measured), 1),
                errors=sum(r["non2xx"] + r["socket_errors"] for r in measured),
            )
        )
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds measured per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per step")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per step")
    parser.add_argument("--steps", type=lambda v: [int(x) for x in v.split(",")], default=STEPS)
    parser.add_argument("--pin", action="store_true", help="the server on a CPU of its own")
    parser.add_argument("--dev-venv", action="store_true", help="run on .venv (with dev tools)")
    args = parser.parse_args(argv)
    if args.pin:
        cpus.pin()
    binary = run.ensure_wrk()
    run.PYTHON[:] = [run.prepare_python(args.dev_venv)]
    load_before = os.getloadavg()
    steps = sweep(args, binary)
    choice = choose(steps)
    from manifests.deployment import DEPLOYMENT

    rendered = {
        "target": DEPLOYMENT.target,
        "container_concurrency": DEPLOYMENT.container_concurrency,
        "cpu_request": DEPLOYMENT.cpu_request,
        "cpu_limit": DEPLOYMENT.cpu_limit,
    }
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "steps": [asdict(s) for s in steps],
        "choice": asdict(choice),
        "rendered": rendered,
        "pinned": {role: sorted(found) for role, found in cpus.ROLES.items()},
        "args": vars(args),
    }
    (run.RESULTS / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table(steps))
    print(
        f"\nknee: {choice.knee} connections ({choice.capacity:.0f} events/s per core, "
        f"{choice.busy:.0%} of a core given in this run); chosen: target "
        f"{choice.target}, containerConcurrency {choice.container_concurrency}, CPU request "
        f"{choice.cpu_request}, limit {choice.cpu_limit}"
    )
    print(f"eventing/ renders: {rendered}")
    print(f"load average before/after: {load_before} / {report['loadavg_after']} (2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
