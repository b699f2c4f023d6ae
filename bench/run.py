"""`make bench`: the function's ingress against a bare ASGI app and the tutorial receiver.

All run in one go on the same machine, each as one uvicorn worker (uvloop, httptools) on
loopback, loaded by the same `wrk` command (unique `ce-id` per request, see `event.lua`). The
function runs three times over: as `make bench` always measured it (in-memory dedupe, no
authentication), with `REDIS_URL` (Redis dedupe, as `eventing/` deploys it), and with `REDIS_URL`
and OIDC (every delivery carries an RS256 token; see `bench/production.py`). Then
cold start (process start to first 2xx, median of several runs) of `python -m eventfn` against
FastAPI's hello world on the same interpreter, and resident memory after load.

Absolute numbers drift between runs and machines; the targets are ratios within one run.
Results go to `bench/results/latest.json` and a Markdown table on stdout.

`--cold-start-only` (`make bench-coldstart`) measures the cold starts alone, without wrk: the
manual's cold-start figure (docs/internals/performance.md). With `--as-is` the servers run on
this interpreter exactly as its environment is (no bytecode compiled first,
PYTHONDONTWRITEBYTECODE passed through): what `make run` costs on a given machine.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpus
from bench.report import TARGETS, ratios, table
from bench.target import BenchEvent, bench_event, resolved_or_exit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "event.lua"
# A production-like environment: `uv sync --no-dev` (no dev tools whose imports would tag along,
# like rich under structlog), bytecode compiled as a container image would have it.
PROD_VENV = RESULTS / "venv"
UVICORN = ["-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
UVICORN += ["--log-level", "warning", "--host", "127.0.0.1"]
# The event sent: the default type of the function FUNCTION_REGISTRY names, with its example.
EVENT_SOURCE = "/bench/probe"
# Production defaults of the function: JSON logs at info, in-memory dedupe.
FUNCTION_ENV = {"LOG_FORMAT": "json", "LOG_LEVEL": "info"}


@dataclass
class Server:
    """How to start one server under test, and how to ask it for one 2xx."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    probe: str = "event"  # "event": POST a CloudEvent; "get": GET /; "facade": POST its data
    redis: bool = False  # gets the benchmark's Redis as REDIS_URL (flushed before each load)
    oidc: bool = False  # gets the benchmark's issuer; every request carries its token


SERVERS = {
    "bare": Server("bare ASGI", [*UVICORN, "bench.bare:app"]),
    "tutorial": Server("FastAPI + cloudevents SDK", [*UVICORN, "bench.apps:tutorial"]),
    "function": Server("this function", ["-m", "eventfn"], FUNCTION_ENV),
    "function-redis": Server("+ REDIS_URL", ["-m", "eventfn"], FUNCTION_ENV, redis=True),
    "function-oidc": Server(
        "+ REDIS_URL + OIDC", ["-m", "eventfn"], FUNCTION_ENV, redis=True, oidc=True
    ),
    "hello": Server("FastAPI hello world", [*UVICORN, "bench.apps:hello"], probe="get"),
    # The same process, its first reply asked of the facade, which is built on its first request.
    "function-facade": Server("this function", ["-m", "eventfn"], FUNCTION_ENV, probe="facade"),
}
PYTHON = [sys.executable]  # replaced by the production-like venv's interpreter in main()
# Dropped from the servers' environment: an image ships compiled bytecode (`--as-is` keeps it).
DROPPED_ENV = ["PYTHONDONTWRITEBYTECODE"]

# What the production rows are given for the run (see `environment`): REDIS_URL and the token.
PRODUCTION: dict[str, str] = {}


@contextlib.contextmanager
def environment(keys: list[str]) -> Iterator[None]:
    """Start the Redis and the issuer that the servers of `keys` need, for the whole run."""
    from bench import production

    with contextlib.ExitStack() as stack:
        if any(SERVERS[key].redis for key in keys):
            PRODUCTION["REDIS_URL"] = stack.enter_context(production.redis_server())
        if any(SERVERS[key].oidc for key in keys):
            found = stack.enter_context(production.issuer())
            PRODUCTION.update(found.env(), BENCH_TOKEN=found.token)
        try:
            yield
        finally:
            PRODUCTION.clear()


