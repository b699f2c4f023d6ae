"""CORS for the Streamlit UI, security headers, and limits on what a caller controls."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import InvalidStatus

from tests.helpers.live import function_socket
from tests.helpers.live import receive as ws_receive
from tests.helpers.live import send as ws_send
from tests.helpers.live import socket as ws_socket
from tests.helpers.support import (
    STRUCTURED,
    binary_headers,
    dumps,
    event_json,
    make_app,
    query,
    running_server,
    suite_client,
    suite_settings,
)

UI = "http://localhost:8501"
QUERY_PATH = "/api/v1/query"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": "content-type,x-api-key,authorization",
    }


@pytest.fixture
async def keyed() -> AsyncIterator[httpx.AsyncClient]:
    """A function with API keys (CORS must work before credentials are checked)."""
    async with suite_client(api_keys=["k-1b2c3d"]) as client:
        yield client


class TestCORS:
    """The default CORS_ORIGINS lets the Streamlit dev UI in, with credentials, and no one else."""

    async def test_preflight_from_the_ui_is_allowed(self, keyed: httpx.AsyncClient) -> None:
        """A preflight from http://localhost:8501 is answered 200 with credentials allowed."""
        response = await keyed.options(QUERY_PATH, headers=preflight(UI))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == UI
        assert response.headers["access-control-allow-credentials"] == "true"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"x-api-key", "authorization", "content-type"} <= set(allowed.split(", "))
        assert "POST" in response.headers["access-control-allow-methods"]

    async def test_preflight_from_another_origin_is_refused(self, keyed: httpx.AsyncClient) -> None:
        """A preflight from an origin not in CORS_ORIGINS gets no allow-origin (400)."""
        response = await keyed.options(QUERY_PATH, headers=preflight("https://evil.example"))
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers

    async def test_actual_request_from_the_ui_carries_cors_headers(
        self, keyed: httpx.AsyncClient
    ) -> None:
        """The UI's real request gets its origin and credentials echoed back."""
        response = await keyed.post(
            QUERY_PATH, json=query(), headers={"origin": UI, "x-api-key": "k-1b2c3d"}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == UI
        assert response.headers["access-control-allow-credentials"] == "true"

    async def test_refusals_carry_cors_headers_too(self, keyed: httpx.AsyncClient) -> None:
        """A 401 reaches the UI's JavaScript (so it can ask for a key), not a CORS error."""
        response = await keyed.post(QUERY_PATH, json=query(), headers={"origin": UI})
        assert response.status_code == 401
        assert response.headers["access-control-allow-origin"] == UI

    async def test_the_ui_can_read_a_401_challenge(self, keyed: httpx.AsyncClient) -> None:
        """WWW-Authenticate is exposed to the UI's JavaScript along with the 401."""
        response = await keyed.post(QUERY_PATH, json=query(), headers={"origin": UI})
        exposed = response.headers["access-control-expose-headers"].lower().split(", ")
        assert "www-authenticate" in exposed
        assert response.headers["www-authenticate"].startswith("Bearer ")

    async def test_other_origin_gets_no_cors_headers(self, keyed: httpx.AsyncClient) -> None:
        """A simple request from another origin is answered without allow-origin headers."""
        response = await keyed.get("/api/v1/schemas", headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in response.headers

    async def test_wildcard_never_goes_with_credentials(self) -> None:
        """CORS_ORIGINS=* allows any origin but then never with credentials."""
        async with suite_client(cors_origins=["*"]) as client:
            response = await client.options(QUERY_PATH, headers=preflight("https://any.example"))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers

    async def test_configured_origins_replace_the_default(self) -> None:
        """CORS_ORIGINS lists the allowed origins; the dev default is then not allowed."""
        async with suite_client(cors_origins=["https://ui.example.com"]) as client:
            ok = await client.options(QUERY_PATH, headers=preflight("https://ui.example.com"))
            dev = await client.options(QUERY_PATH, headers=preflight(UI))
        assert ok.status_code == 200
        assert dev.status_code == 400


class TestSecurityHeaders:
    """API answers are not sniffed and not stored by caches."""

    async def test_api_answers_are_nosniff_and_no_store(self, client: httpx.AsyncClient) -> None:
        """A facade answer carries nosniff and Cache-Control: no-store."""
        response = await client.get("/api/v1/schemas")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"

    async def test_api_refusals_are_nosniff_and_no_store(self, keyed: httpx.AsyncClient) -> None:
        """A 401 problem from the facade carries the same headers, once each."""
        response = await keyed.post(QUERY_PATH, json=query())
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]
        assert response.headers.get_list("cache-control") == ["no-store"]

    async def test_probes_are_nosniff_but_cacheable(self, client: httpx.AsyncClient) -> None:
        """Outside /api/ only nosniff is added."""
        response = await client.get("/health/liveness")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "cache-control" not in response.headers


class TestLimits:
    """Every limit answers a clean 4xx problem, never a 500 or a hang."""

    @pytest.mark.parametrize("path", ["/", QUERY_PATH, "/health/liveness"])
    async def test_too_many_header_fields_is_431(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        """More than MAX_HEADER_COUNT header fields: 431, on the ingress and the rest alike."""
        headers = [(f"x-filler-{i}", "v") for i in range(150)]
        response = await client.post(path, headers=headers, content=b"{}")
        assert response.status_code == 431
        assert response.headers["content-type"] == "application/problem+json"

    async def test_oversized_headers_are_431(self, client: httpx.AsyncClient) -> None:
        """More than MAX_HEADER_BYTES of headers: 431."""
        headers = {**binary_headers(), "x-big": "a" * 40_000}
        response = await client.post("/", headers=headers, content=dumps(query()))
        assert response.status_code == 431

    async def test_header_limits_are_configurable(self) -> None:
        """MAX_HEADER_COUNT and MAX_HEADER_BYTES set the bounds."""
        async with suite_client(max_header_count=20, max_header_bytes=8192) as client:
            many = [(f"x-f-{i}", "v") for i in range(25)]
            assert (await client.get("/health/liveness", headers=many)).status_code == 431
            big = {"x-big": "a" * 9000}
            assert (await client.get("/health/liveness", headers=big)).status_code == 431
            assert (await client.get("/health/liveness")).status_code == 200

    @pytest.mark.parametrize("depth", [33, 300, 1100, 50_000])
    async def test_deep_json_is_400_on_the_facade(
        self, client: httpx.AsyncClient, depth: int
    ) -> None:
        """Nesting past the schema's bound or orjson/json's limits is a clean 400."""
        body = b'{"query":"x","parameters":{"a":' + b"[" * depth + b"]" * depth + b"}}"
        response = await client.post(
            QUERY_PATH, content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize("depth", [33, 300, 1100, 50_000])
    async def test_deep_json_is_400_on_the_ingress(
        self, client: httpx.AsyncClient, depth: int
    ) -> None:
        """The same nesting in a structured event or a binary body is a 400 (not retried)."""
        data = b'{"query":"x","parameters":{"a":' + b"[" * depth + b"]" * depth + b"}}"
        event = dumps(event_json(query())).replace(b'{"query":"What is Knative?"}', data)
        structured = await client.post("/", content=event, headers={"content-type": STRUCTURED})
        binary = await client.post("/", content=data, headers=binary_headers())
        assert structured.status_code == 400
        assert binary.status_code == 400

    async def test_moderate_nesting_is_fine(self, client: httpx.AsyncClient) -> None:
        """32 levels of parameters are accepted."""
        nested: object = "leaf"
        for _ in range(31):
            nested = [nested]
        response = await client.post(QUERY_PATH, json=query(deep=nested))
        assert response.status_code == 200

    async def test_oversized_query_text_is_400(self, client: httpx.AsyncClient) -> None:
        """Strings have bounds in the schemas: a 10,001-character query is refused."""
        response = await client.post(QUERY_PATH, json=query("q" * 10_001))
        assert response.status_code == 400

    async def test_oversized_batch_is_413(self, client: httpx.AsyncClient) -> None:
        """A batch over MAX_BATCH_EVENTS is 413."""
        batch = dumps([event_json(query()) for _ in range(101)])
        response = await client.post(
            "/", content=batch, headers={"content-type": "application/cloudevents-batch+json"}
        )
        assert response.status_code == 413


def handshake_scope(headers: list[tuple[bytes, bytes]], *, denial: bool) -> dict[str, Any]:
    """The ASGI scope of a WebSocket handshake to /api/v1/ws; `denial`: the server offers the
    `websocket.http.response` extension (uvicorn does)."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "scheme": "ws",
        "path": "/api/v1/ws",
        "raw_path": b"/api/v1/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"function"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if denial else {},
    }


async def refused_handshake(
    monkeypatch: pytest.MonkeyPatch, headers: list[tuple[bytes, bytes]], *, denial: bool
) -> list[dict[str, Any]]:
    """What the function sends for this handshake; fails if the facade would be built for it."""
    from eventfn.facade import factory as facade_app

    def no_facade(*_: Any) -> Any:
        raise AssertionError("the facade was built for a handshake that should be refused")

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    monkeypatch.setattr(facade_app, "build_facade", no_facade)
    app = make_app(suite_settings())
    await app(handshake_scope(headers, denial=denial), receive, send)
    return sent


class TestHandshakeLimits:
    """A WebSocket handshake is an HTTP request: the same header limits, before the facade."""

    async def test_too_many_header_fields_close_the_handshake(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Over MAX_HEADER_COUNT, without the denial extension: close 1008 before accept (403)."""
        headers = [(b"x-filler-%d" % i, b"v") for i in range(150)]
        sent = await refused_handshake(monkeypatch, headers, denial=False)
        assert sent == [{"type": "websocket.close", "code": 1008}]

    async def test_oversized_headers_close_the_handshake(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Over MAX_HEADER_BYTES: the same close 1008, the facade never built."""
        sent = await refused_handshake(monkeypatch, [(b"x-big", b"a" * 40_000)], denial=False)
        assert sent == [{"type": "websocket.close", "code": 1008}]

    async def test_the_denial_extension_answers_431_problem(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the server's `websocket.http.response` extension, the refusal is the 431 problem."""
        headers = [(b"x-filler-%d" % i, b"v") for i in range(150)]
        start, body = await refused_handshake(monkeypatch, headers, denial=True)
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 431
        assert (b"content-type", b"application/problem+json") in start["headers"]
        assert body["type"] == "websocket.http.response.body"
        assert orjson.loads(body["body"])["instance"] == "/api/v1/ws"

    @pytest.mark.server
    async def test_real_server_refuses_the_handshake_with_431(self) -> None:
        """Through uvicorn: too many header fields on a handshake is a 431, not an open socket."""
        headers = [(f"x-f-{i}", "v") for i in range(25)]
        async with function_socket(max_header_count=20) as (_, address):
            with pytest.raises(InvalidStatus) as refused:
                async with ws_socket(address, additional_headers=headers):
                    pass
            async with ws_socket(address) as ws:  # within the limits the socket opens
                await ws_send(ws, {"type": "ping"})
                assert (await ws_receive(ws))["type"] == "pong"
        assert refused.value.response.status_code == 431


def raw_request(port: int, request: bytes) -> bytes:
    """Send raw bytes, return the status line and headers of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


@pytest.mark.server
def test_real_server_bounds_headers_and_warns_when_open() -> None:
    """Through uvicorn: a 1 MB header or 5,000 fields is a prompt 431; open mode is announced."""
    with running_server() as server:
        huge = raw_request(
            server.port,
            b"GET /health/liveness HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        )
        many = raw_request(
            server.port,
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n"
            + b"".join(b"x-f%d: v\r\n" % i for i in range(5000))
            + b"\r\n",
        )
        output = server.stop()
    assert huge.startswith(b"HTTP/1.1 431 ")
    assert many.startswith(b"HTTP/1.1 431 ")
    assert '"running_open"' in output
    assert '"level":"warning"' in output.split('"running_open"')[1].split("\n")[0]
