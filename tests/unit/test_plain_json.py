"""A plain JSON `POST /` is answered like the facade; anything that is or claims to be a CloudEvent
stays as strict as the binding is.

The rule: no `ce-` header and a JSON Content-Type other than the CloudEvents formats is not a
CloudEvent; it is the catalogue's default consumed type asked synchronously, exactly as its facade
route (`POST /api/v1/query`) would answer it: same validation, handler, problems and credentials.
"""

from __future__ import annotations

import httpx
import pytest

from eventfn import Catalogue, EventSpec, Registry
from eventfn.testing import app_client
from tests.functions import Question
from tests.helpers.support import (
    PROBLEM,
    STRUCTURED,
    binary_headers,
    make_app,
    query,
    suite_client,
    suite_settings,
)

PLAN = {"query": "test query", "parameters": {"param1": "value1"}}


async def test_the_plans_curl_gets_the_result_and_its_metadata(client: httpx.AsyncClient) -> None:
    """`curl -X POST / -H 'Content-Type: application/json' -d '{"query": ...}'` -> 200 + answer."""
    response = await client.post("/", json=PLAN)
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == {"message": "Processed query: test query"}
    assert body["metadata"]["timestamp"].endswith("Z")


async def test_plain_json_is_answered_as_the_facade_answers_it(client: httpx.AsyncClient) -> None:
    """The same body gives the same answer on / and on /api/v1/query (timestamps aside)."""
    root = (await client.post("/", json=PLAN)).json()
    facade = (await client.post("/api/v1/query", json=PLAN)).json()
    assert root["result"] == facade["result"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
async def test_every_json_media_type_without_ce_headers_is_plain_json(
    client: httpx.AsyncClient, content_type: str
) -> None:
    """A JSON Content-Type the facade reads, with no `ce-` header, is plain JSON."""
    response = await client.post(
        "/", content=b'{"query": "q"}', headers={"content-type": content_type}
    )
    assert response.status_code == 200


async def test_a_plain_json_schema_failure_is_the_facades_400(client: httpx.AsyncClient) -> None:
    """Validation is the facade's: 400 problem+json listing the field errors of the body."""
    root = await client.post("/", json={"query": ""})
    facade = await client.post("/api/v1/query", json={"query": ""})
    assert root.status_code == facade.status_code == 400
    assert root.headers["content-type"] == PROBLEM
    assert root.json()["errors"] == facade.json()["errors"]


async def test_plain_json_asks_for_the_facades_credentials() -> None:
    """With API_KEYS set, plain JSON needs a key like the facade: 401 without, 200 with."""
    async with suite_client(api_keys=["key-5f2c9a7e1b"]) as client:
        refused = await client.post("/", json=PLAN)
        allowed = await client.post("/", json=PLAN, headers={"x-api-key": "key-5f2c9a7e1b"})
    assert refused.status_code == 401
    assert "www-authenticate" in refused.headers
    assert allowed.status_code == 200


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    """The body limit holds for plain JSON too."""
    async with suite_client(max_body_bytes=1024) as small:
        response = await small.post("/", json={"query": "q" * 2000})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({**binary_headers(), "ce-id": ""}, b"{}", 400),  # a ce- header: a binary event, strict
        ({"content-type": "application/json", "ce-type": "x"}, b'{"query": "q"}', 400),
        ({"content-type": STRUCTURED}, b'{"query": "q"}', 400),  # the structured format, strict
        ({"content-type": "application/cloudevents-x+json"}, b"{}", 415),
        ({"content-type": "text/plain"}, b"What is Knative?", 400),  # not JSON: not an event
        ({}, b"", 400),
    ],
    ids=["ce-header", "one-ce-header", "structured", "unknown-ce-format", "text", "nothing"],
)
async def test_what_is_or_claims_to_be_a_cloudevent_stays_strict(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes, status: int
) -> None:
    """Any `ce-` header or a CloudEvents media type is held to the binding, never plain JSON."""
    response = await client.post("/", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM


async def test_a_get_on_root_is_still_405(client: httpx.AsyncClient) -> None:
    """Only POST is plain JSON; other methods on / are refused as before."""
    assert (await client.get("/", headers={"content-type": "application/json"})).status_code == 405


async def test_a_function_that_consumes_nothing_has_no_plain_json() -> None:
    """Without a consumed type there is no default to ask: plain JSON is not a CloudEvent (400)."""
    only = EventSpec("com.example.published", Question, "Published only.")
    app = make_app(suite_settings(), registry=Registry(Catalogue((only,))))
    async with app_client(app) as client:
        response = await client.post("/", json=query())
    assert response.status_code == 400
