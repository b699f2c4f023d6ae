"""Shared test helpers: event builders, an in-process client, a real server, a real Redis.

Builders return plain headers/bodies so that tests show exactly what goes over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from eventfn import Registry
from eventfn.app import FunctionApp, create_app
from eventfn.binding import Event
from eventfn.core.config import Settings
from eventfn.testing import function_client, isolated_settings
from tests.functions import ANSWER, ASK, Answer, registry_with
from tests.functions import registry as suite_registry
from tests.helpers.loop_time import one_turn

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"

# The suite function's default type and its reply (tests/functions), not the example's.
QUERY = ASK.type
RESPONSE = ANSWER.type
# What the tests' apps and processes serve unless a test says otherwise: the suite's function.
SUITE_REGISTRY = "tests.functions:registry"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
PROBLEM = "application/problem+json"


def new_id() -> str:
    return str(uuid.uuid4())


def cloud_event(data: bytes = b"{}", **attributes: Any) -> Event:
    """An event as the stores, the publisher and the feed hold it: a reply of the suite's
    function with JSON `data` and a new id; `attributes` over those (id, source, type,
    extensions)."""
    base = {"specversion": "1.0", "id": new_id(), "source": "/tests", "type": RESPONSE}
    return Event({**base, "datacontenttype": "application/json", **attributes}, data)


def binary_headers(
    *,
    id: str | None = None,
    type: str = QUERY,
    source: str = "/tests",
    specversion: str = "1.0",
    content_type: str | None = "application/json",
    **extensions: str,
) -> dict[str, str]:
    """Headers of a binary-mode event; extensions become `ce-<name>` headers."""
    headers = {
        "ce-specversion": specversion,
        "ce-id": id or new_id(),
        "ce-source": source,
        "ce-type": type,
    }
    if content_type is not None:
        headers["content-type"] = content_type
    headers.update({f"ce-{k}": v for k, v in extensions.items()})
    return headers


def event_json(
    data: Any = None,
    *,
    id: str | None = None,
    type: str = QUERY,
    source: str = "/tests",
    specversion: str = "1.0",
    **attributes: Any,
) -> dict[str, Any]:
    """A JSON-format event as a dict (for structured mode and batches)."""
    event: dict[str, Any] = {
        "specversion": specversion,
        "id": id or new_id(),
        "source": source,
        "type": type,
        "datacontenttype": "application/json",
        **attributes,
    }
    if data is not None:
        event["data"] = data
    return event


def query(text: str = "What is Knative?", **parameters: Any) -> dict[str, Any]:
    """A payload of the suite's default type (`tests.functions.Question`)."""
    return {"query": text, "parameters": parameters} if parameters else {"query": text}


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def suite_settings(**overrides: Any) -> Settings:
    """Settings for tests: never read from the environment of the developer's shell; what
    builds a function from them (`FUNCTION_REGISTRY`) builds the suite's own."""
    return isolated_settings(**{"function_registry": SUITE_REGISTRY, **overrides})


def make_app(settings: Settings | None = None, *, registry: Registry | None = None) -> FunctionApp:
    """The function as `create_app` builds it, on test settings and the suite's own function
    (`tests.functions`: whatever `handler/` and `schemas/` hold leaves the suites as they are)."""
    return create_app(settings or suite_settings(), registry=registry or suite_registry)


def facade_path(app: FunctionApp | None = None) -> str:
    """The facade route of the default type of `app` (the suite's function by default)."""
    default = (app or make_app()).state.runtime.catalogue.default
    assert default is not None
    path: str = default.facade_path
    return path


def assert_problem(response: httpx.Response, status: int, *, retryable: bool = False) -> None:
    """`response` is a problem+json answer with `status`; a retryable one (a 503 the broker
    retries) says when, in whole seconds."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    if retryable:
        assert int(response.headers["retry-after"]) >= 1


def assert_bad_request(response: httpx.Response) -> None:
    assert_problem(response, 400)


def assert_unavailable(response: httpx.Response) -> None:
    assert_problem(response, 503, retryable=True)


def handler_client(
    handler: Any, **overrides: Any
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """`eventfn.testing.function_client` of a function whose `ASK` handler is `handler`."""
    return function_client(
        registry_with(handler), **{"function_registry": SUITE_REGISTRY, **overrides}
    )


def suite_client(**overrides: Any) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """`eventfn.testing.function_client` of the suite's function, on test settings."""
    return function_client(suite_registry, **{"function_registry": SUITE_REGISTRY, **overrides})


