"""The function as Knative func builds and runs it: func's scaffolding, its host builder's steps.

knative/func's host builder (`pkg/oci/python_builder.go`) writes the scaffolding of the
function's `invoke` (`http` here, func.yaml) into a build directory, links `f` there to the
function's root, runs `pip install . --target lib` and starts `python service/main.py` with
`PYTHONPATH=lib`; s2i and pack install the same scaffolding `pyproject.toml`. This module does
those steps with the scaffolding in ../shared/func-scaffolding, `f` linked to a clean copy of
the project (its tracked and unignored files), in a fresh venv, then drives every door of the
function served that way: func-python's server (hypercorn) and its health answers in front, the
function's own app behind.

Cost: the build resolves and downloads the function's dependencies and func-python 0.8.1 from
PyPI, as func does (about 30 s with pip's cache warm, a minute or two cold), once per session;
each server then starts in about a second and each case takes milliseconds.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from handler.functions import registry as example_registry
from tests.helpers.support import (
    BATCH,
    ROOT,
    SHARED,
    STRUCTURED,
    ServerProcess,
    binary_headers,
    dumps,
    event_json,
    wait_until,
)

SCAFFOLDING = SHARED / "func-scaffolding" / "instanced-http"

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not SCAFFOLDING.is_dir(), reason=f"func's scaffolding not present at {SCAFFOLDING}"
    ),
    # The first case builds (see the module docstring): far longer than the suite's default.
    pytest.mark.timeout(900),
]

# The example function is what func builds: its default type, its reply, the model's example.
SPEC = example_registry.catalogue.default
assert SPEC is not None
assert SPEC.reply is not None
REPLY = SPEC.reply
PAYLOAD: dict[str, Any] = SPEC.json_schema()["examples"][0]
SOURCE = "/func-built"

# A function of the test's own whose handler holds each request until the test lets it go,
# through a loopback connection the test accepts: a request the test knows to be in flight.
HELD_MODULE = """
import asyncio
import os

from pydantic import BaseModel

from eventfn import Catalogue, EventSpec, Registry


class Hold(BaseModel):
    text: str


HELD = EventSpec("dev.eventfn.tests.held", Hold, "The answer, once the test lets it go.")
HOLD = EventSpec(
    "dev.eventfn.tests.hold", Hold, "Held until the test lets it go.",
    consumes=True, reply=HELD, name="hold",
)
registry = Registry(Catalogue((HOLD,)))


@registry.handles(HOLD)
async def hold(request: Hold) -> Hold:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(os.environ["GATE_PORT"]))
    await reader.readexactly(1)
    writer.close()
    return Hold(text=request.text)
"""


def clean_copy(destination: Path) -> Path:
    """The project's tracked and unignored files (what a fresh clone holds, edits included)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`.func/build` as func's host builder leaves it: scaffolding, `f`, `lib`; and its venv."""
    root = tmp_path_factory.mktemp("func-host-build")
    project = clean_copy(root / "project")
    directory = root / "build"
    shutil.copytree(SCAFFOLDING, directory)
    (directory / "f").symlink_to(project, target_is_directory=True)
    subprocess.run(
        [sys.executable, "-m", "venv", str(root / "venv")], check=True, capture_output=True
    )
    pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "install", "--no-input", "--quiet", ".", "--target", "lib"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=840,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return directory


class FuncService(ServerProcess):
    """`python service/main.py` in the build directory: only its own environment, no PORT."""

    def __init__(self, build: Path, **env: str) -> None:
        super().__init__()
        self.build = build
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": "lib",
            "LISTEN_ADDRESS": f"127.0.0.1:{self.port}",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "DATA_DIR": str(build.parent / f"data-{self.port}"),
            "EVENT_SOURCE": SOURCE,
            **env,
        }

    def spawn(self) -> FuncService:
        self.proc = subprocess.Popen(
            [str(self.build.parent / "venv" / "bin" / "python"), "service/main.py"],
            cwd=self.build,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self


@pytest.fixture(scope="module")
def service(build: Path) -> Iterator[FuncService]:
    server = FuncService(build)
    server.start(timeout=30)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(service: FuncService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


def test_pip_installs_the_distribution_function_with_every_package(build: Path) -> None:
    """The wheel func's build installs is `function`, holding func's adapter, the runtime and
    the user's code."""
    lib = build / "lib"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert [p.name for p in lib.glob("function-*.dist-info")] == [f"function-{version}.dist-info"]
    for package in ("function", "eventfn", "handler", "schemas"):
        assert (lib / package / "__init__.py").is_file(), package


