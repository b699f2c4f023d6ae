"""`make bench-filters`: what a Trigger filter costs per event, beside decoding the event.

The Broker evaluates a Trigger's filters on every event it routes, and the local test broker
does the same; this times, per event, the steps on one typical event (binary mode, two
extensions, a small JSON body):

- `decode`: the ingress's strict binary-mode decode (`eventfn.binding.decode`);
- `attributes`: the event's attributes as CESQL reads them (`cesql.attributes_of`);
- `cesql ...`: one compiled expression's `matches` (and one with LIKE and IN);
- `trigger filters`: a routed Trigger's whole check (exact type, exact region, the CESQL);
- `compile`: parsing and compiling the expression, paid once per filter, not per event.

Best of several repeats of many calls each (timeit); the absolute numbers move with the machine,
the ratios to `decode` much less.

    python -m bench.filters [--number N]
"""

from __future__ import annotations

import argparse
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


def per_call(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Microseconds per call: the best of `repeat` runs of `number` calls."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def measure(number: int) -> dict[str, float]:
    attributes = cesql.attributes_of(binding.decode(HEADERS, BODY).events[0].attributes)
    typical, richer = cesql.compile(TYPICAL), cesql.compile(RICHER)
    check = compile_trigger(TRIGGER)
    if not (typical.matches(attributes) and richer.matches(attributes) and check(attributes).match):
        raise RuntimeError("the benchmark's event must pass its filters (all of them are timed)")
    event = binding.decode(HEADERS, BODY).events[0]
    return {
        "decode": per_call(lambda: binding.decode(HEADERS, BODY), number),
        "attributes": per_call(lambda: cesql.attributes_of(event.attributes), number),
        f"cesql {TYPICAL}": per_call(lambda: typical.matches(attributes), number),
        "cesql (LIKE, IN, NOT)": per_call(lambda: richer.matches(attributes), number),
        "trigger filters": per_call(lambda: check(attributes), number),
        "compile (once per filter)": per_call(lambda: cesql.compile(TYPICAL), number // 100),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.filters")
    parser.add_argument("--number", type=int, default=50_000)
    args = parser.parse_args(argv)
    results = measure(args.number)
    decode = results["decode"]
    for name, micros in results.items():
        print(f"{name:40} {micros:8.2f} µs  {micros / decode:5.2f}x decode")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