def shipped_function(tool: str) -> str:
    """FUNCTION_REGISTRY of the function as it ships, which `tool` (the bench, the load test)
    measures with its default type and that type's example (bench/target.py); skips, saying
    why, when that function does not load or gives nothing to send (no consumed type, no
    valid example): the tool follows the function, whatever the example became."""
    from bench.target import NoBenchEvent, bench_event
    from eventfn.loading import RegistryNotFound

    shipped = str(Settings.model_fields["function_registry"].default)
    try:
        bench_event(shipped)
    except (RegistryNotFound, NoBenchEvent) as exc:
        pytest.skip(f"{tool} measures {shipped}: {exc}")
    return shipped


async def deliver(
    client: httpx.AsyncClient,
    event_id: str | None = None,
    text: str = "q",
    *,
    token: str | None = None,
    **headers: str,
) -> httpx.Response:
    """POST one binary-mode `ASK` event (id `event_id`, query `text`) as the broker does: with
    `Bearer <token>` when a token is given, and any other `headers` (`prefer="reply"`)."""
    sent = binary_headers(id=event_id)
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    return await client.post("/", headers={**sent, **headers}, content=dumps(query(text)))


async def until(condition: Callable[[], Any], within: float = 10.0, what: str = "") -> None:
    """Wait until `condition()` (a plain or an async callable) is true, without blocking the
    loop; AssertionError naming `what` after `within` seconds.

    The one asynchronous bounded poll of the suite (`wait_until` is its synchronous twin), for
    what no event of ours can signal: a real process, a real Redis, another thread (a sink's
    server). `within` is a generous ceiling, never a claim.
    """
    deadline = time.monotonic() + within
    while True:
        holds = condition()
        if inspect.isawaitable(holds):
            holds = await holds
        if holds:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {within}s: {what or condition}")
        await asyncio.sleep(0.02)  # polling another process or thread: nothing to await


def wait_until(
    condition: Callable[[], Any],
    within: float = 10.0,
    what: str = "",
    *,
    ignoring: tuple[type[BaseException], ...] = (),
    every: float = 0.02,
) -> None:
    """`until` for code that runs outside an event loop (a fixture, a plain test, a helper
    starting a process): wait until `condition()` is true, asking again every `every` seconds;
    an exception of `ignoring` from it counts as not yet (a refused connection, a server still
    loading), any other propagates; AssertionError naming `what` after `within` seconds.

    The one synchronous bounded poll of the suite, for the same reason as `until`: a real
    process or another thread sends no event this thread could block on.
    """
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(*ignoring):
            if condition():
                return
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {within}s: {what or condition}")
        time.sleep(every)  # polling another process or thread: it sends no event to wait on


class Clock:
    """A clock the test moves by hand (`clock.now += 5`), for what takes `clock=`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tls_server_context(ca: Any, *names: str) -> ssl.SSLContext:
    """A server-side TLS context with a certificate the trustme `ca` issued for `names`
    (127.0.0.1 by default): what the test's HTTPS servers present."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1",))).configure_cert(context)
    return context