def server_env(server: Server) -> dict[str, str]:
    """The environment variables `server` is started with, the run's Redis and issuer included."""
    env = dict(server.env)
    if server.redis:
        env["REDIS_URL"] = PRODUCTION["REDIS_URL"]
    if server.oidc:
        env.update({k: v for k, v in PRODUCTION.items() if k.startswith("OIDC_")})
    return env


def token_for(server: Server) -> str | None:
    return PRODUCTION["BENCH_TOKEN"] if server.oidc else None


def prepare_python(dev: bool) -> str:
    """The interpreter the servers run on, with every module's bytecode compiled."""
    python = sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not dev:
        uv = ROOT / ".tools" / "bin" / "uv"
        env["UV_PROJECT_ENVIRONMENT"] = str(PROD_VENV)
        sync = [str(uv), "sync", "--frozen", "--no-dev", "--compile-bytecode", "--quiet"]
        sync += ["--python", os.environ.get("PYTHON", "python3")]
        subprocess.run(sync, cwd=ROOT, env=env, check=True)  # noqa: S603
        python = str(PROD_VENV / "bin" / "python")
    compile_all = [python, "-m", "compileall", "-q", "handler", "schemas", "bench"]
    subprocess.run(compile_all, cwd=ROOT, env=env, check=True)  # noqa: S603
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def event_headers(event: BenchEvent) -> dict[str, str]:
    """The binary-mode headers of `event`, but its ce-id."""
    return {
        "ce-specversion": "1.0",
        "ce-source": EVENT_SOURCE,
        "ce-type": event.type,
        "content-type": "application/json",
    }


def probe(port: int, kind: str, n: int = 0, token: str | None = None) -> bool:
    """One request; True on a 2xx answer, False while the server is not up yet."""
    event = bench_event()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    headers = {**event_headers(event), "ce-id": f"probe-{time.time_ns()}-{n}"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    try:
        if kind == "get":
            conn.request("GET", "/")
        elif kind == "facade":
            json_only = {"content-type": "application/json"}
            conn.request("POST", event.facade_path, event.body, json_only)
        else:
            conn.request("POST", "/", event.body, headers)
        return 200 <= conn.getresponse().status < 300
    except OSError:
        return False
    finally:
        conn.close()


@contextlib.contextmanager
def running(
    server: Server, timeout: float = 30.0
) -> Iterator[tuple[subprocess.Popen[bytes], int, float]]:
    """Start `server`; yield the process, its port and the seconds to its first 2xx."""
    port = free_port()
    argv = [*PYTHON, *server.argv]
    if server.argv[1] == "uvicorn":
        argv += ["--port", str(port)]
    env = {**os.environ, **server_env(server), "PORT": str(port), "HOST": "127.0.0.1"}
    # The stand-in servers answer the function's reply (bench/target.py), the function its own:
    # both serve the registry the event was read from.
    env.update(bench_event().env(), FUNCTION_REGISTRY=bench_event().registry)
    for name in DROPPED_ENV:
        env.pop(name, None)
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our interpreter, our modules
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=cpus.preexec("server"),  # noqa: PLW1509 - no threads here
    )
    try:
        while not probe(port, server.probe, token=token_for(server)):
            if proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {proc.returncode}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"{server.name} did not answer within {timeout}s")
            time.sleep(0.002)
        yield proc, port, time.perf_counter() - started
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk", file=sys.stderr)
    subprocess.run(["apt-get", "update"], check=True)  # noqa: S607
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)  # noqa: S607
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing")
    return found


def wrk(
    binary: str,
    port: int,
    seconds: int,
    connections: int,
    threads: int,
    *,
    get: bool = False,
    token: str | None = None,
) -> dict[str, Any]:
    """Run wrk against `port`; its Lua `done` prints one JSON summary line.

    With `token`, every request carries `Authorization: Bearer <token>` (the same bytes each
    time, as Knative's dispatcher sends a cached token). The event is `bench_event()`'s, handed
    to the script in its environment.
    """
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s"]
    argv += [str(LUA), f"http://127.0.0.1:{port}/"]
    env = {**os.environ, "BENCH_GET": "1" if get else "0", "BENCH_TOKEN": token or ""}
    if not get:
        env.update(bench_event().env())
    out = subprocess.run(  # noqa: S603
        argv,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=cpus.preexec("others"),
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6)),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "non2xx": raw["non2xx"],
        "socket_errors": errors,
    }


