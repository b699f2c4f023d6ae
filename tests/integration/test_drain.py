"""Graceful shutdown: SIGTERM turns readiness false at once, in-flight work is answered, exit 0.

The process test serves a function whose handler is deliberately slow, with the production
server code (`eventfn.server.serve.serve`), in a real subprocess that gets a real SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from eventfn.server.drain import DrainingServer
from eventfn.stores.outbox import SQLiteOutbox
from eventfn.testing import app_client
from tests.helpers.loop_time import one_turn
from tests.helpers.sink import Sink, running_sink
from tests.helpers.support import (
    ServerProcess,
    binary_headers,
    dumps,
    make_app,
    query,
    suite_settings,
    until,
)

# A function whose query handler takes `parameters.sleep` seconds and touches a marker file when
# it starts, served exactly like `python -m eventfn` serves the real one.
SLOW_FUNCTION = textwrap.dedent(
    """
    import asyncio, os, pathlib
    from tests.helpers.support import make_app
    from eventfn import Registry
    from eventfn.core.config import Settings
    from eventfn.server.serve import serve
    from tests.functions import ASK, ASK_CATALOGUE, Answer, Question

    registry = Registry(ASK_CATALOGUE)

    @registry.handles(ASK)
    async def slow(request: Question) -> Answer:
        pathlib.Path(os.environ["STARTED_MARKER"]).touch()
        # Simulates slow work in a real process: it must outlast the shutdown delay on its
        # real clock.
        await asyncio.sleep(float((request.parameters or {}).get("sleep", 0)))
        return Answer(result={"finished": request.query})

    settings = Settings()
    serve(settings, app=make_app(settings, registry=registry))
    """
)


class SlowFunction(ServerProcess):
    """The slow function in a real process on a free port (DATA_DIR and marker in `workdir`)."""

    def __init__(self, workdir: Path, **env: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.started_marker = workdir / "started"
        marker = {"DATA_DIR": str(workdir), "STARTED_MARKER": str(self.started_marker)}
        super().__init__({**marker, **env}, argv=["-c", SLOW_FUNCTION])

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None, "spawn() first"
        return self.proc


@contextlib.contextmanager
def slow_functions(*workdirs: Path, **env: str) -> Iterator[list[SlowFunction]]:
    """Slow functions started side by side (start-up is the slow part), killed on exit."""
    functions = [SlowFunction(workdir, **env).spawn() for workdir in workdirs]
    try:
        for function in functions:
            function.wait_ready()
        yield functions
    finally:
        for function in functions:
            function.kill()


async def wait_for_file(path: Path, within: float = 5.0) -> None:
    """Until the real process touches `path` (the one sign it gives)."""
    await until(lambda: asyncio.to_thread(path.exists), within, f"{path} never appeared")


async def readiness_after(url: str, within: float) -> int:
    """The first non-200 readiness status seen within `within` seconds (AssertionError if it
    stays 200): a real process's readiness sends no event, so it is polled."""
    seen: list[int] = []
    async with httpx.AsyncClient(timeout=1.0) as probe:

        async def turned() -> bool:
            seen.append((await probe.get(f"{url}/health/readiness")).status_code)
            return seen[-1] != 200

        await until(turned, within, "readiness answering other than 200")
    return seen[-1]


@pytest.mark.server
async def test_sigterm_answers_the_request_in_flight_and_exits_0(tmp_path: Path) -> None:
    """SIGTERM mid-request: readiness 503 at once, new work 503, the request (outlasting the
    shutdown delay) answered in full, exit 0."""
    with slow_functions(tmp_path, SHUTDOWN_DELAY_SECONDS="2.0") as [function]:
        proc, url = function.process, function.url
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            in_flight = asyncio.create_task(
                client.post("/", headers=binary_headers(), content=dumps(query("slow", sleep=3.0)))
            )
            await wait_for_file(function.started_marker)
            proc.send_signal(signal.SIGTERM)
            readiness = await readiness_after(url, within=1.5)
            async with httpx.AsyncClient(base_url=url, timeout=5) as other:
                new_work = await other.post("/", headers=binary_headers(), content=dumps(query()))
            answered = await in_flight
        exit_code = await asyncio.to_thread(proc.wait, 15)
    assert readiness == 503
    assert new_work.status_code == 503
    assert new_work.headers["retry-after"] == "1"
    assert answered.status_code == 200
    assert answered.json()["result"] == {"finished": "slow"}
    assert exit_code == 0


