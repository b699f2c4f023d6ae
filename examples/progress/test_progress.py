"""The progress-capable handler: the WebSocket streams its stages, the facade gets its reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventfn import create_app
from eventfn.testing import function_client, isolated_settings
from examples.progress.functions import registry
from tests.helpers.live import answers, send, serving, socket


@pytest.mark.server
async def test_the_websocket_shows_each_stage_then_the_result(tmp_path: Path) -> None:
    """A WebSocket query gets one progress message per stage, then the result."""
    app = create_app(isolated_settings(data_dir=tmp_path), registry=registry)
    async with serving(app) as address, socket(address) as ws:
        await send(ws, {"id": "r1", "type": "report", "topic": "Knative"})
        messages = await answers(ws, 3)
    assert [m["type"] for m in messages] == ["progress", "progress", "result"]
    assert [m["data"] for m in messages[:2]] == [{"stage": "retrieving"}, {"stage": "summarising"}]
    assert messages[2]["data"] == {"summary": "All about Knative"}


async def test_the_facade_answers_the_final_reply(tmp_path: Path) -> None:
    """`POST /api/v1/report` runs the same handler and answers its reply only."""
    async with function_client(registry, data_dir=tmp_path) as client:
        response = await client.post("/api/v1/report", json={"topic": "Knative"})
    assert response.status_code == 200
    assert response.json() == {"summary": "All about Knative"}