def cpu_seconds(pid: int) -> tuple[float, float]:
    """The user and the system CPU time `pid` has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def measure(
    key: str, proc: subprocess.Popen[bytes], port: int, args: argparse.Namespace, binary: str
) -> dict[str, Any]:
    """One round of load on a running server: req/s, latency, and its CPU time per request.

    CPU time per request hardly depends on what else the machine is doing, unlike req/s, so it
    shows the cost of the code even on a busy shared machine.
    """
    user, system = cpu_seconds(proc.pid)
    result = load_for(key, port, args.duration, args, binary)
    user_after, system_after = cpu_seconds(proc.pid)
    per_request = 1e6 / result["requests"]
    result["user_us"] = round((user_after - user) * per_request, 1)
    result["cpu_us"] = round((user_after - user + system_after - system) * per_request, 1)
    result["loadavg"] = os.getloadavg()[0]  # the 1-minute figure of /proc/loadavg
    print(f"  {key:<14} {result['rps']:>7} req/s  p99 {result['p99_ms']:.2f} ms", file=sys.stderr)
    return result


def load_for(
    key: str, port: int, seconds: int, args: argparse.Namespace, binary: str
) -> dict[str, Any]:
    """`seconds` of the run's wrk load on server `key`: its requests, token included."""
    server = SERVERS[key]
    get, token = server.probe == "get", token_for(server)
    return wrk(binary, port, seconds, args.connections, args.threads, get=get, token=token)


def warm(key: str, port: int, args: argparse.Namespace, binary: str) -> None:
    load_for(key, port, args.warmup, args, binary)


def load(key: str, args: argparse.Namespace, binary: str) -> dict[str, Any]:
    """`--only`: start one server, warm it up, load it once, read its RSS while it is up."""
    from bench import production

    if SERVERS[key].redis:
        production.flush(PRODUCTION["REDIS_URL"])
    with running(SERVERS[key]) as (proc, port, _):
        warm(key, port, args, binary)
        result = measure(key, proc, port, args, binary)
        result["rss_mb"] = round(rss_mb(proc.pid), 1)
    return result


