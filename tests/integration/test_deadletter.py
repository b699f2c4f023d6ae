"""The dead-letter inbox: what the broker dead-letters is kept, listed, replayed and deleted.

Both stores (SQLite in tmp_path, Redis DB 11) run the same specification; replays go to a real
local HTTP sink.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from eventfn.stores.deadletters import decode_error_data
from eventfn.testing import app_client
from tests.helpers import support
from tests.helpers.oidc import AUDIENCE, Issuer
from tests.helpers.sink import running_sink
from tests.helpers.support import (
    STRUCTURED,
    binary_headers,
    dumps,
    event_json,
    make_app,
    new_id,
    query,
    suite_client,
    suite_settings,
)

STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]
FAILED_BODY = '{"type":"https://example/problems/schema","status":400}'


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings choosing the dead-letter store: SQLite in tmp_path, or Redis DB 11."""
    if request.param == "redis":
        return {"redis_url": support.redis_url(11), "data_dir": tmp_path}
    return {"data_dir": tmp_path}


def knative_errors(code: str = "400", body: str = FAILED_BODY) -> dict[str, str]:
    """The extensions Knative adds to a dead-lettered event."""
    return {
        "knativeerrordest": "http://function.default.svc/",
        "knativeerrorcode": code,
        "knativeerrordata": base64.b64encode(body.encode()).decode(),
    }


async def dead_letter(
    client: httpx.AsyncClient, event_id: str | None = None, **extensions: str
) -> httpx.Response:
    """POST a binary-mode dead-lettered query event to /deadletter."""
    headers = binary_headers(id=event_id or new_id(), **(extensions or knative_errors()))
    return await client.post("/deadletter", headers=headers, content=support.dumps(query("q")))


async def test_a_dead_letter_is_accepted_and_shown_with_its_decoded_error(
    store: dict[str, Any],
) -> None:
    """POST /deadletter answers 202; the letter shows the event and the decoded error."""
    event_id = new_id()
    async with suite_client(**store) as client:
        accepted = await dead_letter(client, event_id)
        [letter] = (await client.get("/api/v1/deadletters")).json()["items"]
        shown = await client.get(f"/api/v1/deadletters/{letter['id']}")
    assert accepted.status_code == 202
    assert accepted.content == b""
    assert shown.json() == letter
    assert letter["event_id"] == event_id
    assert letter["error"] == {
        "destination": "http://function.default.svc/",
        "code": 400,
        "data": FAILED_BODY,
    }
    assert letter["event"]["data"] == query("q")


async def test_letters_are_listed_newest_first_and_paginated(store: dict[str, Any]) -> None:
    """The list is newest first; `next` leads to the following page until there is none."""
    ids = [new_id() for _ in range(5)]
    async with suite_client(**store) as client:
        for event_id in ids:
            await dead_letter(client, event_id)
        first = (await client.get("/api/v1/deadletters", params={"limit": 2})).json()
        second = (
            await client.get("/api/v1/deadletters", params={"limit": 2, "cursor": first["next"]})
        ).json()
        third = (
            await client.get("/api/v1/deadletters", params={"limit": 2, "cursor": second["next"]})
        ).json()
    pages = [first, second, third]
    listed = [item["event_id"] for page in pages for item in page["items"]]
    assert listed == ids[::-1]
    assert third["next"] is None


async def test_dead_letters_survive_a_restart(store: dict[str, Any]) -> None:
    """A letter stored by one run of the function is listed by the next."""
    event_id = new_id()
    async with suite_client(**store) as client:
        await dead_letter(client, event_id)
    async with suite_client(**store) as client:
        items = (await client.get("/api/v1/deadletters")).json()["items"]
    assert [item["event_id"] for item in items] == [event_id]


async def test_a_redelivered_dead_letter_is_kept_once(store: dict[str, Any]) -> None:
    """The broker sending the same dead letter twice leaves one letter, with the latest error."""
    event_id = new_id()
    async with suite_client(**store) as client:
        await dead_letter(client, event_id, **knative_errors("500", "first"))
        await dead_letter(client, event_id, **knative_errors("503", "second"))
        items = (await client.get("/api/v1/deadletters")).json()["items"]
    assert [(i["event_id"], i["error"]["code"], i["error"]["data"]) for i in items] == [
        (event_id, 503, "second")
    ]


async def test_structured_dead_letters_are_accepted(store: dict[str, Any]) -> None:
    """A structured-mode dead letter is stored like a binary one."""
    body = event_json(data=query("s"), **knative_errors("502"))
    async with suite_client(**store) as client:
        accepted = await client.post(
            "/deadletter", headers={"content-type": STRUCTURED}, content=support.dumps(body)
        )
        [item] = (await client.get("/api/v1/deadletters")).json()["items"]
    assert accepted.status_code == 202
    assert item["error"]["code"] == 502


