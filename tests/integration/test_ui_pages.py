"""The console (`ui/app.py`), every page driven by Streamlit's AppTest against a real function
process serving three types (tests/functions/ui.py)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.functions.ui import (
    AUDIT_TYPE,
    ORDER_TYPE,
    TICKET_TYPE,
    dead_letter,
    function_process,
    running_function,
)
from tests.helpers.support import ROOT, ServerProcess, free_port, wait_until
from ui.metrics import parse

pytest.importorskip("streamlit", reason="the `ui` extra is not installed")
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.server
APP = str(ROOT / "ui" / "app.py")
ORDER = f"send:{ORDER_TYPE}:"
TICKET = f"send:{TICKET_TYPE}:"


@pytest.fixture(scope="module")
def function() -> Iterator[ServerProcess]:
    with running_function() as server:
        yield server


@pytest.fixture(scope="module")
def keyed_function() -> Iterator[ServerProcess]:
    with running_function({"API_KEYS": "sesame"}) as server:
        yield server


def console(
    url: str, monkeypatch: pytest.MonkeyPatch, page: str | None = None, **query: str
) -> AppTest:
    """The console pointed at `url`, after its first run (on `page` if given)."""
    monkeypatch.setenv("BACKEND_URL", url)
    monkeypatch.delenv("BACKEND_API_KEY", raising=False)
    monkeypatch.delenv("BACKEND_TOKEN", raising=False)
    app = AppTest.from_file(APP, default_timeout=30)
    app.query_params.update(query)
    app.run()
    if page is not None:
        app.switch_page(page).run()
    assert not app.exception
    return app


@pytest.fixture
def ui(function: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return console(function.url, monkeypatch)


def send(app: AppTest) -> AppTest:
    app.button[0].click().run()  # the form's Send: the page's first button
    assert not app.exception
    return app


def rerun_until(app: AppTest, done: Callable[[AppTest], bool], what: str, wait: float = 20) -> None:
    """Rerun `app` until `done` (the feed and /metrics arrive in the background)."""
    if done(app):
        return
    # the page's feed and /metrics come from a real server in the background: rerun, see again
    wait_until(lambda: done(app.run()), wait, what, every=0.3)


def texts(app: AppTest) -> str:
    parts = [
        e.value
        for kind in ("markdown", "caption", "success", "error", "info")
        for e in getattr(app, kind)
    ]
    return "\n".join(str(p) for p in parts)


# -- Send ---------------------------------------------------------------------------------------


def test_send_lists_every_consumed_type_by_its_facade_name(ui: AppTest) -> None:
    """The first page offers the three types, named by facade name and CloudEvents type."""
    assert ui.selectbox[0].options == [
        f"order · {ORDER_TYPE}",
        AUDIT_TYPE,
        f"ticket · {TICKET_TYPE}",
    ]
    assert ui.selectbox[0].value == ORDER_TYPE


def test_the_form_starts_with_the_schemas_example(ui: AppTest) -> None:
    """The order form is prefilled with the model's example."""
    assert ui.text_input(key=ORDER + "sku").value == "book"
    assert ui.text_input(key=ORDER + "quantity").value == "2"


def test_an_order_over_the_facade_shows_its_reply(ui: AppTest) -> None:
    """Send the example order: the handler's answer is shown."""
    send(ui)
    assert [j.value for j in ui.json] == ['{"order_id": "book-2"}']
    assert "over the facade" in ui.success[0].value


def test_a_refused_value_is_shown_beside_its_field(ui: AppTest) -> None:
    """Quantity 0: the function's 400 says why, under the quantity field."""
    ui.text_input(key=ORDER + "quantity").input("0")
    send(ui)
    errors = [e.value for e in ui.error]
    assert "Quantity: Input should be greater than 0" in errors
    assert any("(400)" in e for e in errors)
    assert not ui.json


def test_a_value_that_is_not_a_number_is_refused_before_sending(ui: AppTest) -> None:
    """`two` in an integer field is that field's error; nothing is sent."""
    ui.text_input(key=ORDER + "quantity").input("two")
    send(ui)
    assert [e.value for e in ui.error] == ["Quantity: 'two' is not a whole number"]


