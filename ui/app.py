"""The Streamlit client of the function: ask a query, watch events arrive live.

A thin client with no business logic of its own: the synchronous facade (`POST /api/v1/query`,
with httpx) or the WebSocket (`/api/v1/ws`, with the `websockets` client) answers the query, and
the WebSocket's live feed fills the event panel.

    BACKEND_URL      the function (default http://localhost:8080)
    BACKEND_API_KEY  sent as X-API-Key when set

Run it with `make ui`. `?q=<query>` in the page URL asks that query on load (a shareable link).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import deque
from typing import Any

import httpx
import streamlit as st
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

TIMEOUT_SECONDS = 60.0
FEED_SIZE = 50


def backend() -> tuple[str, dict[str, str]]:
    """The backend's base URL and the headers every call carries."""
    url = os.environ.get("BACKEND_URL", "http://localhost:8080").rstrip("/")
    key = os.environ.get("BACKEND_API_KEY")
    return url, ({"X-API-Key": key} if key else {})


def ws_url(base: str) -> str:
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/api/v1/ws"


class BackendError(Exception):
    """The backend answered with a problem (or could not be reached)."""

    def __init__(self, problem: dict[str, Any]) -> None:
        super().__init__(problem.get("detail", "error"))
        self.problem = problem


def unreachable(exc: Exception) -> BackendError:
    detail = f"{type(exc).__name__}: {exc}"
    return BackendError({"title": "Backend unreachable", "status": None, "detail": detail})


def ask_facade(base: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """The answer from the synchronous facade."""
    try:
        response = httpx.post(
            f"{base}/api/v1/query", json=body, headers=headers, timeout=TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise unreachable(exc) from None
    if response.status_code == 204:
        return None
    if response.is_error:
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text}
        raise BackendError({"status": response.status_code, **problem})
    return response.json()


def ask_streaming(
    base: str, headers: dict[str, str], body: dict[str, Any], on_progress: Any
) -> Any:
    """The answer over the WebSocket; progress messages go to `on_progress` as they come."""
    ident = str(uuid.uuid4())
    try:
        with connect(ws_url(base), additional_headers=headers, open_timeout=10) as ws:
            ws.send(json.dumps({"id": ident, **body}))
            deadline = time.monotonic() + TIMEOUT_SECONDS
            while True:
                message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if message.get("id") != ident:
                    continue
                if message["type"] == "progress":
                    on_progress(message.get("data"))
                elif message["type"] == "result":
                    return message["data"]
                elif message["type"] == "error":
                    raise BackendError(message["error"])
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise unreachable(exc) from None


class FeedListener(threading.Thread):
    """Keeps a WebSocket subscribed to the live feed and the last events in memory."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        super().__init__(name="feed-listener", daemon=True)
        self.url, self.headers = ws_url(base), headers
        self.events: deque[dict[str, Any]] = deque(maxlen=FEED_SIZE)
        self.status = "connecting"

    def run(self) -> None:
        while True:
            try:
                self._listen()
            except Exception as exc:  # any failure: say so, retry shortly
                self.status = f"disconnected ({type(exc).__name__}); retrying"
            time.sleep(2.0)

    def _listen(self) -> None:
        with connect(self.url, additional_headers=self.headers, open_timeout=5) as ws:
            ws.send(json.dumps({"type": "subscribe", "types": []}))
            self.status = "live"
            for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "event":
                    self.events.appendleft({"received": time.strftime("%H:%M:%S"), **message})
                elif message.get("type") == "unsubscribed":  # dropped as slow: subscribe again
                    ws.send(json.dumps({"type": "subscribe", "types": []}))


@st.cache_resource
def feed_listener(base: str, key: str | None) -> FeedListener:
    """One listener per backend for the whole Streamlit process (the feed is the same for all)."""
    listener = FeedListener(base, {"X-API-Key": key} if key else {})
    listener.start()
    return listener


def show_problem(problem: dict[str, Any]) -> None:
    status = problem.get("status")
    title = problem.get("title", "Error")
    st.error(f"**{title}**{f' ({status})' if status else ''}: {problem.get('detail', '')}")
    for error in problem.get("errors", []):
        st.error(f"`{'.'.join(map(str, error.get('loc', [])))}`: {error.get('msg')}")


def parse_parameters(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendError({"title": "Parameters are not JSON", "detail": str(exc)}) from None
    if not isinstance(value, dict):
        raise BackendError({"title": "Parameters", "detail": "must be a JSON object"})
    return value


def query_panel(base: str, headers: dict[str, str]) -> None:
    st.subheader("Ask")
    initial = st.query_params.get("q", "")
    query = st.text_area("Query", value=initial, key="query", height=120)
    parameters = st.text_area("Parameters (JSON object, optional)", key="parameters", height=80)
    streaming = st.toggle("Stream over the WebSocket", value=True, key="streaming")
    # A `?q=` link asks once per browser session, not on every rerun.
    from_link = bool(initial) and not st.session_state.get("link_asked")
    st.session_state["link_asked"] = True
    if not (st.button("Ask", type="primary", key="ask") or from_link):
        return
    started = time.perf_counter()
    try:
        body: dict[str, Any] = {"query": query}
        params = parse_parameters(parameters)
        if params is not None:
            body["parameters"] = params
        if streaming:
            with st.status("Streaming...", expanded=True) as status:
                answer = ask_streaming(base, headers, body, st.write)
                status.update(label="Answered", state="complete", expanded=False)
        else:
            answer = ask_facade(base, headers, body)
    except BackendError as error:
        show_problem(error.problem)
        return
    show_answer(answer, time.perf_counter() - started, "WebSocket" if streaming else "facade")


def show_answer(answer: Any, elapsed: float, transport: str) -> None:
    st.subheader("Answer")
    if answer is None:
        st.info("The function had nothing to say.")
        return
    result = answer.get("result", {})
    message = result.get("message") if isinstance(result, dict) else None
    if isinstance(message, str):
        st.success(message)
    st.json(result)
    st.caption(f"via the {transport} in {elapsed * 1000:.0f} ms")
    st.json({"metadata": answer.get("metadata", {})}, expanded=False)


def feed_panel(base: str) -> None:
    @st.fragment(run_every="2s")
    def render() -> None:
        listener = feed_listener(base, os.environ.get("BACKEND_API_KEY"))
        st.caption(f"Live event feed: {listener.status}")
        events = list(listener.events)
        if not events:
            st.write("No events yet.")
        for item in events[:20]:
            event = item.get("event", {})
            st.markdown(f"`{item['received']}` **{event.get('type')}** `{event.get('id')}`")
            with st.expander("event", expanded=False):
                st.json(event)

    st.subheader("Events")
    render()


def main() -> None:
    st.set_page_config(page_title="knative-python-backend", layout="wide")
    st.title("knative-python-backend")
    base, headers = backend()
    st.caption(f"Backend: {base}")
    left, right = st.columns([3, 2])
    with left:
        query_panel(base, headers)
    with right:
        feed_panel(base)


main()
