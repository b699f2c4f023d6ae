"""`Prefer: reply`: where the reply of a delivery goes (knative/specs, the data-plane contract).

"If a sender will process a reply event it MUST include the `Prefer: reply` header"; Brokers and
Channels always do. A sender without it (a source posting to the function, `kn event send --to`,
a PingSource) drops whatever it gets back: with K_SINK the reply is published there instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eventfn.binding import prefers_reply
from tests.helpers.sink import running_sink
from tests.helpers.support import (
    BATCH,
    RESPONSE,
    binary_headers,
    dumps,
    event_json,
    new_id,
    query,
    suite_client,
)

PREFER = {"prefer": "reply"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"reply", True),
        (b"Reply", True),
        (b"respond-async, reply", True),
        (b"reply; wait=5", True),
        (b" reply ,return=minimal", True),
        (b"return=minimal", False),
        (b"replying", False),
        (b"respond-async; reply", False),  # a parameter of another preference, not a preference
        (b"", False),
    ],
)
def test_the_reply_preference_is_read_as_rfc_7240_writes_it(value: bytes, expected: bool) -> None:
    """`reply` among the comma-separated preferences, any case, with or without parameters."""
    assert prefers_reply(value) is expected


async def test_a_broker_delivery_gets_its_reply_in_the_response(tmp_path: Path) -> None:
    """With `Prefer: reply`, the reply is in the response, K_SINK or not, and not published."""
    with running_sink() as sink:
        async with suite_client(k_sink=sink.url, data_dir=tmp_path) as client:
            response = await client.post(
                "/", headers={**binary_headers(), **PREFER}, content=dumps(query("hi"))
            )
        assert response.status_code == 200
        assert response.headers["ce-type"] == RESPONSE
        assert sink.received == []


async def test_without_prefer_reply_the_reply_goes_to_k_sink_and_the_answer_is_202(
    tmp_path: Path,
) -> None:
    """No `Prefer: reply` and K_SINK set: 202 with no body, the reply event reaches the sink."""
    event_id = new_id()
    with running_sink() as sink:
        async with suite_client(k_sink=sink.url, data_dir=tmp_path) as client:
            response = await client.post(
                "/", headers=binary_headers(id=event_id), content=dumps(query("hi"))
            )
            [published] = await sink.wait_for(1)
            metrics = (await client.get("/metrics")).text
    assert (response.status_code, response.content) == (202, b"")
    assert published.headers["ce-type"] == RESPONSE
    assert b"Processed query: hi" in published.body
    assert "function_replies_published_total 1.0" in metrics


async def test_the_published_reply_is_the_reply_a_broker_would_have_got(tmp_path: Path) -> None:
    """One reply id either way: a redelivery with `Prefer: reply` answers what was published."""
    event_id = new_id()
    with running_sink() as sink:
        async with suite_client(k_sink=sink.url, data_dir=tmp_path) as client:
            await client.post("/", headers=binary_headers(id=event_id), content=dumps(query()))
            [published] = await sink.wait_for(1)
            again = await client.post(
                "/", headers={**binary_headers(id=event_id), **PREFER}, content=dumps(query())
            )
    assert again.headers["ce-id"] == published.headers["ce-id"]


async def test_a_batch_without_prefer_reply_publishes_every_reply(tmp_path: Path) -> None:
    """Each reply of a batch is published; the batch is answered 202."""
    batch = [event_json(query("a")), event_json(query("b"))]
    with running_sink() as sink:
        async with suite_client(k_sink=sink.url, data_dir=tmp_path) as client:
            response = await client.post("/", headers={"content-type": BATCH}, content=dumps(batch))
            received = await sink.wait_for(2)
    assert response.status_code == 202
    assert sorted(r.headers["ce-type"] for r in received) == [RESPONSE, RESPONSE]


async def test_without_prefer_reply_and_no_sink_the_reply_is_answered_and_counted() -> None:
    """No K_SINK: the reply stays in the response (as before) and /metrics counts it."""
    async with suite_client() as client:
        response = await client.post("/", headers=binary_headers(), content=dumps(query()))
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 200
    assert "function_replies_unrequested_total 1.0" in metrics
