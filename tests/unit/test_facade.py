"""The synchronous facade, its OpenAPI description, the schema endpoints and the health probes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from eventfn.dispatch.registry import Registry
from eventfn.testing import app_client
from tests.functions import ASK, ASK_CATALOGUE, Answer, Question
from tests.helpers.support import (
    PROBLEM,
    QUERY,
    RESPONSE,
    dumps,
    make_app,
    suite_settings,
)

RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z")


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert a problem+json response with `status`; return its body."""
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    assert "Traceback" not in response.text
    return body


# -------------------------------------------------------------------------------------------
# POST /api/v1/query
# -------------------------------------------------------------------------------------------


async def test_query_returns_a_query_response(client: httpx.AsyncClient) -> None:
    """A valid Question gets 200 and the Answer of the same handler as the ingress."""
    response = await client.post("/api/v1/query", json={"query": "What is Knative?"})
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == {"message": "Processed query: What is Knative?"}
    assert RFC3339_UTC.fullmatch(body["metadata"]["timestamp"])
    Answer.model_validate(body)


async def test_query_accepts_parameters(client: httpx.AsyncClient) -> None:
    """parameters is an optional object."""
    response = await client.post("/api/v1/query", json={"query": "q", "parameters": {"k": 1}})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("payload", "loc", "error_type"),
    [
        ({"query": ""}, ["body", "query"], "string_too_short"),
        ({}, ["body", "query"], "missing"),
        ({"query": "q", "extra": 1}, ["body", "extra"], "extra_forbidden"),
        ({"query": 1}, ["body", "query"], "string_type"),
    ],
    ids=["empty-query", "missing-query", "extra-field", "wrong-type"],
)
async def test_invalid_query_is_400_listing_field_errors(
    client: httpx.AsyncClient, payload: dict[str, Any], loc: list[str], error_type: str
) -> None:
    """Field errors come back as a 400 problem with loc, msg and type for each."""
    body = problem_of(await client.post("/api/v1/query", json=payload), 400)
    assert body["type"].endswith("/schema-violation")
    assert {"loc": loc, "type": error_type} in [
        {"loc": e["loc"], "type": e["type"]} for e in body["errors"]
    ]


@pytest.mark.parametrize("content", [b"{not json", b"", b"[]", b"null"])
async def test_query_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, content: bytes
) -> None:
    """A body that is not a JSON object is a 400 problem, not a 422 or a 500."""
    response = await client.post(
        "/api/v1/query", content=content, headers={"content-type": "application/json"}
    )
    problem_of(response, 400)


async def test_query_handler_returning_none_is_204() -> None:
    """A handler with nothing to say answers 204 on the facade."""
    registry = Registry(ASK_CATALOGUE)

    @registry.handles(ASK)
    async def silent(_: Question) -> None:
        return None

    async with app_client(make_app(suite_settings(), registry=registry)) as client:
        response = await client.post("/api/v1/query", json={"query": "q"})
    assert response.status_code == 204
    assert response.content == b""


async def test_query_handler_failure_is_a_500_problem() -> None:
    """A crashing handler is a problem+json 500 without internals."""
    registry = Registry(ASK_CATALOGUE)

    @registry.handles(ASK)
    async def crash(_: Question) -> Answer:
        raise RuntimeError("secret internals")

    async with app_client(make_app(suite_settings(), registry=registry)) as client:
        response = await client.post("/api/v1/query", json={"query": "q"})
    body = problem_of(response, 500)
    assert "secret" not in response.text
    assert body["type"].endswith("/handler-failed")


async def test_query_handler_timeout_is_504() -> None:
    """A handler over its budget is a 504 problem on the facade too."""
    import asyncio

    registry = Registry(ASK_CATALOGUE)

    @registry.handles(ASK)
    async def slow(_: Question) -> Answer:
        await asyncio.Event().wait()  # never set: held until the budget cancels it
        return Answer(result={})

    settings = suite_settings(handler_timeout_seconds=0.05)
    async with app_client(make_app(settings, registry=registry)) as client:
        response = await client.post("/api/v1/query", json={"query": "q"})
    problem_of(response, 504)


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    """Unknown paths are problem+json 404s."""
    body = problem_of(await client.get("/nowhere"), 404)
    assert body["type"].endswith("/not-found")


async def test_wrong_method_on_the_facade_is_a_405_problem(client: httpx.AsyncClient) -> None:
    """GET on /api/v1/query is a problem+json 405."""
    problem_of(await client.get("/api/v1/query"), 405)


# -------------------------------------------------------------------------------------------
# OpenAPI and docs
# -------------------------------------------------------------------------------------------


async def test_openapi_documents_the_query_with_examples_and_problems(
    client: httpx.AsyncClient,
) -> None:
    """/openapi.json shows /api/v1/query with request/response examples and problem responses."""
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/v1/query"]["post"]
    schemas = spec["components"]["schemas"]
    request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request_schema = schemas[request_ref.rsplit("/", 1)[1]]
    assert request_schema["examples"][0]["query"]
    ok_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert schemas[ok_ref.rsplit("/", 1)[1]]["examples"][0]["result"]
    for status in ("400", "413", "415", "503", "504"):
        assert PROBLEM in operation["responses"][status]["content"], status
    assert operation["summary"]
    assert operation["description"]