def test_func_python_serves_it_with_hypercorn(http: httpx.Client) -> None:
    """The server is func-python's hypercorn, not the uvicorn of `python -m eventfn`."""
    assert http.get("/health/liveness").headers["server"].startswith("hypercorn")


def test_readiness_is_func_pythons_text_answer_of_the_functions_state(
    http: httpx.Client,
) -> None:
    """func-python answers the readiness probe itself: 200 text/plain with `ready()`'s word."""
    response = http.get("/health/readiness")
    assert response.status_code == httpx.codes.OK
    assert response.headers["content-type"] == "text/plain"
    assert response.text == "ready"


# func-python's own ASGI app around `function.new()`, asked for readiness before `start()`.
NOT_READY_PROBE = """
import asyncio, json
from func_python.http import ASGIApplication
from function import new

sent = []

async def send(message):
    sent.append(message)

async def receive():
    return {"type": "http.request", "body": b""}

app = ASGIApplication(new())
scope = {"type": "http", "path": "/health/readiness", "method": "GET", "headers": []}
asyncio.run(app(scope, receive, send))
print(json.dumps([sent[0]["status"], sent[1]["body"].decode()]))
"""


def test_func_python_answers_not_ready_with_500_not_503(build: Path) -> None:
    """Before start-up completes func-python answers readiness 500 (`python -m eventfn`: 503)."""
    done = subprocess.run(
        [str(build.parent / "venv" / "bin" / "python"), "-c", NOT_READY_PROBE],
        cwd=build,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": "lib", "LOG_LEVEL": "error"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == [500, "starting"]


def test_liveness_is_func_pythons_text_answer(http: httpx.Client) -> None:
    """The liveness probe: 200 text/plain `alive`, from the function's `alive()`."""
    response = http.get("/health/liveness")
    assert response.status_code == httpx.codes.OK
    assert response.text == "alive"


def test_a_binary_event_gets_a_binary_reply(http: httpx.Client) -> None:
    """A binary-mode event is answered in binary mode with its reply event."""
    response = http.post("/", headers=binary_headers(type=SPEC.type), content=dumps(PAYLOAD))
    assert response.status_code == httpx.codes.OK
    assert response.headers["ce-type"] == REPLY.type
    assert response.headers["content-type"] == "application/json"
    REPLY.model.model_validate_json(response.content)


def test_settings_come_from_the_environment(http: httpx.Client) -> None:
    """EVENT_SOURCE in the process environment is the reply's source, as under the ConfigMap."""
    response = http.post("/", headers=binary_headers(type=SPEC.type), content=dumps(PAYLOAD))
    assert response.headers["ce-source"] == SOURCE


def test_a_structured_event_gets_a_structured_reply(http: httpx.Client) -> None:
    """A structured-mode event is answered in structured mode."""
    event = event_json(PAYLOAD, type=SPEC.type)
    response = http.post("/", headers={"content-type": STRUCTURED}, content=dumps(event))
    assert response.status_code == httpx.codes.OK
    assert response.headers["content-type"].startswith(STRUCTURED)
    reply = response.json()
    assert reply["type"] == REPLY.type
    REPLY.model.model_validate(reply["data"])


def test_a_batch_gets_a_batch_of_replies(http: httpx.Client) -> None:
    """A batch is answered with a batch, one reply per event, in order."""
    events = [event_json(PAYLOAD, type=SPEC.type) for _ in range(3)]
    response = http.post("/", headers={"content-type": BATCH}, content=dumps(events))
    assert response.status_code == httpx.codes.OK
    assert response.headers["content-type"] == BATCH
    assert [reply["type"] for reply in response.json()] == [REPLY.type] * 3


def test_the_plain_json_curl_is_answered_by_the_default_route(http: httpx.Client) -> None:
    """`curl -d '{...}' -H 'content-type: application/json' /` gets the reply payload."""
    response = http.post("/", json=PAYLOAD)
    assert response.status_code == httpx.codes.OK
    REPLY.model.model_validate(response.json())


def test_the_facade_answers_synchronously(http: httpx.Client) -> None:
    """POST to the type's facade path returns the reply payload."""
    response = http.post(SPEC.facade_path, json=PAYLOAD)
    assert response.status_code == httpx.codes.OK
    REPLY.model.model_validate(response.json())


def test_an_unknown_type_is_a_problem_400(http: httpx.Client) -> None:
    """Errors are the function's own problem+json, untouched by func-python."""
    response = http.post(
        "/", headers=binary_headers(type="dev.eventfn.tests.unknown"), content=dumps(PAYLOAD)
    )
    assert response.status_code == httpx.codes.BAD_REQUEST
    assert response.headers["content-type"] == "application/problem+json"


def test_a_websocket_query_gets_its_result(service: FuncService) -> None:
    """A query over `/api/v1/ws` gets its result message (func-python lets the socket through)."""
    url = service.url.replace("http://", "ws://") + "/api/v1/ws"
    with connect(url, open_timeout=10) as socket:
        socket.send(json.dumps({"id": "1", "type": SPEC.message_type, "data": PAYLOAD}))
        message = json.loads(socket.recv(timeout=10))
        while message.get("type") == "progress":
            message = json.loads(socket.recv(timeout=10))
    assert message["type"] == "result", message
    assert message["id"] == "1"
    REPLY.model.model_validate(message["data"])


def test_the_dead_letter_sink_keeps_a_letter(http: httpx.Client) -> None:
    """POST /deadletter accepts an event the broker gave up on (202)."""
    response = http.post(
        "/deadletter", headers=binary_headers(type=SPEC.type), content=dumps(PAYLOAD)
    )
    assert response.status_code == httpx.codes.ACCEPTED


def test_metrics_count_what_was_served(http: httpx.Client) -> None:
    """GET /metrics is Prometheus text counting the ingress's events."""
    http.post("/", headers=binary_headers(type=SPEC.type), content=dumps(PAYLOAD))
    response = http.get("/metrics")
    assert response.status_code == httpx.codes.OK
    assert response.headers["content-type"].startswith("text/plain")
    assert f'function_events_total{{mode="binary",outcome="ok",type="{SPEC.type}"}}' in (
        response.text
    )


def test_sigterm_closes_the_lifespan_and_exits_zero(build: Path) -> None:
    """SIGTERM: hypercorn stops, `stop()` begins the drain, the lifespan closes, exit 0."""
    server = FuncService(build).start(timeout=30)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        served = client.post("/", headers=binary_headers(type=SPEC.type), content=dumps(PAYLOAD))
    output = server.stop(timeout=30)
    assert served.status_code == httpx.codes.OK
    assert server.proc is not None
    assert server.proc.returncode == 0, output
    assert '"event":"stopped"' in output, output


def wait_until_refused(port: int, timeout: float = 30.0) -> None:
    """Return once nothing listens on `port` any more (the server stopped accepting)."""

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return True
        return False

    # Another process closing its listener: nothing it sends can be awaited, so the port is
    # tried again a little later, bounded by `timeout`.
    wait_until(refused, timeout, f"port {port} refusing connections (it still accepts them)")


def test_a_request_in_flight_at_sigterm_gets_its_answer(build: Path, tmp_path: Path) -> None:
    """SIGTERM while a request is in flight: no new connections, that request still answered."""
    (tmp_path / "func_held_fn.py").write_text(HELD_MODULE)
    with socket.create_server(("127.0.0.1", 0)) as gate, ThreadPoolExecutor(1) as pool:
        gate.settimeout(30)
        server = FuncService(
            build,
            PYTHONPATH=f"lib:{tmp_path}",
            FUNCTION_REGISTRY="func_held_fn:registry",
            GATE_PORT=str(gate.getsockname()[1]),
        ).start(timeout=30)
        try:
            url = f"{server.url}/api/v1/hold"
            answer = pool.submit(httpx.post, url, json={"text": "held"}, timeout=30)
            held, _ = gate.accept()  # the handler runs: the request is in flight
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            wait_until_refused(server.port)
            with held:
                held.sendall(b"x")
            response = answer.result(timeout=30)
        finally:
            output = server.stop(timeout=30)
    assert response.status_code == httpx.codes.OK, output
    assert response.json() == {"text": "held"}
    assert server.proc.returncode == 0, output
