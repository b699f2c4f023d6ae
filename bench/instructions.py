"""`make bench-instructions`: CPU instructions per event of the ingress, counted, not timed.

Wall-clock ratios on a shared 2-core VM swing by a third between runs; an instruction count does
not. This drives the function's ASGI app in-process (no sockets, no uvicorn) with the same event
`make bench` sends (a unique `ce-id` each, 32 in flight at a time, production settings: JSON
logs at info) under `valgrind --tool=callgrind`, twice with different event counts, and reports the
difference per event: start-up and imports cancel out. It is the number to watch when changing
the hot path; `make bench` still says what it buys under load.

It counts three configurations, as `make bench` loads them: in-memory dedupe without
authentication; `REDIS_URL` (a real `redis-server` of its own on loopback: the client's Python
work is counted, Redis' own is another process); and `REDIS_URL` + OIDC (every event carries the
same RS256 token, as Knative's dispatcher sends a cached one; see `bench/production.py`).

    python -m bench.instructions            count (needs valgrind; apt-get install valgrind)
    python -m bench.instructions --config redis-oidc   one configuration only
    python -m bench.instructions --drive N  drive N events without counting (what valgrind runs)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bench import production
from bench.run import EVENT_BODY, EVENT_HEADERS, ROOT

if TYPE_CHECKING:
    from eventfn.core.config import Settings

# The event `make bench` sends, as uvicorn would hand its headers to the app.
BODY = EVENT_BODY
_HEADERS = [
    (b"host", b"127.0.0.1:8080"),
    *((name.encode(), value.encode()) for name, value in EVENT_HEADERS.items()),
    (b"content-length", str(len(BODY)).encode()),
]
WARMUP = 200
# Events in flight at once, like `make bench`'s 32 connections: the broker delivers concurrently,
# and what a Redis round trip costs depends on how many requests share it.
CONCURRENCY = 32
# The configurations counted, by name: what each needs (Redis, the issuer's token).
CONFIGS = {"memory": (False, False), "redis": (True, False), "redis-oidc": (True, True)}


def _scope(number: int, token: bytes | None = None) -> dict[str, Any]:
    headers = [*_HEADERS, (b"ce-id", b"event-%d" % number)]
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def drive(events: int, settings: Settings | None = None, token: str | None = None) -> int:
    """Send `WARMUP + events` binary-mode events through the app; the number answered 200.

    `settings` default to production's: the environment's, with JSON logs at info. `token`
    goes in every event's `Authorization: Bearer` header.
    """
    from eventfn.app import create_app
    from eventfn.core.config import Settings

    app = create_app(settings or Settings(log_format="json", log_level="info"))
    message = {"type": "http.request", "body": BODY, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(sent: dict[str, Any]) -> None:
        if sent["type"] == "http.response.start":
            statuses.append(sent["status"])

    raw_token = token.encode() if token else None

    async def one(number: int) -> None:
        await app(_scope(number, raw_token), receive, send)

    async with app.lifespan_context():
        total = WARMUP + events
        for start in range(0, total, CONCURRENCY):
            await asyncio.gather(*(one(n) for n in range(start, min(total, start + CONCURRENCY))))
    return statuses.count(200)


@contextlib.contextmanager
def environment(config: str) -> Iterator[dict[str, str]]:
    """The environment variables of `config`, with its Redis and issuer running meanwhile."""
    redis, oidc = CONFIGS[config]
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    with contextlib.ExitStack() as stack:
        if redis:
            env["REDIS_URL"] = stack.enter_context(production.redis_server())
        if oidc:
            issuer = stack.enter_context(production.issuer())
            env.update(issuer.env(), BENCH_TOKEN=issuer.token)
        yield env


def count(events: int, env: dict[str, str]) -> int:
    """Instructions callgrind counts for a run of `python -m bench.instructions --drive N`."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind not found: apt-get install -y valgrind")
    argv = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, "-m", "bench.instructions", "--drive", str(events)]
    if "REDIS_URL" in env:
        production.flush(env["REDIS_URL"])
    done = subprocess.run(  # noqa: S603 - valgrind on our interpreter and module
        argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--drive", type=int, help="drive N events and exit (no counting)")
    parser.add_argument("--events", type=int, default=1600, help="events between the two runs")
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    args = parser.parse_args(argv)
    if args.drive is not None:
        answered = asyncio.run(drive(args.drive, token=os.environ.get("BENCH_TOKEN") or None))
        if answered != WARMUP + args.drive:
            print(f"only {answered} of {WARMUP + args.drive} events answered 200", file=sys.stderr)
            return 1
        return 0
    small, large = 400, 400 + args.events
    counted = {}
    for config in CONFIGS if args.config == "all" else [args.config]:
        with environment(config) as env:
            counted[config] = (count(large, env) - count(small, env)) // args.events
        print(f"{config:<11} {counted[config]:>9} instructions per event", file=sys.stderr)
    memory = counted.get("memory")
    for config, per_event in counted.items():
        versus = f" ({per_event / memory:.2f}x in-memory)" if memory and config != "memory" else ""
        print(f"{per_event} instructions per event, {config}{versus} (callgrind, in-process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
