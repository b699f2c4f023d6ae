"""The console's client (`ui/client.py`): answers, or a `Problem` a page can show, never a raise
of httpx's or websockets' own errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.functions.ui import TICKET_TYPE, running_function
from tests.helpers.support import ServerProcess, free_port
from ui.client import EXPLAIN, IDLE_SECONDS, Backend, FeedListener, Problem

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def keyed() -> Iterator[ServerProcess]:
    with running_function({"API_KEYS": "sesame"}) as server:
        yield server


def test_an_unreachable_function_is_a_problem_without_status() -> None:
    """Nothing listening: a problem titled so, naming the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Problem) as caught:
        Backend(url).types()
    assert caught.value.problem["title"] == "Function unreachable"
    assert caught.value.status is None
    assert url in str(caught.value)


def test_a_refusal_carries_the_functions_problem_and_what_it_means(keyed: ServerProcess) -> None:
    """Without credentials: the function's 401 problem, and the explanation for a person."""
    with pytest.raises(Problem) as caught:
        Backend(keyed.url).status()
    assert caught.value.status == 401
    assert caught.value.problem["title"] == "Authentication required"
    assert caught.value.explanation == EXPLAIN[401]


def test_an_api_key_and_a_bearer_token_are_both_sent(keyed: ServerProcess) -> None:
    """The key as X-API-Key, or the same key as a bearer token: both let the client in."""
    assert Backend(keyed.url, api_key="sesame").status()["auth"]["facade"] == ["api_keys"]
    assert Backend(keyed.url, token="sesame").types()["default"] is not None


def test_a_refused_websocket_handshake_is_the_functions_problem(keyed: ServerProcess) -> None:
    """The socket's 401 is read from the handshake's answer, like an HTTP one."""
    with pytest.raises(Problem) as caught:
        Backend(keyed.url).stream("order", {"sku": "a", "quantity": 1}, print)
    assert caught.value.status == 401
    assert caught.value.problem["title"] == "Authentication required"


def test_a_streamed_request_reports_progress_then_answers(keyed: ServerProcess) -> None:
    """Over the WebSocket the progress items arrive in order, then the result."""
    seen: list[Any] = []
    data = {"title": "t", "customer": {"name": "ada"}, "priority": "high"}
    answer = Backend(keyed.url, api_key="sesame").stream("ticket", data, seen.append)
    assert [item["step"] for item in seen] == ["read", "routed"]
    assert answer == {"ticket": "t", "queue": "urgent"}


def test_a_streamed_refusal_has_its_field_errors(keyed: ServerProcess) -> None:
    """A payload the socket refuses is a problem whose errors name their fields."""
    with pytest.raises(Problem) as caught:
        Backend(keyed.url, api_key="sesame").stream(TICKET_TYPE, {"title": ""}, print)
    assert caught.value.status == 400
    assert {tuple(e["loc"])[-1] for e in caught.value.errors} >= {"title", "customer"}


def test_nothing_to_say_is_none(keyed: ServerProcess) -> None:
    """A fire-and-forget type's 204 is None, not an error."""
    backend = Backend(keyed.url, api_key="sesame")
    path = next(t["facade_path"] for t in backend.types()["types"] if t["reply"] is None)
    assert backend.send(path, {"actor": "ada", "action": "login"}) is None


def test_a_feed_nobody_reads_is_let_go() -> None:
    """A reader stays wanted while a page reads it, and ends IDLE_SECONDS after the last read."""
    now = [100.0]
    listener = FeedListener(Backend("http://127.0.0.1:1"), clock=lambda: now[0])
    now[0] += IDLE_SECONDS - 1
    assert listener.wanted
    assert listener.recent() == []  # a read
    now[0] += IDLE_SECONDS - 1
    assert listener.wanted
    now[0] += 2
    assert not listener.wanted
    listener.touch()
    listener.stop()
    assert not listener.wanted
