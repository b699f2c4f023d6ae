"""The production server (`python -m eventfn`) on a real socket, with the cloudevents SDK as client.

One server process serves the whole module; a reader thread collects its stdout (JSON log lines)
so that tests can check what was logged for the events they sent.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cloudevents.core.bindings.http import HTTPMessage
from cloudevents.core.bindings.http import from_http as core_from_http
from cloudevents.core.bindings.http import to_binary as core_to_binary
from cloudevents.core.bindings.http import to_structured as core_to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v03.event import CloudEvent as CoreEventV03
from cloudevents.core.v1.event import CloudEvent as CoreEvent
from cloudevents.v1.conversion import to_binary as legacy_to_binary
from cloudevents.v1.conversion import to_structured as legacy_to_structured
from cloudevents.v1.http import CloudEvent as LegacyEvent
from cloudevents.v1.http import from_http as legacy_from_http

from eventfn.dispatch.replies import reply_id
from tests.helpers.support import QUERY, RESPONSE, ServerProcess, binary_headers, dumps, query

pytestmark = pytest.mark.server


class LiveServer:
    """A running `python -m eventfn` and the JSON lines it has printed so far."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.url = server.url
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        assert server.proc is not None
        assert server.proc.stdout is not None
        self._stdout = server.proc.stdout
        self._read_more = threading.Condition()  # notified by the reader at each line
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._stdout:
            text = line.decode(errors="replace").strip()
            with self._read_more:
                self.raw.append(text)
                with contextlib.suppress(orjson.JSONDecodeError):
                    self.lines.append(orjson.loads(text))
                self._read_more.notify_all()

    def logged(
        self, event_id: str, event: str = "event", expected: int = 1, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The `event` log lines carrying `event_id`, once `expected` of them arrived (or what
        arrived within `timeout` seconds; none waited for with 0)."""

        def found() -> list[dict[str, Any]]:
            return [
                line
                for line in self.lines
                if line.get("event") == event and line.get("id") == event_id
            ]

        with self._read_more:  # the reader thread says when a line is in
            self._read_more.wait_for(lambda: len(found()) >= expected, timeout)
            return found()

    def barrier(self) -> None:
        """Send one more event and wait for its line. It is sent once the requests before it
        were answered, and the process writes its lines in order (one stdout), so once this
        line is in, every line those requests caused is in too: what is absent then stays so."""
        marker = f"barrier-{uuid.uuid4()}"
        headers = binary_headers(id=marker, source="/barrier")
        response = httpx.post(self.url, headers=headers, content=dumps(query()), timeout=10)
        assert response.status_code == 200, response.text
        assert self.logged(marker), f"no line for {marker}"

    def stop(self) -> None:
        proc = self.server.proc
        assert proc is not None
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._reader.join(timeout=5)
        self._stdout.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server for the module, started on a free port given as PORT."""
    data_dir: Path = tmp_path_factory.mktemp("server-data")
    server = ServerProcess({"DATA_DIR": str(data_dir), "EVENT_SOURCE": "/live"}).start()
    live = LiveServer(server)
    try:
        yield live
    finally:
        live.stop()


# -------------------------------------------------------------------------------------------
# The SDK's core API
# -------------------------------------------------------------------------------------------


def core_event(**attributes: Any) -> CoreEvent:
    """A 1.0 query event built with the SDK's core API."""
    return CoreEvent(
        {
            "type": QUERY,
            "source": "/sdk-core",
            "id": str(uuid.uuid4()),
            "specversion": "1.0",
            "datacontenttype": "application/json",
            **attributes,
        },
        {"query": "from the core API"},
    )


def post_message(url: str, message: HTTPMessage) -> HTTPMessage:
    """POST an SDK HTTPMessage; return the response as one."""
    response = httpx.post(url, headers=message.headers, content=message.body, timeout=10)
    assert response.status_code == 200, response.text
    return HTTPMessage(headers=dict(response.headers), body=response.content)


@pytest.mark.parametrize(
    "encode", [core_to_binary, core_to_structured], ids=["binary", "structured"]
)
def test_core_sdk_client_gets_a_reply_it_can_parse(live: LiveServer, encode: Any) -> None:
    """The SDK's core API sends in either mode and parses the reply, which has the same mode."""
    event = core_event(correlationid="corr-1")
    reply_message = post_message(live.url, encode(event, JSONFormat()))
    structured = reply_message.headers["content-type"] == "application/cloudevents+json"
    assert structured == (encode is core_to_structured)
    reply = core_from_http(reply_message, JSONFormat())
    assert reply.get_type() == RESPONSE
    assert reply.get_source() == "/live"
    assert reply.get_id() == reply_id("/sdk-core", event.get_id())
    assert reply.get_extension("replyid") == "corr-1"
    assert reply.get_time() is not None
    data = reply.get_data()
    assert isinstance(data, dict)
    assert data["result"] == {"message": "Processed query: from the core API"}


@pytest.mark.parametrize(
    "encode", [core_to_binary, core_to_structured], ids=["binary", "structured"]
)
def test_core_sdk_v03_event_is_answered_in_1_0(live: LiveServer, encode: Any) -> None:
    """A v0.3 event from the SDK is accepted; the reply is a 1.0 event."""
    event = CoreEventV03(
        {
            "type": QUERY,
            "source": "/sdk-core",
            "id": str(uuid.uuid4()),
            "specversion": "0.3",
            "datacontenttype": "application/json",
        },
        {"query": "v03"},
    )
    reply = core_from_http(post_message(live.url, encode(event, JSONFormat())), JSONFormat())
    assert reply.get_specversion() == "1.0"
    data = reply.get_data()
    assert isinstance(data, dict)
    assert data["result"] == {"message": "Processed query: v03"}


# -------------------------------------------------------------------------------------------
# The SDK's legacy API (cloudevents.v1)
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode", [legacy_to_binary, legacy_to_structured], ids=["binary", "structured"]
)
def test_legacy_sdk_client_gets_a_reply_it_can_parse(live: LiveServer, encode: Any) -> None:
    """The legacy cloudevents.v1 API sends in either mode and parses the reply with from_http."""
    event = LegacyEvent(
        {
            "type": QUERY,
            "source": "/sdk-legacy",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        },
        {"query": "from the legacy API"},
    )
    headers, body = encode(event)
    response = httpx.post(live.url, headers=headers, content=body, timeout=10)
    assert response.status_code == 200, response.text
    reply = legacy_from_http(dict(response.headers), response.content)
    assert reply["type"] == RESPONSE
    assert reply["id"] == reply_id("/sdk-legacy", event["id"])
    assert reply["traceparent"] == event["traceparent"]
    assert reply.data["result"] == {"message": "Processed query: from the legacy API"}


