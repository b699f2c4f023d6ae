"""`make loadtest`: `locust -f loadtest/locustfile.py` headless and bounded, against a local server.

Starts `python -m eventfn` on a free loopback port (or uses `--host`), waits for readiness,
runs Locust headless for `--run-time` with `--users` users spawned at `--spawn-rate`, stops the
server, then prints one line per request name. Exits 1 when any request failed (Locust's own
`--exit-code-on-error`) or when nothing was sent at all (which Locust counts as a success).

The events are of the default type of the function `FUNCTION_REGISTRY` names, with its schema's
example (bench/target.py), handed to Locust in its environment; `--print-env` prints them as
shell `export`s, for running Locust by hand.

    python -m loadtest.run --locust .tools/locust/bin/locust --run-time 10s --users 20
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.target import bench_event, resolved_or_exit

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(port: int) -> bool:
    """True once the server answers its readiness probe with 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health/readiness")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def local_server(timeout: float = 30.0) -> Iterator[str]:
    """`python -m eventfn` on a free loopback port, ready; yields its URL, stops it after."""
    port = free_port()
    # warning: the per-event info lines of a load test would bury Locust's summary.
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning"}
    proc = subprocess.Popen([sys.executable, "-m", "eventfn"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while not ready(port):
            if proc.poll() is not None:
                raise RuntimeError(f"python -m eventfn exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"python -m eventfn not ready within {timeout}s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def locust(args: argparse.Namespace, host: str, stats: Path) -> int:
    """Run Locust headless and bounded; its exit status (1 on any failed request)."""
    argv = [args.locust, "-f", str(LOCUSTFILE), "--host", host, "--headless", "--only-summary"]
    argv += ["--users", str(args.users), "--spawn-rate", str(args.spawn_rate)]
    argv += ["--run-time", args.run_time, "--stop-timeout", "5", "--exit-code-on-error", "1"]
    argv += ["--json-file", str(stats.with_suffix(""))]
    env = {**os.environ, **bench_event().env()}
    return subprocess.run(argv, cwd=ROOT, env=env, check=False).returncode  # noqa: S603


def summary(stats: list[dict[str, Any]]) -> tuple[int, int]:
    """Print requests and failures per request name; return the totals."""
    requests = failures = 0
    for entry in stats:
        requests += entry["num_requests"]
        failures += entry["num_failures"]
        average = entry["total_response_time"] / max(entry["num_requests"], 1)
        print(
            f"{entry['name']:<22} {entry['num_requests']:>7} requests"
            f" {entry['num_failures']:>5} failed  average {average:.1f} ms"
        )
    return requests, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locust", default=str(ROOT / ".tools" / "locust" / "bin" / "locust"))
    parser.add_argument("--host", help="load this URL instead of a local python -m eventfn")
    parser.add_argument("--run-time", default="10s", help="how long Locust runs (10s, 1m)")
    parser.add_argument("--users", type=int, default=20, help="concurrent users at the peak")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started per second")
    parser.add_argument("--print-env", action="store_true", help="print the event as `export`s")
    args = parser.parse_args(argv)
    event = resolved_or_exit()
    if args.print_env:
        for name, value in event.env().items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        stats = Path(scratch) / "stats.json"
        if args.host:
            status = locust(args, args.host, stats)
        else:
            with local_server() as host:
                status = locust(args, host, stats)
        requests, failures = summary(json.loads(stats.read_text()) if stats.exists() else [])
    if requests == 0:
        print("no request was sent", file=sys.stderr)
        return 1
    print(f"total: {requests} requests, {failures} failed")
    return status or (1 if failures else 0)


if __name__ == "__main__":
    sys.exit(main())