async def test_docs_are_served(client: httpx.AsyncClient) -> None:
    """/docs serves the Swagger UI page for the OpenAPI document."""
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/openapi.json" in response.text


# -------------------------------------------------------------------------------------------
# Schemas
# -------------------------------------------------------------------------------------------


async def test_schemas_lists_every_type_with_direction_and_link(client: httpx.AsyncClient) -> None:
    """/api/v1/schemas lists the consumed and produced types with their schema URLs."""
    types = {t["type"]: t for t in (await client.get("/api/v1/schemas")).json()["types"]}
    assert types[QUERY]["direction"] == "consumed"
    assert types[QUERY]["reply"] == RESPONSE
    assert types[RESPONSE]["direction"] == "produced"
    assert types[RESPONSE]["reply"] is None
    assert types[QUERY]["schema"].endswith(f"/api/v1/schemas/{QUERY}")


@pytest.mark.parametrize(("event_type", "model"), [(QUERY, Question), (RESPONSE, Answer)])
async def test_schema_of_a_type_is_its_json_schema(
    client: httpx.AsyncClient, event_type: str, model: type[BaseModel]
) -> None:
    """/api/v1/schemas/{type} is the payload's JSON Schema, titled by the type."""
    response = await client.get(f"/api/v1/schemas/{event_type}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/schema+json"
    schema = response.json()
    assert schema["title"] == event_type
    assert set(schema["properties"]) == set(model.model_fields)


async def test_schema_of_an_unknown_type_is_a_404_problem(client: httpx.AsyncClient) -> None:
    """An unknown type has no schema: 404 problem+json naming it."""
    body = problem_of(await client.get("/api/v1/schemas/com.example.nope"), 404)
    assert "com.example.nope" in body["detail"]


# -------------------------------------------------------------------------------------------
# Health
# -------------------------------------------------------------------------------------------


async def test_liveness_is_200(client: httpx.AsyncClient) -> None:
    """The process is alive while it answers."""
    response = await client.get("/health/liveness")
    assert response.status_code == 200


async def test_readiness_follows_the_lifespan() -> None:
    """Readiness is 503 before start-up, 200 while serving and 503 again after shutdown."""
    app = make_app(suite_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://function") as raw:
        before = await raw.get("/health/readiness")
        async with app_client(app) as client:
            during = await client.get("/health/readiness")
            live = await client.get("/health/liveness")
        after = await raw.get("/health/readiness")
    assert (before.status_code, before.json()["status"]) == (503, "starting")
    assert (during.status_code, during.json()["status"]) == (200, "ready")
    assert live.status_code == 200
    assert (after.status_code, after.json()["status"]) == (503, "draining")


async def test_default_client_body_is_dumps_compatible() -> None:
    """The test helpers' dumps produces the bytes the facade accepts."""
    async with app_client(make_app(suite_settings())) as client:
        response = await client.post(
            "/api/v1/query",
            content=dumps({"query": "q"}),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None])
async def test_a_query_that_is_not_json_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    """A body sent as anything but JSON is a 415 problem, not a schema error."""
    headers = {} if content_type is None else {"content-type": content_type}
    response = await client.post("/api/v1/query", content=b"hello", headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_query_body_over_the_limit_is_413_before_it_is_read() -> None:
    """A declared Content-Length over MAX_BODY_BYTES is refused with a 413 problem."""
    async with app_client(make_app(suite_settings(max_body_bytes=1024))) as client:
        body = dumps({"query": "x" * 4000})
        response = await client.post(
            "/api/v1/query", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")


async def test_a_streamed_query_body_over_the_limit_is_413() -> None:
    """A chunked body (no Content-Length) is cut off at the limit with a 413 problem."""

    async def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 500

    async with app_client(make_app(suite_settings(max_body_bytes=1024))) as client:
        response = await client.post(
            "/api/v1/query", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


# -------------------------------------------------------------------------------------------
# Behind a proxy (Knative's queue-proxy, an ingress terminating TLS)
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "scheme"),
    [("127.0.0.1", "https"), ("10.0.0.1", "http")],
    ids=["trusted-peer", "untrusted-peer"],
)
async def test_the_facade_takes_the_scheme_a_trusted_proxy_forwards(
    trusted: str, scheme: str
) -> None:
    """FORWARDED_ALLOW_IPS: X-Forwarded-Proto from a trusted peer shapes the facade's URLs
    (here a trailing-slash redirect); from anyone else it is ignored. The in-process client
    connects from 127.0.0.1."""
    async with app_client(make_app(suite_settings(forwarded_allow_ips=trusted))) as client:
        response = await client.get("/api/v1/schemas/", headers={"x-forwarded-proto": "https"})
    assert response.status_code == 307
    assert response.headers["location"] == f"{scheme}://function/api/v1/schemas"