@pytest.mark.server
async def test_sigterm_on_an_idle_function_exits_0_promptly(tmp_path: Path) -> None:
    """Without work in flight (and no delay) SIGTERM stops the process quickly with status 0."""
    # Every budget of the shutdown a minute long: an idle stop that waited one of them out
    # would not exit within the wait below (a hang guard, not a measurement).
    budgets = {"SHUTDOWN_GRACE_SECONDS": "60", "PUBLISH_FLUSH_SECONDS": "60"}
    with slow_functions(tmp_path, **budgets) as [function]:
        proc = function.process
        proc.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(proc.wait, 15)
    assert exit_code == 0


def test_the_signal_itself_turns_readiness_false() -> None:
    """handle_exit flips the runtime to draining synchronously, before uvicorn does anything."""
    app = make_app(suite_settings())
    runtime = app.state.runtime
    runtime.ready = True
    server = DrainingServer(uvicorn.Config(app), runtime, delay=5.0)
    server.handle_exit(signal.SIGTERM, None)
    assert (runtime.draining, runtime.ready) == (True, False)
    assert not server.should_exit  # still listening during the shutdown delay
    server.handle_exit(signal.SIGTERM, None)  # a second signal skips the rest of the delay
    assert server.should_exit
    assert server._captured_signals == []  # nothing re-raised: the exit status stays 0


async def test_while_draining_new_requests_get_503_and_probes_still_answer() -> None:
    """Draining, the app refuses new work with 503 + Retry-After; readiness reports draining."""
    app = make_app(suite_settings())
    async with app.lifespan_context():
        app.state.runtime.begin_drain()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as client:
            work = await client.post("/", headers=binary_headers(), content=dumps(query()))
            ready = await client.get("/health/readiness")
    assert work.status_code == 503
    assert work.headers["retry-after"] == "1"
    assert work.headers["content-type"] == "application/problem+json"
    assert ready.status_code == 503
    assert ready.json()["status"] == "draining"


async def test_shutdown_flushes_pending_publishes_to_the_sink(tmp_path: Path) -> None:
    """An answer still on its way to a slow sink at shutdown is delivered before the exit."""
    with running_sink() as sink:
        sink.delay = 0.3
        settings = suite_settings(k_sink=sink.url, data_dir=tmp_path, publish_flush_seconds=5)
        async with app_client(make_app(settings)) as client:
            await client.post("/api/v1/query", json=query("late"))
        assert len(sink.ids()) == 1  # delivered during shutdown, not after


async def test_shutdown_parks_what_the_sink_did_not_take_in_time(tmp_path: Path) -> None:
    """A publish still failing when the flush budget ends is parked in the outbox on disk."""
    sink = Sink()  # down
    settings = suite_settings(
        k_sink=sink.url,
        data_dir=tmp_path,
        publish_attempts=50,
        publish_backoff_seconds=0.05,
        publish_flush_seconds=0.3,
    )
    async with app_client(make_app(settings)) as client:
        await client.post("/api/v1/query", json=query("parked"))
    outbox = SQLiteOutbox(tmp_path / "outbox.sqlite3")
    depth = await outbox.depth()
    await outbox.stop()
    assert depth == 1


async def test_the_drain_is_one_signal_its_hooks_run_once_for_every_caller() -> None:
    """`Runtime.drain` begins the drain and runs the hooks once, however many wait for it."""
    app = make_app(suite_settings())
    runtime = app.state.runtime
    ran: list[str] = []

    async def hook() -> None:
        ran.append("hook")
        await one_turn()  # the hook suspends while the other callers wait

    runtime.on_drain.append(hook)
    await asyncio.gather(runtime.drain(), runtime.drain(), runtime.drain())
    assert ran == ["hook"]
    assert (runtime.draining, runtime.ready) == (True, False)
    assert runtime.begin_drain() is False  # it had begun


async def test_any_asgi_server_gets_the_drain_at_the_lifespans_end() -> None:
    """Served without `python -m eventfn` (stock uvicorn, TestClient), the lifespan drains too."""
    app = make_app(suite_settings())
    ran: list[str] = []

    async def hook() -> None:
        ran.append("hook")

    app.state.runtime.on_drain.append(hook)
    async with app.lifespan_context():
        assert ran == []
    assert ran == ["hook"]
