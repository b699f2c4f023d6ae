"""`make bench-filters`: what a Trigger filter costs per event, beside decoding the event.

The Broker evaluates a Trigger's filters on every event it routes, and the local test broker
does the same; this times, per event, the steps on one typical event (binary mode, two
extensions, a small JSON body):

- `decode`: the ingress's strict binary-mode decode (`eventfn.binding.decode`);
- `attributes`: the event's attributes as CESQL reads them (`cesql.attributes_of`);
- `cesql ...`: one compiled expression's `matches` (and one with LIKE and IN);
- `trigger filters`: a routed Trigger's whole check (exact type, exact region, the CESQL);
- `compile`: parsing and compiling the expression, paid once per filter, not per event.

Timed, the best of several repeats of many calls each (timeit): the absolute numbers move with
the machine's load, the ratios to `decode` much less. `--instructions` counts CPU instructions
per call instead (callgrind, two runs of each step, their difference): deterministic.

    python -m bench.filters [--number N]
    python -m bench.filters --instructions
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import timeit
from collections.abc import Callable

from eventfn import binding
from eventfn.routing import cesql
from eventfn.routing.filters import compile_trigger

HEADERS = [
    (b"ce-specversion", b"1.0"),
    (b"ce-id", b"bench-1"),
    (b"ce-source", b"https://shop.example/orders"),
    (b"ce-type", b"com.acme.order.placed"),
    (b"ce-region", b"eu"),
    (b"ce-priority", b"5"),
    (b"ce-tier", b"gold"),
    (b"content-type", b"application/json"),
]
BODY = b'{"sku": "book", "quantity": 2}'
TYPICAL = "region = 'eu' AND priority > 3"
RICHER = "source LIKE 'https://%' AND tier IN ('gold', 'silver') AND NOT (priority < 2)"
TRIGGER = {
    "filters": [
        {"exact": {"type": "com.acme.order.placed"}},
        {"exact": {"region": "eu"}},
        {"cesql": TYPICAL},
    ]
}


def steps() -> dict[str, Callable[[], object]]:
    """Each step on the event, by name, as a call of no arguments."""
    event = binding.decode(HEADERS, BODY).events[0]
    attributes = cesql.attributes_of(event.attributes)
    typical, richer = cesql.compile(TYPICAL), cesql.compile(RICHER)
    check = compile_trigger(TRIGGER)
    if not (typical.matches(attributes) and richer.matches(attributes) and check(attributes).match):
        raise RuntimeError("the benchmark's event must pass its filters (all of them are timed)")
    return {
        "decode": lambda: binding.decode(HEADERS, BODY),
        "attributes": lambda: cesql.attributes_of(event.attributes),
        f"cesql {TYPICAL}": lambda: typical.matches(attributes),
        "cesql (LIKE, IN, NOT)": lambda: richer.matches(attributes),
        "trigger filters": lambda: check(attributes),
        "compile (once per filter)": lambda: cesql.compile(TYPICAL),
    }


# The compile step is a hundred times slower: run it a hundred times less.
SLOW = "compile (once per filter)"


def per_call(fn: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Microseconds per call: the best of `repeat` runs of `number` calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def measure(number: int) -> dict[str, float]:
    """Microseconds per call of every step (timed: the ratios are what holds)."""
    return {
        name: per_call(fn, number // 100 if name == SLOW else number)
        for name, fn in steps().items()
    }


def count(step: str, calls: int) -> int:
    """Instructions callgrind counts for a run of `--drive STEP CALLS`."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind not found: apt-get install -y valgrind")
    argv = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, "-m", "bench.filters", "--drive", step, str(calls)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def instructions(calls: int) -> dict[str, float]:
    """Instructions per call of every step: two runs' difference (start-up cancels out)."""
    counted = {}
    for name in steps():
        n = calls // 100 if name == SLOW else calls
        counted[name] = (count(name, 11 * n) - count(name, n)) / (10 * n)
    return counted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.filters")
    parser.add_argument("--number", type=int, default=50_000, help="calls per timed repeat")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions (valgrind) instead"
    )
    parser.add_argument("--drive", nargs=2, metavar=("STEP", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        step, calls = args.drive[0], int(args.drive[1])
        fn = steps()[step]
        for _ in range(calls):
            fn()
        return 0
    if args.instructions:
        results, unit = instructions(2_000), "instructions"
    else:
        results, unit = measure(args.number), "µs"
    decode = results["decode"]
    for name, value in results.items():
        print(f"{name:40} {value:10.2f} {unit}  {value / decode:5.2f}x decode")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