def rounds(keys: list[str], args: argparse.Namespace, binary: str) -> dict[str, Any]:
    """Start every server once, then load them in turn, `args.rounds` short rounds each.

    On a shared VM the machine's speed drifts by half within a minute (bare ASGI alone was
    measured at 15,000 to 27,000 req/s a few seconds apart). So the servers stay up for the
    whole run and take turns in short rounds, the order reversed every other round, and each
    ratio is taken round by round (`report.ratios`): two servers measured seconds apart saw
    the same machine. Each server's row is its median round; RSS is read after the last.
    """
    from bench import production

    if PRODUCTION.get("REDIS_URL"):
        production.flush(PRODUCTION["REDIS_URL"])
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    with contextlib.ExitStack() as stack:
        up = {key: stack.enter_context(running(SERVERS[key])) for key in keys}
        for key, (_, port, _) in up.items():
            warm(key, port, args, binary)
        for number in range(args.rounds):
            print(f"round {number + 1}/{args.rounds}", file=sys.stderr)
            for key in keys if number % 2 == 0 else reversed(keys):
                proc, port, _ = up[key]
                runs[key].append(measure(key, proc, port, args, binary))
        rss = {key: round(rss_mb(proc.pid), 1) for key, (proc, _, _) in up.items()}
    results = {}
    for key, found in runs.items():
        median = sorted(found, key=lambda r: r["rps"])[len(found) // 2]
        results[key] = {
            **median,
            "non2xx": sum(r["non2xx"] for r in found),
            "socket_errors": sum(r["socket_errors"] for r in found),
            "rss_mb": rss[key],
            "cpu_us": statistics.median(r["cpu_us"] for r in found),
            "user_us": statistics.median(r["user_us"] for r in found),
            "rounds": [
                {k: r[k] for k in ("rps", "p50_ms", "p99_ms", "cpu_us", "user_us", "loadavg")}
                for r in found
            ],
        }
    return results


def cold_start(key: str, runs: int) -> dict[str, Any]:
    """Median seconds from process start to the first 2xx, and the idle RSS after it."""
    times, rss = [], []
    for _ in range(runs):
        with running(SERVERS[key]) as (proc, _, seconds):
            times.append(seconds)
            rss.append(rss_mb(proc.pid))
    return {
        "cold_start_ms": round(statistics.median(times) * 1000, 1),
        "idle_rss_mb": round(statistics.median(rss), 1),
    }


# The cold starts `--cold-start-only` measures, each as process start to its first reply: what
# a pod started from zero (min-scale 0) costs the event, or the facade call, that woke it.
COLD = {
    "hello": "FastAPI hello world",
    "function": "this function",
    "function-facade": "this function, first reply through the facade",
    "function-oidc": "this function as eventing/ deploys it (Redis + OIDC)",
}


def cold_starts(args: argparse.Namespace) -> int:
    """`--cold-start-only`: the function's cold starts against FastAPI hello, as a table."""
    if args.as_is:
        DROPPED_ENV.clear()
    else:
        PYTHON[:] = [prepare_python(args.dev_venv)]
    print(f"cold start: {args.cold_runs} runs each, on {PYTHON[0]}", file=sys.stderr)
    keys = ["hello", "function", "function-facade"]
    if not args.no_production and shutil.which("redis-server"):
        keys.append("function-oidc")  # its Redis and its issuer run beside it, on loopback
    with environment(keys):
        results = {key: cold_start(key, args.cold_runs) for key in keys}
    ratio = results["function"]["cold_start_ms"] / results["hello"]["cold_start_ms"]
    print("| server | cold start ms | idle RSS MiB |\n|---|---:|---:|")
    for key, found in results.items():
        print(f"| {COLD[key]} | {found['cold_start_ms']:.0f} | {found['idle_rss_mb']:.1f} |")
    print(f"\ncold start vs FastAPI hello: {ratio:.2f}x (target <= {TARGETS['cold_start']}x)")
    return 1 if args.strict and ratio > TARGETS["cold_start"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds measured per round")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per server")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--cold-runs", type=int, default=7, help="cold starts per server")
    parser.add_argument("--only", choices=sorted(SERVERS), help="load one server and stop")
    parser.add_argument("--dev-venv", action="store_true", help="run on .venv (with dev tools)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--cold-start-only", action="store_true", help="cold starts, no load")
    parser.add_argument(
        "--as-is", action="store_true", help="cold starts on this interpreter, bytecode as it is"
    )
    parser.add_argument(
        "--no-production", action="store_true", help="skip the Redis and Redis + OIDC rows"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="servers on the last CPU, wrk and the services on the others (bench/cpus.py)",
    )
    args = parser.parse_args(argv)
    resolved_or_exit()  # the function's event, before any server starts
    if args.pin:
        cpus.pin()
    if args.cold_start_only or args.as_is:
        return cold_starts(args)
    binary = ensure_wrk()
    PYTHON[:] = [prepare_python(args.dev_venv)]
    if args.only:
        with environment([args.only]):
            print(json.dumps(load(args.only, args, binary)))
        return 0
    pinned = f", pinned: servers on CPU {cpus.ROLES['server']}" if cpus.ROLES else ""
    command = f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s"
    print(f"load: {command}{pinned}", file=sys.stderr)
    load_before = os.getloadavg()
    keys = ["bare", "hello", "tutorial", "function"]
    keys += [] if args.no_production else ["function-redis", "function-oidc"]
    with environment(keys):
        results = rounds(keys, args, binary)
        print(f"cold start: {args.cold_runs} runs each", file=sys.stderr)
        for key in ("hello", "function"):
            results[key].update(cold_start(key, args.cold_runs))
    r = ratios(results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": PYTHON[0],
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "pinned": {role: sorted(found) for role, found in cpus.ROLES.items()},
        "args": vars(args),
    }
    report = {"meta": meta, "results": results, "ratios": r, "targets": TARGETS}
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(table(results, r))
    print(f"\nload average before/after: {load_before} / {meta['loadavg_after']}")
    print("  (/proc/loadavg; 2 cores: above 2, other work shared the machine)")
    return 1 if args.strict and not all(r["met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
