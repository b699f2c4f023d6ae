"""The Streamlit client (`ui/app.py`) driven by AppTest against a real running function."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import ROOT, ServerProcess, binary_headers, dumps, query, running_server

pytest.importorskip("streamlit", reason="the `ui` extra is not installed")
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def backend() -> Iterator[ServerProcess]:
    with running_server({"LOG_LEVEL": "warning"}) as server:
        yield server


@pytest.fixture
def ui(backend: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app, pointed at the running function, after its first run."""
    monkeypatch.setenv("BACKEND_URL", backend.url)
    monkeypatch.delenv("BACKEND_API_KEY", raising=False)
    app = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=30)
    app.run()
    assert not app.exception
    return app


def ask(ui: AppTest, text: str, *, streaming: bool) -> AppTest:
    ui.text_area(key="query").input(text)
    ui.toggle(key="streaming").set_value(streaming)
    ui.button(key="ask").click().run()
    assert not ui.exception
    return ui


def test_a_query_through_the_facade_shows_the_answer_and_metadata(ui: AppTest) -> None:
    """Enter a query, press Ask: the handler's message and the answer's metadata are shown."""
    ask(ui, "What is Knative?", streaming=False)
    assert [s.value for s in ui.success] == ["Processed query: What is Knative?"]
    assert any("via the facade" in c.value for c in ui.caption)
    assert any("timestamp" in str(j.value) for j in ui.json)
    assert not ui.error


def test_a_streamed_query_answers_and_the_feed_shows_events_live(
    ui: AppTest, backend: ServerProcess
) -> None:
    """Over the WebSocket the answer arrives too; an event sent meanwhile shows in the feed."""
    ask(ui, "streamed", streaming=True)
    assert [s.value for s in ui.success] == ["Processed query: streamed"]
    assert any("via the WebSocket" in c.value for c in ui.caption)
    deadline = time.monotonic() + 15
    sent = 0
    while not any("ui-feed-" in m.value for m in ui.markdown):
        assert time.monotonic() < deadline, "no event reached the feed panel"
        # New events until the feed listener (started by the first run) is subscribed.
        sent += 1
        headers = binary_headers(id=f"ui-feed-{sent}")
        httpx.post(backend.url, headers=headers, content=dumps(query("live")), timeout=5)
        time.sleep(0.3)
        ui.run()
    assert any("com.example.query.request" in m.value for m in ui.markdown)


def test_a_rejected_query_is_shown_as_an_error(ui: AppTest) -> None:
    """A blank query is refused by the function; the problem is shown with st.error."""
    ask(ui, "   ", streaming=False)
    assert ui.error
    assert "400" in ui.error[0].value
    assert not ui.success
