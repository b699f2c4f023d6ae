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

`--served` counts the same configurations through the HTTP layer the server runs (the protocol
`python -m eventfn` gives uvicorn, parsing bytes and writing bytes, over an in-memory transport:
no sockets, no kernel), and bare ASGI (`bench/bare.py`) through uvicorn's own protocol as
`make bench` serves it: what the server's Python layer costs per request, beside the app's.

    python -m bench.instructions            count (needs valgrind; apt-get install valgrind)
    python -m bench.instructions --config redis-oidc   one configuration only
    python -m bench.instructions --served   through the server's HTTP layer, bare ASGI too
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
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bench import production
from bench.run import ROOT, event_headers
from bench.target import BenchEvent, bench_event, resolved_or_exit

if TYPE_CHECKING:
    from eventfn.core.config import Settings

WARMUP = 200
# Events in flight at once, like `make bench`'s 32 connections: the broker delivers concurrently,
# and what a Redis round trip costs depends on how many requests share it.
CONCURRENCY = 32
# The configurations counted, by name: what each needs (Redis, the issuer's token).
CONFIGS = {"memory": (False, False), "redis": (True, False), "redis-oidc": (True, True)}
# Seconds a round of requests may take before the served driver gives up (a request unanswered).
ROUND_TIMEOUT = 60.0


def _headers(event: BenchEvent) -> list[tuple[bytes, bytes]]:
    """The event `make bench` sends, as uvicorn would hand its headers to the app."""
    return [
        (b"host", b"127.0.0.1:8080"),
        *((name.encode(), value.encode()) for name, value in event_headers(event).items()),
        (b"content-length", str(len(event.body)).encode()),
    ]


def _wire_head(event: BenchEvent) -> bytes:
    """The request `make bench`'s wrk script sends, as bytes on the wire, up to its ce-id."""
    lines = (b"%s: %s\r\n" % (name, value) for name, value in _headers(event))
    return b"POST / HTTP/1.1\r\n" + b"".join(lines)


def _scope(
    event_headers: list[tuple[bytes, bytes]], number: int, token: bytes | None = None
) -> dict[str, Any]:
    headers = [*event_headers, (b"ce-id", b"event-%d" % number)]
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
    """Send `WARMUP + events` binary-mode events through the app; the number answered 2xx.

    `settings` default to production's: the environment's, with JSON logs at info. `token`
    goes in every event's `Authorization: Bearer` header.
    """
    from eventfn.app import create_app
    from eventfn.core.config import Settings
    from eventfn.loading import load_registry

    settings = settings or Settings(log_format="json", log_level="info")
    app = create_app(settings, load_registry(settings.function_registry))
    event = bench_event(settings.function_registry)
    headers = _headers(event)
    message = {"type": "http.request", "body": event.body, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(sent: dict[str, Any]) -> None:
        if sent["type"] == "http.response.start":
            statuses.append(sent["status"])

    raw_token = token.encode() if token else None

    async def one(number: int) -> None:
        await app(_scope(headers, number, raw_token), receive, send)

    async with app.lifespan_context():
        total = WARMUP + events
        for start in range(0, total, CONCURRENCY):
            await asyncio.gather(*(one(n) for n in range(start, min(total, start + CONCURRENCY))))
    return sum(200 <= status < 300 for status in statuses)


class MemoryTransport(asyncio.Transport):
    """A connection's transport without a socket: it keeps the status of each response.

    A response is written whole in one call (the held writes) or as its head and its body; a
    head ends the wait of `drive_served` for this connection's answer.
    """

    def __init__(self, answered: Callable[[], None]) -> None:
        super().__init__()
        self.protocol: Any = None
        self.statuses: list[bytes] = []
        self.closing = False
        self._answered = answered

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if data[:9] == b"HTTP/1.1 ":
            self.statuses.append(bytes(data[9:12]))
            self._answered()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        peers = {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8080)}
        return peers.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_protocol(self) -> Any:
        return self.protocol

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol


async def drive_served(
    events: int, config: Any, event: BenchEvent, token: str | None = None
) -> int:
    """`drive`, through the HTTP protocol of uvicorn `config` over 32 in-memory connections.

    Each connection gets one request at a time (keep-alive, as wrk sends them); the number of
    2xx answers (200 with a reply, 202 for a type without one).
    """
    from uvicorn.server import ServerState

    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    auth = b"" if token is None else b"authorization: Bearer " + token.encode() + b"\r\n"
    # One future per round of requests, done when the last connection of the round answered:
    # the driver's own cost per request is a counter, as little as the count can carry.
    waiting = [0]
    round_done: list[asyncio.Future[None]] = [loop.create_future()]

    def answered() -> None:
        waiting[0] -= 1
        if waiting[0] == 0:
            round_done[0].set_result(None)

    connections = []
    for _ in range(CONCURRENCY):
        transport = MemoryTransport(answered)
        protocol = config.http_protocol_class(
            config=config, server_state=state, app_state={}, _loop=loop
        )
        transport.protocol = protocol
        protocol.connection_made(transport)
        connections.append(transport)
    head = _wire_head(event)
    total = WARMUP + events
    for start in range(0, total, CONCURRENCY):
        batch = connections[: min(CONCURRENCY, total - start)]
        waiting[0], round_done[0] = len(batch), loop.create_future()
        for number, transport in enumerate(batch, start):
            request = head + b"ce-id: event-%d\r\n" % number + auth + b"\r\n" + event.body
            transport.protocol.data_received(request)
        await asyncio.wait_for(round_done[0], ROUND_TIMEOUT)  # a request left unanswered
    for transport in connections:
        transport.protocol.connection_lost(None)
    return sum(status[:1] == b"2" for transport in connections for status in transport.statuses)


async def drive_server(
    events: int,
    settings: Settings | None = None,
    *,
    bare: bool = False,
    token: str | None = None,
) -> int:
    """`drive_served` with the function as `python -m eventfn` serves it (`settings` default to
    production's, as in `drive`), or with bare ASGI as `make bench` serves it (uvicorn's own
    httptools protocol)."""
    import uvicorn

    if bare:
        from bench.bare import app as bare_app

        config = uvicorn.Config(bare_app, http="httptools", log_config=None, access_log=False)
        return await drive_served(events, config, bench_event())
    from eventfn.app import create_app
    from eventfn.core.config import Settings
    from eventfn.loading import load_registry
    from eventfn.server.serve import server_config

    settings = settings or Settings(log_format="json", log_level="info")
    app = create_app(settings, load_registry(settings.function_registry))
    event = bench_event(settings.function_registry)
    async with app.lifespan_context():
        return await drive_served(events, server_config(app, settings), event, token)


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


def count(events: int, env: dict[str, str], through: str = "app") -> int:
    """Instructions callgrind counts for a run of `python -m bench.instructions --drive N`
    (`--through`: the app alone, the server's HTTP layer, or bare ASGI's)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind not found: apt-get install -y valgrind")
    argv = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, "-m", "bench.instructions", "--drive", str(events)]
    argv += ["--through", through]
    if "REDIS_URL" in env:
        production.flush(env["REDIS_URL"])
    done = subprocess.run(  # noqa: S603 - valgrind on our interpreter and module
        argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def run_drive(events: int, through: str) -> int:
    """`--drive`: the events answered 2xx (the server's layers run on uvloop, as it serves)."""
    token = os.environ.get("BENCH_TOKEN") or None
    if through == "app":
        return asyncio.run(drive(events, token=token))
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(drive_server(events, bare=through == "bare", token=token))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--drive", type=int, help="drive N events and exit (no counting)")
    parser.add_argument("--through", choices=["app", "server", "bare"], default="app")
    parser.add_argument("--events", type=int, default=1600, help="events between the two runs")
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--served", action="store_true", help="through the server's HTTP layer")
    args = parser.parse_args(argv)
    resolved_or_exit()  # the function's event, before valgrind starts
    if args.drive is not None:
        answered = run_drive(args.drive, args.through)
        if answered != WARMUP + args.drive:
            print(f"only {answered} of {WARMUP + args.drive} events answered 2xx", file=sys.stderr)
            return 1
        return 0
    small, large = 400, 400 + args.events
    through = "server" if args.served else "app"
    counted = {}
    if args.served:
        with environment("memory") as env:
            counted["bare"] = (count(large, env, "bare") - count(small, env, "bare")) // args.events
        print(f"{'bare':<11} {counted['bare']:>9} instructions per request", file=sys.stderr)
    for config in CONFIGS if args.config == "all" else [args.config]:
        with environment(config) as env:
            per_event = count(large, env, through) - count(small, env, through)
            counted[config] = per_event // args.events
        print(f"{config:<11} {counted[config]:>9} instructions per event", file=sys.stderr)
    print(report_counts(counted, served=args.served))
    return 0


def report_counts(counted: dict[str, int], *, served: bool) -> str:
    """The counts' lines: each against the in-memory row, and against bare ASGI when served."""
    where = "through the server's HTTP layer" if served else "in-process"
    memory, bare = counted.get("memory"), counted.get("bare")
    lines = []
    for config, per_event in counted.items():
        against = []
        if memory and config not in ("memory", "bare"):
            against.append(f"{per_event / memory:.2f}x in-memory")
        if bare and config != "bare":
            against.append(f"{per_event / bare:.2f}x bare ASGI")
        versus = f" ({', '.join(against)})" if against else ""
        lines.append(f"{per_event} instructions per event, {config}{versus} (callgrind, {where})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
