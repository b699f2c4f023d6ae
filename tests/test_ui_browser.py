"""End to end in a real browser: `streamlit run ui/app.py` + the function, headless Chromium.

Chromium is driven over the DevTools protocol with the `websockets` client (no browser driver
package needed). Install it with `make chromium`; without /usr/bin/chromium the test is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support import ROOT, binary_headers, dumps, free_port, query, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no chromium: `make chromium` installs it"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("streamlit") is None,
        reason="the `ui` extra is not installed (`make venv` has it; Poetry: --all-extras)",
    ),
]


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(  # our interpreter or the system chromium
        args,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(url: str, timeout: float = 30) -> Any:
    """GET `url` until it answers 200; its JSON (or text)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(url, timeout=1)
            if response.status_code == 200:
                return response.json() if "json" in response.headers["content-type"] else None
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


class Page:
    """A minimal DevTools-protocol client of one browser tab."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.calls = ws, 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        message = {"id": self.calls, "method": method, "params": params}
        await self.ws.send(orjson.dumps(message).decode())  # DevTools wants text frames
        while True:
            message = orjson.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if message.get("id") == self.calls:
                result: dict[str, Any] = message["result"]
                return result

    async def text(self) -> str:
        found = await self.call(
            "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
        )
        return str(found["result"].get("value", ""))

    async def wait_for_text(self, *needles: str, wait: float = 30) -> str:
        deadline = time.monotonic() + wait
        while True:
            text = await self.text()
            if all(n in text for n in needles):
                return text
            assert time.monotonic() < deadline, f"{needles} not on the page:\n{text}"
            await asyncio.sleep(0.3)


async def test_the_page_answers_a_query_and_shows_events_live(tmp_path: Path) -> None:
    """A `?q=` link is answered on the page; an event sent to the function appears in the feed."""
    ui_port, devtools = free_port(), free_port()
    with running_server({"LOG_LEVEL": "warning"}) as function:
        streamlit = [sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "app.py")]
        streamlit += ["--server.port", str(ui_port), "--server.address", "127.0.0.1"]
        streamlit += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
        with process(streamlit, {"BACKEND_URL": function.url}):
            wait_for(f"http://127.0.0.1:{ui_port}/_stcore/health")
            browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu"]
            browser += ["--disable-dev-shm-usage", f"--remote-debugging-port={devtools}"]
            browser += [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900"]
            with process([*browser, f"http://127.0.0.1:{ui_port}/?q=hello%20browser"]):
                targets = wait_for(f"http://127.0.0.1:{devtools}/json/list")
                tab = next(t for t in targets if t["type"] == "page")
                async with connect(tab["webSocketDebuggerUrl"], max_size=None) as ws:
                    page = Page(ws)
                    await page.wait_for_text("Processed query: hello browser", "feed: live")
                    async with httpx.AsyncClient() as client:
                        headers = binary_headers(id="browser-event")
                        await client.post(function.url, headers=headers, content=dumps(query()))
                    await page.wait_for_text("browser-event", "com.example.query.response")
                    shot = await page.call("Page.captureScreenshot", format="png")
    png = base64.b64decode(shot["data"])
    (tmp_path / "ui.png").write_bytes(png)
    assert png.startswith(b"\x89PNG")
