"""End to end in a real browser: `streamlit run ui/app.py` + the function, Debian's chromium
driven by Playwright (`executable_path`: no browser is downloaded).

`make chromium` installs it; without /usr/bin/chromium these tests are skipped.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.functions.ui import AUDIT_TYPE, dead_letter, running_function
from tests.helpers.support import ROOT, ServerProcess, free_port, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
# A browser with nothing of its own to do: no sandbox (containers), no GPU, no network of its own.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no chromium: `make chromium` installs it"),
    pytest.mark.skipif(
        importlib.util.find_spec("streamlit") is None,
        reason="the `ui` extra is not installed (`make venv` has it; Poetry: --all-extras)",
    ),
]
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (dev group) missing")
WAIT_MS = 30_000


@contextlib.contextmanager
def streamlit(backend: str) -> Iterator[str]:
    """`streamlit run ui/app.py` on a free loopback port; yields its URL once healthy."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py")]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--client.toolbarMode", "minimal"]  # as `make ui` serves it
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "BACKEND_URL": backend},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, "streamlit exited"
        return httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200

    try:
        # a real streamlit process starting: no event to await
        wait_until(
            healthy,
            30,
            "streamlit answering its health check",
            ignoring=(httpx.HTTPError,),
            every=0.1,
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def function() -> Iterator[ServerProcess]:
    with running_function() as server:
        yield server


@pytest.fixture(scope="module")
def console(function: ServerProcess) -> Iterator[str]:
    with streamlit(function.url) as url:
        yield url


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A tab of a fresh headless chromium (its own user-data-dir)."""
    with playwright.sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_an_order_sent_from_the_form_shows_its_reply(page: Page, console: str) -> None:
    """Open the console, press Send on the prefilled order: its reply is on the page."""

    page.goto(console)
    page.get_by_role("button", name="Send").click()
    reply = page.get_by_text("Answered over the facade")
    reply.wait_for()
    page.get_by_text("book-2").first.wait_for()  # in the reply's JSON


def test_a_bad_value_is_shown_beside_its_field(page: Page, console: str) -> None:
    """Quantity 0: the function's refusal appears under the Quantity field."""

    page.goto(console)
    quantity = page.get_by_role("textbox", name="Quantity")
    quantity.fill("0")
    quantity.press("Tab")
    page.get_by_role("button", name="Send").click()
    error = page.get_by_text("Quantity: Input should be greater than 0")
    error.wait_for()
    assert page.get_by_text("(400)").count() == 1


def test_a_replayed_dead_letter_leaves_the_table(
    page: Page, console: str, function: ServerProcess
) -> None:
    """A dead letter posted to /deadletter is listed by its id; replayed, it is gone."""
    ident = f"browser-{uuid.uuid4()}"
    dead_letter(function.url, ident, {"sku": "kite", "quantity": 1})

    page.goto(f"{console}/dead_letters")
    # The grid draws on a canvas; its accessible twin in the DOM holds the cells' text.
    table = page.get_by_test_id("stDataFrame")
    playwright.expect(table).to_contain_text(ident, timeout=WAIT_MS)
    page.get_by_label("Or choose by event id").click()
    page.get_by_role("option", name=ident).click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Replay selected (1)").click()
    page.get_by_text("Replayed 1 (1 delivered).").wait_for()
    playwright.expect(table).not_to_contain_text(ident, timeout=WAIT_MS)
    listed = httpx.get(f"{function.url}/api/v1/deadletters", params={"limit": 500}).json()
    assert ident not in [letter["event_id"] for letter in listed["items"]]


@pytest.mark.parametrize(
    ("link", "answer"),
    [
        ('?type=order&data={"sku":"pen","quantity":3}', "pen-3"),
        (f'?type={AUDIT_TYPE}&data={{"actor":"ada","action":"login"}}', "nothing to say back"),
        # The title comes back in the reply only (a form's values are not page text).
        ('?type=ticket&data={"title":"Fan-42","customer":{"name":"ada"}}', "Fan-42"),
    ],
    ids=["order", "audit", "ticket"],
)
def test_every_type_opens_from_a_shared_link_and_sends(
    page: Page, console: str, link: str, answer: str
) -> None:
    """A link with a type and its data opens that type's form filled in; Send answers."""
    page.goto(console + "/" + link)
    page.get_by_role("button", name="Send").click()
    page.get_by_text(answer).first.wait_for()
