"""The event catalogue and the handler registry: one names the types, the other their handlers."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel, ConfigDict

from eventfn.app import create_app
from eventfn.dispatch.registry import Registry
from handler.functions import handle_query
from handler.functions import registry as default_registry
from schemas import (
    CATALOGUE,
    QUERY_REQUEST,
    QUERY_RESPONSE,
    Catalogue,
    EventSpec,
    QueryRequest,
    QueryResponse,
)
from tests.support import (
    RESPONSE,
    STRUCTURED,
    binary_headers,
    client_for,
    dumps,
    event_json,
    test_settings,
)

# -------------------------------------------------------------------------------------------
# Catalogue
# -------------------------------------------------------------------------------------------


def test_catalogue_names_the_query_types() -> None:
    """The default catalogue has the request and its reply, and consumes only the request."""
    assert set(CATALOGUE) == {"com.example.query.request", "com.example.query.response"}
    assert CATALOGUE.consumed == (QUERY_REQUEST,)
    assert CATALOGUE.produced == (QUERY_RESPONSE,)
    assert CATALOGUE["com.example.query.request"].model is QueryRequest
    assert QUERY_REQUEST.reply is QUERY_RESPONSE
    assert QUERY_RESPONSE.model is QueryResponse
    assert len(CATALOGUE) == 2


def test_event_spec_slug_is_file_friendly() -> None:
    """A type's slug replaces dots with dashes."""
    assert QUERY_REQUEST.slug == "com-example-query-request"


def test_event_spec_json_schema_is_titled_by_type() -> None:
    """The JSON Schema of a type is draft 2020-12, titled and described by the type."""
    schema = QUERY_REQUEST.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == QUERY_REQUEST.type
    assert schema["description"] == QUERY_REQUEST.description
    assert schema["required"] == ["query"]


def test_catalogue_rejects_a_type_defined_twice() -> None:
    """Two different specs cannot share a type name."""
    clash = EventSpec(type=QUERY_RESPONSE.type, model=QueryRequest, description="clash")
    with pytest.raises(ValueError, match="defined twice"):
        Catalogue((QUERY_REQUEST, EventSpec("x.request", QueryRequest, "x", reply=clash)))


def test_catalogue_allows_a_shared_reply_type() -> None:
    """Two consumed types may reply with the same spec; it is produced once."""
    other = EventSpec("com.example.other", QueryRequest, "other", reply=QUERY_RESPONSE)
    catalogue = Catalogue((QUERY_REQUEST, other))
    assert catalogue.produced == (QUERY_RESPONSE,)
    assert len(catalogue.consumed) == 2


# -------------------------------------------------------------------------------------------
# Registry
# -------------------------------------------------------------------------------------------


def test_default_registry_routes_the_query_type_to_handle_query() -> None:
    """The default registry maps the query request to the seed's handler."""
    routes = default_registry.routes(CATALOGUE)
    assert set(routes) == {QUERY_REQUEST.type}
    assert routes[QUERY_REQUEST.type].handler is handle_query
    assert routes[QUERY_REQUEST.type].reply is QUERY_RESPONSE


async def test_seed_handler_answers_processed_query() -> None:
    """The seed's business logic: result.message is 'Processed query: <query>'."""
    reply = await handle_query(QueryRequest(query="What is Knative?"))
    assert reply.result == {"message": "Processed query: What is Knative?"}


def test_registering_a_type_twice_fails() -> None:
    """Each type has exactly one handler."""
    registry = Registry()
    registry.handles(QUERY_REQUEST)(handle_query)
    with pytest.raises(ValueError, match="already has a handler"):
        registry.handles(QUERY_REQUEST)(handle_query)


def test_consumed_type_without_handler_fails_at_create_app() -> None:
    """A catalogue type with no handler fails fast when the app is built, not in production."""
    with pytest.raises(LookupError, match="has no registered handler"):
        create_app(test_settings(), registry=Registry())


def test_handler_for_a_type_outside_the_catalogue_fails_at_create_app() -> None:
    """A handler registered for a type the catalogue lacks is a mistake caught at start-up."""
    registry = Registry()
    registry.handles(QUERY_REQUEST)(handle_query)
    stray = EventSpec("com.example.stray", QueryRequest, "stray", reply=QUERY_RESPONSE)
    registry.handles(stray)(handle_query)
    with pytest.raises(LookupError, match="not in the catalogue"):
        create_app(test_settings(), registry=registry)


# -------------------------------------------------------------------------------------------
# A second event type is a model, a spec and a handler
# -------------------------------------------------------------------------------------------


class Greeting(BaseModel):
    """The payload of the second type."""

    model_config = ConfigDict(extra="forbid")
    name: str


class Greeted(BaseModel):
    """Its reply payload."""

    text: str


GREETED = EventSpec("com.example.greeted", Greeted, "A greeting answered.")
GREETING = EventSpec("com.example.greeting", Greeting, "Someone to greet.", reply=GREETED)


async def test_a_second_event_type_is_a_few_lines() -> None:
    """A new model, spec and handler, registered beside the query, is served by the ingress."""
    catalogue = Catalogue((QUERY_REQUEST, GREETING))
    registry = Registry()
    registry.handles(QUERY_REQUEST)(handle_query)

    @registry.handles(GREETING)
    async def greet(request: Greeting) -> Greeted:
        return Greeted(text=f"Hello, {request.name}!")

    app = create_app(test_settings(), registry=registry, catalogue=catalogue)
    async with client_for(app) as client:
        greeting = await client.post(
            "/", headers=binary_headers(type=GREETING.type), content=dumps({"name": "Ada"})
        )
        bad = await client.post(
            "/",
            headers={"content-type": STRUCTURED},
            content=dumps(event_json({"nom": "Ada"}, type=GREETING.type)),
        )
        unknown = await client.post(
            "/", headers=binary_headers(type="com.example.nope"), content=dumps({})
        )
        still_query = await client.post(
            "/", headers=binary_headers(), content=dumps({"query": "q"})
        )
        schemas = await client.get("/api/v1/schemas")
    assert greeting.status_code == 200
    assert greeting.headers["ce-type"] == GREETED.type
    assert greeting.json() == {"text": "Hello, Ada!"}
    assert bad.status_code == 400
    assert {e["loc"][-1] for e in bad.json()["errors"]} == {"name", "nom"}
    assert unknown.json()["accepted_types"] == sorted([QUERY_REQUEST.type, GREETING.type])
    assert still_query.headers["ce-type"] == RESPONSE
    listed = {t["type"] for t in orjson.loads(schemas.content)["types"]}
    assert listed == {QUERY_REQUEST.type, QUERY_RESPONSE.type, GREETING.type, GREETED.type}


def test_a_produced_only_type_is_catalogued_but_not_consumed() -> None:
    """A spec without a reply type (e.g. a published event) is produced, never routed."""
    published = EventSpec("com.example.published", QueryResponse, "published")
    catalogue = Catalogue((QUERY_REQUEST, published))
    assert "com.example.published" in catalogue
    assert catalogue.consumed == (QUERY_REQUEST,)
