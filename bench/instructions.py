"""`make bench-instructions`: CPU instructions per event of the ingress, counted, not timed.

Wall-clock ratios on a shared 2-core VM swing by a third between runs; an instruction count does
not. This drives the function's ASGI app in-process (no sockets, no uvicorn) with the same event
`make bench` sends (a unique `ce-id` each, production settings: JSON logs at info, in-memory
dedupe) under `valgrind --tool=callgrind`, twice with different event counts, and reports the
difference per event: start-up and imports cancel out. It is the number to watch when changing
the hot path; `make bench` still says what it buys under load.

    python -m bench.instructions            count (needs valgrind; apt-get install valgrind)
    python -m bench.instructions --drive N  drive N events without counting (what valgrind runs)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

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


def _scope(number: int) -> dict[str, Any]:
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
        "headers": [*_HEADERS, (b"ce-id", b"event-%d" % number)],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def drive(events: int, settings: Settings | None = None) -> int:
    """Send `WARMUP + events` binary-mode events through the app; the number answered 200.

    `settings` default to production's: the environment's, with JSON logs at info.
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

    async with app.lifespan_context():
        for number in range(WARMUP + events):
            await app(_scope(number), receive, send)
    return statuses.count(200)


def count(events: int) -> int:
    """Instructions callgrind counts for a run of `python -m bench.instructions --drive N`."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind not found: apt-get install -y valgrind")
    argv = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, "-m", "bench.instructions", "--drive", str(events)]
    env = {**os.environ, "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    done = subprocess.run(  # noqa: S603 - valgrind on our interpreter and module
        argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--drive", type=int, help="drive N events and exit (no counting)")
    parser.add_argument("--events", type=int, default=1600, help="events between the two runs")
    args = parser.parse_args(argv)
    if args.drive is not None:
        answered = asyncio.run(drive(args.drive))
        if answered != WARMUP + args.drive:
            print(f"only {answered} of {WARMUP + args.drive} events answered 200", file=sys.stderr)
            return 1
        return 0
    small, large = 400, 400 + args.events
    per_event = (count(large) - count(small)) // args.events
    print(f"{per_event} instructions per event (callgrind, in-process ingress)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