async def test_replay_sends_the_original_event_without_knative_errors(
    store: dict[str, Any],
) -> None:
    """Replay republishes the event to K_SINK, minus the knativeerror* extensions."""
    event_id = new_id()
    with running_sink() as sink:
        async with suite_client(k_sink=sink.url, **store) as client:
            await dead_letter(
                client, event_id, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"
            )
            [item] = (await client.get("/api/v1/deadletters")).json()["items"]
            replayed = await client.post(f"/api/v1/deadletters/{item['id']}/replay")
        [received] = await sink.wait_for(1)
    assert replayed.status_code == 202
    assert replayed.json() == {"id": item["id"], "outcome": "delivered"}
    assert received.id == event_id
    assert received.headers["ce-traceparent"].startswith("00-aaaa")
    assert not [name for name in received.headers if name.startswith("ce-knativeerror")]
    assert orjson.loads(received.body) == query("q")


async def test_replay_without_a_sink_is_409(store: dict[str, Any]) -> None:
    """Without K_SINK a replay is refused with a 409 problem."""
    async with suite_client(**store) as client:
        await dead_letter(client)
        [item] = (await client.get("/api/v1/deadletters")).json()["items"]
        response = await client.post(f"/api/v1/deadletters/{item['id']}/replay")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/no-sink")


async def test_delete_removes_a_letter(store: dict[str, Any]) -> None:
    """DELETE answers 204; the letter is gone (404) and the list is empty."""
    async with suite_client(**store) as client:
        await dead_letter(client)
        [item] = (await client.get("/api/v1/deadletters")).json()["items"]
        deleted = await client.delete(f"/api/v1/deadletters/{item['id']}")
        gone = await client.get(f"/api/v1/deadletters/{item['id']}")
        again = await client.delete(f"/api/v1/deadletters/{item['id']}")
        items = (await client.get("/api/v1/deadletters")).json()["items"]
    assert deleted.status_code == 204
    assert gone.status_code == again.status_code == 404
    assert items == []


async def test_a_malformed_dead_letter_is_400(tmp_path: Path) -> None:
    """What is not a CloudEvent is refused like on the ingress (and nothing is stored)."""
    async with suite_client(data_dir=tmp_path) as client:
        response = await client.post("/deadletter", content=b"nope")
        items = (await client.get("/api/v1/deadletters")).json()["items"]
    assert response.status_code == 400
    assert items == []


async def test_only_post_is_allowed_on_the_sink(tmp_path: Path) -> None:
    """GET /deadletter is 405 with Allow: POST."""
    async with suite_client(data_dir=tmp_path) as client:
        response = await client.get("/deadletter")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_the_sink_authenticates_deliveries_like_the_ingress(tmp_path: Path) -> None:
    """With OIDC on, a dead letter without a valid token is 401 and nothing is stored."""
    with Issuer().serving() as issuer:
        settings = {"oidc_audience": AUDIENCE, "oidc_issuer": issuer.url, "data_dir": tmp_path}
        async with suite_client(**settings) as client:
            refused = await dead_letter(client)
            headers = {
                **binary_headers(**knative_errors()),
                "authorization": f"Bearer {issuer.token()}",
            }
            accepted = await client.post(
                "/deadletter", headers=headers, content=support.dumps(query())
            )
    assert refused.status_code == 401
    assert accepted.status_code == 202


async def test_error_data_that_is_not_base64_is_kept_as_given(tmp_path: Path) -> None:
    """A knativeerrordata that is not base64 is shown verbatim rather than dropped."""
    async with suite_client(data_dir=tmp_path) as client:
        await dead_letter(client, **{**knative_errors(), "knativeerrordata": "not base64!"})
        [item] = (await client.get("/api/v1/deadletters")).json()["items"]
    assert item["error"]["data"] == "not base64!"


async def test_reading_an_empty_inbox_creates_no_file(tmp_path: Path) -> None:
    """Listing, showing and deleting before any dead letter arrived leave DATA_DIR untouched."""
    async with suite_client(data_dir=tmp_path) as client:
        listed = await client.get("/api/v1/deadletters")
        missing = await client.get("/api/v1/deadletters/nope")
        deleted = await client.delete("/api/v1/deadletters/nope")
    assert listed.json() == {"items": [], "next": None}
    assert missing.status_code == deleted.status_code == 404
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


def test_error_data_cut_by_knative_at_1024_chars_still_decodes() -> None:
    """A base64 body truncated mid-quantum decodes up to the cut instead of being lost."""
    body = "x" * 2000
    cut = base64.b64encode(body.encode()).decode()[:1023]
    decoded = decode_error_data(cut)
    assert decoded is not None
    assert body.startswith(decoded)
    assert len(decoded) == 765


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