def test_a_ticket_over_the_websocket_shows_its_progress_and_reply(ui: AppTest) -> None:
    """Nested object, enum, defaults: the reply comes over the WebSocket after two progress."""
    ui.selectbox[0].select(TICKET_TYPE).run()
    ui.text_input(key=TICKET + "customer.name").input("ada")
    ui.selectbox(key=TICKET + "priority").select("high")
    ui.radio(key="transport").set_value("WebSocket")
    send(ui)
    assert json.loads(ui.json[0].value) == {"ticket": "Printer on fire", "queue": "urgent"}
    assert "over the WebSocket" in ui.success[0].value
    assert [json.loads(j.value)["step"] for j in ui.json[1:]] == ["read", "routed"]


def test_a_fire_and_forget_type_says_it_was_handled(ui: AppTest) -> None:
    """The audit type has no reply: the page says so."""
    ui.selectbox[0].select(AUDIT_TYPE).run()
    ui.text_input(key=f"send:{AUDIT_TYPE}:actor").input("ada")
    ui.text_input(key=f"send:{AUDIT_TYPE}:action").input("login")
    send(ui)
    assert ui.success[0].value == "Handled: the type has nothing to say back."


def test_a_shared_link_opens_its_type_with_its_data(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`?type=order&data=...` opens the order form with that payload."""
    app = console(function.url, monkeypatch, type="order", data='{"sku": "pen", "quantity": 5}')
    assert app.selectbox[0].value == ORDER_TYPE
    assert app.text_input(key=ORDER + "sku").value == "pen"
    assert app.text_input(key=ORDER + "quantity").value == "5"


def test_a_sent_payload_is_kept_in_the_url(ui: AppTest) -> None:
    """After a send the URL carries the type and the payload: a link to share."""
    ui.text_input(key=ORDER + "sku").input("pen")
    send(ui)
    assert ui.query_params["type"] == "order"
    assert json.loads(ui.query_params["data"]) == {"sku": "pen", "quantity": 2}


def test_the_raw_json_editor_sends_what_is_typed(ui: AppTest) -> None:
    """Switch to raw JSON: it holds the form's payload; an unknown property is refused."""
    ui.radio(key=ORDER + "editor").set_value("raw JSON").run()
    raw = ui.text_area(key=ORDER + "#raw")
    assert json.loads(raw.value) == {"sku": "book", "quantity": 2}
    raw.input('{"sku": "book", "quantity": 0, "colour": "red"}')
    send(ui)
    errors = [e.value for e in ui.error]
    assert "colour: Extra inputs are not permitted" in errors
    assert "quantity: Input should be greater than 0" in errors


def test_credentials_missing_are_explained(
    keyed_function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind API keys without one: a 401, and what to do about it; never a traceback."""
    app = console(keyed_function.url, monkeypatch)
    assert "(401)" in app.error[0].value
    assert "API key" in app.info[0].value
    assert not app.selectbox


def test_an_api_key_from_the_sidebar_lets_the_console_in(
    keyed_function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key typed in the sidebar is sent: the types appear."""
    app = console(keyed_function.url, monkeypatch)
    app.text_input(key="api_key").input("sesame").run()
    assert not app.error
    assert app.selectbox[0].value == ORDER_TYPE


def test_an_api_key_from_the_environment_is_used(
    keyed_function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BACKEND_API_KEY fills the sidebar and is sent."""
    monkeypatch.setenv("BACKEND_URL", keyed_function.url)
    monkeypatch.setenv("BACKEND_API_KEY", "sesame")
    app = AppTest.from_file(APP, default_timeout=30)
    app.run()
    assert not app.error
    assert app.text_input(key="api_key").value == "sesame"


def test_the_backend_url_is_shown(ui: AppTest, function: ServerProcess) -> None:
    """The sidebar says which function the console talks to."""
    assert [c.value for c in ui.sidebar.code] == [function.url]


# -- Live ---------------------------------------------------------------------------------------


def post_order(url: str, event_id: str) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/tests/ui",
        "ce-type": ORDER_TYPE,
        "content-type": "application/json",
    }
    response = httpx.post(url, headers=headers, content=b'{"sku": "cup", "quantity": 1}')
    assert response.is_success  # 202: the reply goes to K_SINK (no `Prefer: reply`)


def feed_ids(app: AppTest) -> list[str]:
    return [str(i) for frame in app.dataframe for i in frame.value.get("id", [])]


def test_live_shows_handled_events_and_their_replies(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event delivered to the function appears in the feed with its outcome."""
    app = console(function.url, monkeypatch, page="views/live.py")
    ident = f"live-{uuid.uuid4()}"

    def arrived(app: AppTest) -> bool:
        post_order(function.url, f"{ident}-{time.monotonic_ns()}")  # until the feed listens
        return any(i.startswith(ident) for i in feed_ids(app))

    rerun_until(app, arrived, "no event reached the feed")
    frame = app.dataframe[0].value
    assert "handled" in set(frame["outcome"])
    assert "replied / published" in set(frame["outcome"])


def test_live_filters_the_feed_by_type_and_outcome(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filtering on the audit type hides the orders; on `handled`, the replies."""
    app = console(function.url, monkeypatch, page="views/live.py")
    rerun_until(
        app,
        lambda a: (post_order(function.url, str(uuid.uuid4())), feed_ids(a))[1] != [],
        "no event reached the feed",
    )
    app.multiselect(key="live_outcomes").select("handled").run()
    assert set(app.dataframe[0].value["outcome"]) == {"handled"}
    app.multiselect(key="live_types").select(AUDIT_TYPE).run()
    assert not app.dataframe


def test_live_charts_rates_and_latency_from_metrics(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a few scrapes of /metrics, both charts are drawn."""
    app = console(function.url, monkeypatch, page="views/live.py")

    def charted(app: AppTest) -> bool:
        post_order(function.url, str(uuid.uuid4()))
        return len(app.get("vega_lite_chart")) == 2

    rerun_until(app, charted, "the charts never appeared")
    assert "Events/s by outcome" in texts(app)


# -- Dead letters -------------------------------------------------------------------------------


def letter_ids(app: AppTest) -> list[str]:
    return [str(i) for i in app.dataframe[0].value["event id"]] if app.dataframe else []


def test_a_dead_letter_is_listed_with_the_brokers_error(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Posted to /deadletter, it is in the table: id, type, source, code, destination, reason."""
    ident = f"dl-{uuid.uuid4()}"
    dead_letter(function.url, ident, {"sku": "mug", "quantity": 1}, code=503)
    app = console(function.url, monkeypatch, page="views/dead_letters.py")
    frame = app.dataframe[0].value
    row = frame[frame["event id"] == ident].iloc[0]
    assert (row["type"], row["source"], row["knativeerrorcode"]) == (ORDER_TYPE, "/tests/ui", 503)
    assert row["knativeerrordest"] == "http://function.default.svc/"
    assert row["reason"] == "the subscriber answered 503"
    assert str(row["received"].tzinfo) == "UTC"


def test_a_dead_letter_is_inspected_with_its_attributes_and_data(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chosen by its event id, its attributes and data are shown."""
    ident = f"dl-{uuid.uuid4()}"
    dead_letter(function.url, ident, {"sku": "lamp", "quantity": 3})
    app = console(function.url, monkeypatch, page="views/dead_letters.py")
    app.multiselect(key="dl_ids:1:None").select(ident).run()
    shown = [json.loads(j.value) for j in app.json]
    assert shown[0]["id"] == ident
    assert shown[0]["knativeerrorcode"] == "500"  # as the broker sent it (binary: a header)
    assert shown[1] == {"sku": "lamp", "quantity": 3}


def handled_orders(url: str) -> float:
    return parse(httpx.get(f"{url}/metrics").text, 0, [ORDER_TYPE]).outcomes.get("ok", 0.0)


def test_replaying_a_dead_letter_reaches_the_function_and_leaves_the_table(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay: the event is delivered to K_SINK (the function itself) and leaves the inbox."""
    ident = f"dl-{uuid.uuid4()}"
    dead_letter(function.url, ident, {"sku": "desk", "quantity": 1})
    app = console(function.url, monkeypatch, page="views/dead_letters.py")
    before = handled_orders(function.url)
    app.multiselect(key="dl_ids:1:None").select(ident).run()
    next(b for b in app.button if b.label.startswith("Replay selected")).click().run()
    assert not app.exception
    assert "Replayed 1 (1 delivered)." in [s.value for s in app.success]
    assert ident not in letter_ids(app)
    assert handled_orders(function.url) == before + 1


def test_delete_asks_for_confirmation_first(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delete selected only warns; Confirm deletes."""
    ident = f"dl-{uuid.uuid4()}"
    dead_letter(function.url, ident, {"sku": "pen", "quantity": 1})
    app = console(function.url, monkeypatch, page="views/dead_letters.py")
    app.multiselect(key="dl_ids:1:None").select(ident).run()
    next(b for b in app.button if b.label.startswith("Delete selected")).click().run()
    assert ident in letter_ids(app)
    assert "Sure?" in app.warning[0].value
    app.button(key="dl_yes").click().run()
    assert ident not in letter_ids(app)
    assert httpx.get(f"{function.url}/api/v1/deadletters/{ident}").status_code == 404


def test_the_inbox_is_read_a_page_at_a_time(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more letters than a page, Older shows the next page (by the API's cursor)."""
    prefix = f"page-{uuid.uuid4()}"
    for n in range(30):
        dead_letter(function.url, f"{prefix}-{n:02d}", {"sku": "x", "quantity": 1})
    app = console(function.url, monkeypatch, page="views/dead_letters.py")
    first = letter_ids(app)
    assert len(first) == 25
    next(b for b in app.button if b.label == "Older →").click().run()
    second = letter_ids(app)
    assert second
    assert not set(first) & set(second)
    assert any("Page 2" in c.value for c in app.caption)
    next(b for b in app.button if b.label == "← Newer").click().run()
    assert letter_ids(app) == first


# -- Status -------------------------------------------------------------------------------------


def test_status_shows_readiness_outbox_dedupe_redis_and_auth(
    function: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ready with its reason; the outbox, dedupe window and Redis as metrics; auth in the table."""
    app = console(function.url, monkeypatch, page="views/status.py")
    assert app.success[0].value.startswith("**Ready**")
    labels = {m.label: m.value for m in app.metric}
    assert set(labels) == {"Outbox depth", "Oldest waiting", "Dedupe window", "Redis"}
    assert labels["Redis"] == "not used"
    rows = app.table[0].value
    assert "open (no credentials asked)" in set(rows["now"])
    assert function.url in set(rows["now"])


# -- never waiting on the feed or /metrics --------------------------------------------------------


class Stalled:
    """A backend that lists the types at once but never answers `/metrics` nor the WebSocket
    handshake (until the test ends)."""

    def __init__(self, types: bytes) -> None:
        import http.server
        import threading

        self.release = threading.Event()
        self.stalled = threading.Semaphore(0)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/api/v1/types":
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(types)))
                    self.end_headers()
                    self.wfile.write(types)
                    return
                outer.stalled.release()
                outer.release.wait()

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalled(function: ServerProcess) -> Iterator[Stalled]:
    backend = Stalled(httpx.get(f"{function.url}/api/v1/types").content)
    try:
        yield backend
    finally:
        backend.close()


def test_the_live_page_draws_while_metrics_and_the_feed_hang(
    stalled: Stalled, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With /metrics and the WebSocket stuck, the page still draws, and again, at once."""
    import ui.client

    # A page that waited on either would now wait longer than AppTest lets a run take.
    monkeypatch.setattr(ui.client, "QUICK_SECONDS", 600.0)
    app = console(stalled.url, monkeypatch, page="views/live.py")
    assert stalled.stalled.acquire(timeout=20)  # the background readers are stuck in there
    app.run(timeout=20)
    assert not app.exception
    captions = [c.value for c in app.caption]
    assert any(c.startswith("Event feed: connecting") for c in captions)
    assert "Charts start after two scrapes of /metrics (every 2 s)." in captions


def test_replay_all_replays_every_letter_after_confirmation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replay all asks first; confirmed, every letter in the inbox is replayed and leaves it."""
    with running_function() as own:
        for n in range(3):
            dead_letter(own.url, f"all-{n}", {"sku": "cup", "quantity": n + 1})
        app = console(own.url, monkeypatch, page="views/dead_letters.py")
        next(b for b in app.button if b.label == "Replay all…").click().run()
        assert len(letter_ids(app)) == 3
        app.button(key="dl_yes").click().run()
        assert "Replayed all 3." in [s.value for s in app.success]
        # What is left are the replies the replays made, refused by K_SINK (the function).
        assert not {"all-0", "all-1", "all-2"} & set(letter_ids(app))


def test_status_says_why_the_function_is_not_ready(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its Redis unreachable the function is alive, not ready: the page says why."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    server = function_process({"DATA_DIR": str(tmp_path), "REDIS_URL": dead_redis})
    server.spawn().wait_alive()
    try:
        app = console(server.url, monkeypatch, page="views/status.py")
        assert app.error[0].value.startswith("**Not ready: redis-unavailable**")
        assert "Redis cannot serve the stores now" in app.error[0].value
        assert {m.label: m.value for m in app.metric}["Redis"] == "standalone"
    finally:
        server.stop()
