"""Smaller bounds that held in the common case and not at the edges.

- the in-memory dedupe bound counts the bytes keys take, not their characters (emoji ids);
- the dead-letter sink takes an event the ingress refused as too large;
- two facade answers sharing an X-Request-Id are two events (neither replaces the other).
"""

from __future__ import annotations

from pathlib import Path

from eventfn.testing import app_client
from tests.support import (
    binary_headers,
    dumps,
    free_port,
    make_app,
    new_id,
    suite_settings,
    until,
)


async def test_an_event_too_large_for_the_ingress_is_kept_as_a_dead_letter(tmp_path: Path) -> None:
    """2 MiB is 413 at POST / (MAX_BODY_BYTES), and stored by /deadletter (its own limit)."""
    body = dumps({"query": "x" * (2 * 2**20)})
    async with app_client(make_app(suite_settings(data_dir=tmp_path))) as client:
        refused = await client.post("/", headers=binary_headers(), content=body)
        kept = await client.post("/deadletter", headers=binary_headers(id=new_id()), content=body)
        items = (await client.get("/api/v1/deadletters")).json()["items"]
    assert refused.status_code == 413
    assert kept.status_code == 202
    assert len(items) == 1


async def test_the_dead_letter_sink_has_a_limit_of_its_own(tmp_path: Path) -> None:
    """Above DEADLETTER_MAX_BODY_BYTES the sink answers 413 too."""
    settings = suite_settings(data_dir=tmp_path, deadletter_max_body_bytes=4096)
    async with app_client(make_app(settings)) as client:
        response = await client.post(
            "/deadletter", headers=binary_headers(), content=dumps({"query": "x" * 8192})
        )
    assert response.status_code == 413


async def test_two_answers_sharing_a_request_id_are_two_events_in_the_outbox(
    tmp_path: Path,
) -> None:
    """With the sink down, two answers sent with one X-Request-Id both wait in the outbox."""
    down = f"http://127.0.0.1:{free_port()}/"
    settings = suite_settings(
        k_sink=down, data_dir=tmp_path, publish_attempts=1, publish_timeout_seconds=0.5
    )
    app = make_app(settings)
    async with app_client(app) as client:
        for text in ("first", "second"):
            response = await client.post(
                "/api/v1/query", json={"query": text}, headers={"x-request-id": "same"}
            )
            assert response.status_code == 200
        publisher = app.state.runtime.publisher
        # Both publishes fail fast (nothing listens), then park.
        await until(lambda: not publisher.pending)
        depth = await publisher.outbox.depth()
    assert depth == 2
