"""The UI's client of the function: HTTP with httpx, the WebSocket with `websockets`; no logic.

Every call answers the function's JSON or raises `Problem`, which carries the RFC 9457 body the
function sent (or one made here when it could not be reached), so a page shows what went wrong
and never a stack trace.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

TIMEOUT_SECONDS = 30.0
# The short calls a page makes while painting: a slow function shows as an error, not a hang.
QUICK_SECONDS = 5.0
FEED_SIZE = 500
IDLE_SECONDS = 60.0

# What 401 and 403 mean here, for a person who did not write the function.
EXPLAIN = {
    401: "The function wants credentials: give an API key (one of its API_KEYS) or a bearer "
    "token (an OIDC token for its OIDC_AUDIENCE) in the sidebar, or set BACKEND_API_KEY / "
    "BACKEND_TOKEN before starting the UI.",
    403: "The credentials were checked and are not allowed here (an OIDC token for another "
    "audience, or a subject the function does not accept).",
}


class Problem(Exception):
    """The function answered with a problem (or could not be reached)."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or "error")
        self.problem = problem

    @property
    def status(self) -> int | None:
        status = self.problem.get("status")
        return status if isinstance(status, int) else None

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    @property
    def explanation(self) -> str | None:
        return EXPLAIN.get(self.status or 0)


def _unreachable(url: str, exc: Exception) -> Problem:
    return Problem({"title": "Function unreachable", "status": None, "detail": f"{url}: {exc}"})


@dataclass(frozen=True)
class Backend:
    """Where the function is and the credentials every call carries."""

    url: str
    api_key: str | None = None
    token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    @property
    def ws_url(self) -> str:
        base = self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/api/v1/ws"

    # -- HTTP ----------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The response to a 2xx; `Problem` for anything else."""
        url = f"{self.url}{path}"
        wait = QUICK_SECONDS if timeout is None else timeout
        try:
            response = httpx.request(method, url, headers=self.headers, timeout=wait, **kwargs)
        except httpx.HTTPError as exc:
            raise _unreachable(url, exc) from None
        if response.is_error:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                body = {"title": response.reason_phrase, "detail": response.text[:500]}
            raise Problem({**body, "status": response.status_code})
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 or not response.content else response.json()

    def types(self) -> dict[str, Any]:
        """`GET /api/v1/types`: the consumed types, their doors and schemas."""
        result: dict[str, Any] = self.json("GET", "/api/v1/types")
        return result

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/api/v1/status")
        return result

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """The readiness probe's status code and body (a 503 is an answer here, not an error)."""
        url = f"{self.url}/health/readiness"
        try:
            response = httpx.get(url, timeout=QUICK_SECONDS)
        except httpx.HTTPError as exc:
            raise _unreachable(url, exc) from None
        return response.status_code, response.json()

    def metrics(self) -> str:
        """`GET /metrics`, the Prometheus text format."""
        return self.request("GET", "/metrics").text

    def send(self, facade_path: str, data: Any) -> Any:
        """The handler's answer from the synchronous facade (None: nothing to say)."""
        return self.json("POST", facade_path, json=data, timeout=TIMEOUT_SECONDS)

    def deadletters(self, limit: int, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        result: dict[str, Any] = self.json("GET", "/api/v1/deadletters", params=params)
        return result

    def deadletter(self, letter_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/api/v1/deadletters/{letter_id}")
        return result

    def replay(self, letter_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json(
            "POST", f"/api/v1/deadletters/{letter_id}/replay", timeout=TIMEOUT_SECONDS
        )
        return result

    def delete(self, letter_id: str) -> None:
        self.json("DELETE", f"/api/v1/deadletters/{letter_id}")

    # -- WebSocket -----------------------------------------------------------------------------

    def stream(self, message_type: str, data: Any, on_progress: Callable[[Any], None]) -> Any:
        """The answer over the WebSocket; progress messages go to `on_progress` as they come."""
        ident = str(uuid.uuid4())
        try:
            with connect(self.ws_url, additional_headers=self.headers, open_timeout=10) as ws:
                ws.send(json.dumps({"id": ident, "type": message_type, "data": data}))
                deadline = time.monotonic() + TIMEOUT_SECONDS
                while True:
                    message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                    if message.get("id") != ident:
                        continue
                    if message["type"] == "progress":
                        on_progress(message.get("data"))
                    elif message["type"] == "result":
                        return message.get("data")
                    elif message["type"] == "error":
                        raise Problem(message["error"])
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise _refused_handshake(exc) or _unreachable(self.ws_url, exc) from None


def _refused_handshake(exc: Exception) -> Problem | None:
    """A handshake the function refused (401/403) as the problem it sent."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return None
    body: dict[str, Any] = {"title": "WebSocket refused", "status": status}
    with contextlib.suppress(ValueError, AttributeError):
        body = {**json.loads(response.body), "status": status}  # type: ignore[union-attr]
    return Problem(body)


class Reader(threading.Thread):
    """A background reader a page reads without waiting; it ends once no page has read it for
    IDLE_SECONDS (no open Live tab), and the UI starts another when one comes back."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name=name, daemon=True)
        self._stop = threading.Event()
        self._clock = clock
        self._read_at = clock()

    def touch(self) -> None:
        """A page read it: keep it going."""
        self._read_at = self._clock()

    @property
    def wanted(self) -> bool:
        return not self._stop.is_set() and self._clock() - self._read_at < IDLE_SECONDS

    def stop(self) -> None:
        self._stop.set()


class FeedListener(Reader):
    """Keeps one WebSocket subscribed to the live feed and the last events in memory."""

    def __init__(self, backend: Backend, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("feed-listener", clock)
        self.backend = backend
        self.events: deque[dict[str, Any]] = deque(maxlen=FEED_SIZE)
        self.status = "connecting"

    def recent(self) -> list[dict[str, Any]]:
        """The events kept, newest first."""
        self.touch()
        return list(self.events)

    def run(self) -> None:
        while self.wanted:
            try:
                self._listen()
            except Problem as problem:
                self.status = f"refused ({problem.status}): {problem}"
            except Exception as exc:  # any failure: say so, retry shortly
                self.status = f"disconnected ({type(exc).__name__}); retrying"
            self._stop.wait(2.0)

    def _listen(self) -> None:
        try:
            ws = connect(
                self.backend.ws_url, additional_headers=self.backend.headers, open_timeout=5
            )
        except WebSocketException as exc:
            raise _refused_handshake(exc) or exc from None
        with ws:
            ws.send(json.dumps({"type": "subscribe", "types": []}))
            self.status = "live"
            while self.wanted:
                try:
                    raw = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message.get("type") == "event":
                    self.events.appendleft({"received": time.time(), "event": message["event"]})
                elif message.get("type") == "unsubscribed":  # dropped as slow: subscribe again
                    ws.send(json.dumps({"type": "subscribe", "types": []}))