class ServerProcess:
    """`python -m eventfn` (or another entry point, `argv`) in a real process on a free port,
    serving the suite's function (`FUNCTION_REGISTRY` in `env` names another)."""

    def __init__(
        self, env: Mapping[str, str] | None = None, argv: Sequence[str] = ("-m", "eventfn")
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = list(argv)
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "FUNCTION_REGISTRY": SUITE_REGISTRY,
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> ServerProcess:
        """Spawn the process and wait until it is ready."""
        return self.spawn().wait_ready(timeout)

    def spawn(self) -> ServerProcess:
        """Start the process without waiting (several can then start side by side)."""
        self.proc = subprocess.Popen(
            [sys.executable, *self.argv],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 15.0) -> ServerProcess:
        """Wait for readiness; RuntimeError with the output if it exits or takes too long."""
        return self._wait_for("/health/readiness", timeout)

    def wait_alive(self, timeout: float = 15.0) -> ServerProcess:
        """Wait until it serves at all (liveness), ready or not (a Redis it cannot use)."""
        return self._wait_for("/health/liveness", timeout)

    def _wait_for(self, probe: str, timeout: float) -> ServerProcess:
        proc = self.proc
        assert proc is not None, "spawn() first"

        def answers() -> bool:
            if proc.poll() is not None:  # it will never answer: fail now, with what it said
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"server exited early:\n{out}")
            return httpx.get(f"{self.url}{probe}", timeout=0.5).status_code == 200

        try:
            wait_until(answers, timeout, f"200 at {probe}", ignoring=(httpx.HTTPError,), every=0.05)
        except AssertionError:
            out = self.stop()
            raise RuntimeError(f"server did not answer 200 at {probe}:\n{out}") from None
        return self

    def kill(self) -> str:
        """Kill the process if it still runs (no drain); returns what it printed."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.kill()
        out, _ = self.proc.communicate(timeout=10)
        return out.decode()

    def stop(self, timeout: float = 15.0) -> str:
        """Terminate (SIGTERM) and return everything the server printed."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.decode()


@contextlib.contextmanager
def running_server(env: Mapping[str, str] | None = None) -> Iterator[ServerProcess]:
    server = ServerProcess(env).start()
    try:
        yield server
    finally:
        server.stop()


def redis_url(db: int) -> str:
    """URL of the test Redis with database `db`, flushed; skips (or fails in CI) without one."""
    import redis

    base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
    url = f"{base}/{db}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        if os.environ.get("REQUIRE_REDIS"):
            pytest.fail(f"REQUIRE_REDIS is set but Redis at {url} is unreachable: {exc}")
        pytest.skip(f"no Redis reachable at {url} (set REQUIRE_REDIS=1 to make this an error)")
    return url


class Counting:
    """An `ASK` handler that records the query of every call (`handled`), sets `entered`, waits
    at `gate` when it has one, fails (500) its first `failures` calls and, with `suspends`,
    yields to the loop once like a handler doing I/O. Its answer names the call it came from;
    with `reply` False it answers nothing (202)."""

    def __init__(
        self, *, gate: asyncio.Event | None = None, failures: int = 0, suspends: bool = False
    ) -> None:
        self.handled: list[str] = []
        self.gate = gate
        self.failures = failures
        self.suspends = suspends
        self.reply = True
        self.entered = asyncio.Event()

    @property
    def calls(self) -> int:
        return len(self.handled)

    async def __call__(self, request: Any) -> Any:
        self.handled.append(request.query)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.suspends:
            await one_turn()  # the handler suspends, as real I/O would
        if self.failures:
            self.failures -= 1
            raise RuntimeError("boom: secret internals")
        if not self.reply:
            return None
        return Answer(result={"message": request.query, "call": len(self.handled)})


@contextlib.contextmanager
def captured_logs(*modules: Any) -> Iterator[list[dict[str, Any]]]:
    """Every structlog event that `modules` log meanwhile, as dicts (`structlog.testing`).

    structlog as it comes, for the capture to see every line: an earlier test of the suite may
    have configured a level filter, and a module's logger caches its processors on first use,
    so each module's `log` is a fresh one meanwhile (same component). Restored after.
    """
    import structlog
    from structlog.testing import capture_logs

    saved = structlog.get_config()
    loggers = [(module, module.log) for module in modules]
    structlog.reset_defaults()
    for module, _ in loggers:
        module.log = structlog.get_logger(component=module.__name__)
    try:
        with capture_logs() as logged:
            yield logged
    finally:
        for module, logger in loggers:
            module.log = logger
        structlog.configure(**saved)
