"""What every page of the UI shares: the backend and its credentials, problems shown, and the
two background readers (the live feed, the `/metrics` sampler) that pages read without waiting.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

import streamlit as st

from ui.client import Backend, FeedListener, Problem, Reader
from ui.metrics import Sample, Scrape, scrape, select

SAMPLE_SECONDS = 2.0
SAMPLES = 300  # ten minutes of scrapes


def backend() -> Backend:
    """The function this session talks to, with the credentials from the sidebar (or the
    environment's BACKEND_API_KEY / BACKEND_TOKEN, which prefill it)."""
    url = os.environ.get("BACKEND_URL", "http://localhost:8080").rstrip("/")
    state = st.session_state
    api_key = state.get("api_key", os.environ.get("BACKEND_API_KEY", ""))
    token = state.get("token", os.environ.get("BACKEND_TOKEN", ""))
    return Backend(url, api_key or None, token or None)


def sidebar() -> Backend:
    """The sidebar: where the function is, and the credentials to send it."""
    with st.sidebar:
        current = backend()
        st.caption("Function")
        st.code(current.url, language=None)
        st.text_input(
            "API key",
            value=os.environ.get("BACKEND_API_KEY", ""),
            key="api_key",
            type="password",
            help="Sent as X-API-Key: one of the function's API_KEYS.",
        )
        st.text_input(
            "Bearer token",
            value=os.environ.get("BACKEND_TOKEN", ""),
            key="token",
            type="password",
            help="Sent as Authorization: Bearer (an API key or an OIDC token).",
        )
        chosen = backend()
        st.caption(f"Credentials: {credentials(chosen)}")
    return chosen


def credentials(backend: Backend) -> str:
    parts = [
        *(["API key"] if backend.api_key else []),
        *(["bearer token"] if backend.token else []),
    ]
    return " + ".join(parts) if parts else "none"


def show_problem(problem: Problem, *, general: list[str] | None = None) -> None:
    """A problem as a person reads it: title, status, detail; 401/403 explained."""
    body = problem.problem
    status = problem.status
    title = body.get("title") or "Error"
    detail = body.get("detail") or ""
    st.error(f"**{title}**{f' ({status})' if status else ''}: {detail}")
    for line in general if general is not None else []:
        st.error(line)
    if problem.explanation:
        st.info(problem.explanation)


@st.cache_data(ttl=30, show_spinner=False)
def types(url: str, api_key: str | None, token: str | None) -> dict[str, Any]:
    """The consumed types of the function; cached a little (a type added shows within 30 s)."""
    return Backend(url, api_key, token).types()


class MetricsSampler(Reader):
    """Scrapes `/metrics` every SAMPLE_SECONDS and keeps the parsed samples: the Live page's
    charts read them, never the function."""

    def __init__(self, backend: Backend) -> None:
        super().__init__("metrics-sampler")
        self.backend = backend
        self.scrapes: deque[Scrape] = deque(maxlen=SAMPLES)
        self.error: str | None = None

    def run(self) -> None:
        while self.wanted:
            try:
                self.scrapes.append(scrape(self.backend.metrics(), time.time()))
                self.error = None
            except Problem as problem:
                self.error = str(problem)
            except Exception as exc:  # a bad scrape must not end the reader: say so, go on
                self.error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(SAMPLE_SECONDS)

    def samples(self, types: list[str]) -> list[Sample]:
        self.touch()
        return [select(s, types) for s in list(self.scrapes)]


def _alive(reader: Reader) -> bool:
    return reader.is_alive()


# One reader per function and credentials for the whole UI process; an idle one has ended and is
# started again (`validate`), and a few credentials tried in turn do not pile readers up.
@st.cache_resource(show_spinner=False, validate=_alive, max_entries=8)
def feed(url: str, api_key: str | None, token: str | None) -> FeedListener:
    """One feed listener per function and credentials for the whole UI process."""
    listener = FeedListener(Backend(url, api_key, token))
    listener.start()
    return listener


@st.cache_resource(show_spinner=False, validate=_alive, max_entries=8)
def sampler(url: str, api_key: str | None, token: str | None) -> MetricsSampler:
    """One `/metrics` sampler per function for the whole UI process."""
    thread = MetricsSampler(Backend(url, api_key, token))
    thread.start()
    return thread