# -------------------------------------------------------------------------------------------
# Logs
# -------------------------------------------------------------------------------------------


def test_one_log_line_per_handled_event(live: LiveServer) -> None:
    """Each handled event is logged once with id, type, source, trace id, outcome and duration."""
    event_id = str(uuid.uuid4())
    headers = binary_headers(
        id=event_id,
        source="/logged",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    assert (
        httpx.post(live.url, headers=headers, content=dumps(query()), timeout=10).status_code == 200
    )
    (line,) = live.logged(event_id)
    assert line["type"] == QUERY
    assert line["source"] == "/logged"
    assert line["outcome"] == "ok"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert isinstance(line["duration_ms"], int | float)
    assert line["level"] == "info"
    # an absence in a real process's log, proved by order: a second line would precede this one
    live.barrier()
    assert len(live.logged(event_id, expected=2, timeout=0)) == 1


def test_rejected_event_is_logged_with_its_problem(live: LiveServer) -> None:
    """A rejected event gets one line naming the outcome, status and problem type."""
    event_id = str(uuid.uuid4())
    headers = binary_headers(id=event_id)
    response = httpx.post(live.url, headers=headers, content=b'{"query": ""}', timeout=10)
    assert response.status_code == 400
    (line,) = live.logged(event_id)
    assert (line["outcome"], line["status"], line["problem"]) == (
        "rejected",
        400,
        "schema-violation",
    )


def test_changed_payload_under_the_same_identity_is_logged_as_a_producer_error(
    live: LiveServer,
) -> None:
    """Reusing source+id with another payload replays the first answer and logs a warning."""
    event_id = str(uuid.uuid4())
    headers = binary_headers(id=event_id, source="/reuser")
    first = httpx.post(live.url, headers=headers, content=dumps(query("one")), timeout=10)
    second = httpx.post(live.url, headers=headers, content=dumps(query("two")), timeout=10)
    assert second.content == first.content
    lines = live.logged(event_id, expected=2)
    assert [line["outcome"] for line in lines] == ["ok", "duplicate"]
    warnings = live.logged(event_id, "producer_error_payload_changed")
    assert warnings
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["source"] == "/reuser"


def test_no_access_log_lines(live: LiveServer) -> None:
    """uvicorn's access log is off: requests leave no 'GET /path HTTP/1.1' lines."""
    httpx.get(f"{live.url}/health/liveness", timeout=10)
    httpx.post(live.url, headers=binary_headers(), content=dumps(query()), timeout=10)
    # an absence in a real process's log, proved by order: their lines would precede this one's
    live.barrier()
    assert not [line for line in list(live.raw) if "HTTP/1.1" in line or "uvicorn.access" in line]
    assert all(isinstance(line, dict) for line in live.lines)
    assert len(live.lines) == len(live.raw), "every line on stdout is a JSON object"


# -------------------------------------------------------------------------------------------
# HTTP details only a real server shows
# -------------------------------------------------------------------------------------------


def test_port_is_honoured(live: LiveServer) -> None:
    """The server listens on $PORT."""
    assert live.url.endswith(f":{live.server.port}")
    assert httpx.get(f"{live.url}/health/readiness", timeout=10).json() == {"status": "ready"}


def test_head_on_the_ingress_is_405_without_a_body(live: LiveServer) -> None:
    """HEAD / is not allowed, and the server answers it cleanly."""
    response = httpx.head(live.url, timeout=10)
    assert response.status_code == 405
    assert response.content == b""
    assert httpx.get(f"{live.url}/health/liveness", timeout=10).status_code == 200


def test_oversized_body_is_413_over_the_wire(live: LiveServer) -> None:
    """A body over the default 1 MiB limit is refused with 413."""
    body = dumps(query("x" * (1024 * 1024)))
    response = httpx.post(live.url, headers=binary_headers(), content=body, timeout=10)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_chunked_body_is_read(live: LiveServer) -> None:
    """A chunked request body (no Content-Length) is read and answered."""

    def chunks() -> Iterator[bytes]:
        yield b'{"query":'
        yield b' "chunked"}'

    response = httpx.post(live.url, headers=binary_headers(), content=chunks(), timeout=10)
    assert response.status_code == 200
    assert response.json()["result"] == {"message": "Processed query: chunked"}


def test_percent_encoded_header_survives_the_wire(live: LiveServer) -> None:
    """A percent-encoded correlationid arrives decoded and is re-encoded on the reply."""
    headers = binary_headers(correlationid="a%20b%22c")
    response = httpx.post(live.url, headers=headers, content=dumps(query()), timeout=10)
    assert response.headers["ce-replyid"] == "a%20b%22c"
