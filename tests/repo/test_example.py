"""The example the project ships (`schemas/query.py`, `handler/functions.py`): its catalogue, its
handler, what a query must look like and what its answer carries.

The only tests that import the example by name (`tests/repo/test_suite_function.py` keeps it
so): the rest of the suite serves its own function (`tests/functions`). A user who replaces or
removes the example replaces or removes these tests with it; until then, without it, they skip.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

try:
    from handler.functions import handle_query
    from handler.functions import registry as default_registry
    from schemas import (
        CATALOGUE,
        QUERY_REQUEST,
        QUERY_RESPONSE,
        QueryMetadata,
        QueryRequest,
        QueryResponse,
    )
    from schemas.query import MAX_PARAMETERS, MAX_PARAMETERS_DEPTH, MAX_QUERY_LENGTH
except ImportError as exc:  # the example replaced or removed: nothing here to test
    pytest.skip(
        f"the example query type is not in handler/ and schemas/: {exc}", allow_module_level=True
    )


# -------------------------------------------------------------------------------------------
# The catalogue and the handler
# -------------------------------------------------------------------------------------------


def test_the_function_catalogue_consumes_the_query_and_produces_its_answer() -> None:
    """The function's catalogue holds the query type and its reply (and may hold more)."""
    assert QUERY_REQUEST in CATALOGUE.consumed
    assert QUERY_RESPONSE in CATALOGUE.produced
    assert QUERY_REQUEST.reply is QUERY_RESPONSE
    assert CATALOGUE["com.example.query.request"].model is QueryRequest
    assert QUERY_RESPONSE.model is QueryResponse


def test_default_registry_routes_the_query_type_to_handle_query() -> None:
    """The function's registry is built on its catalogue and maps the query to its handler."""
    assert default_registry.catalogue is CATALOGUE
    routes = default_registry.routes()
    assert routes[QUERY_REQUEST.type].handler is handle_query
    assert routes[QUERY_REQUEST.type].reply is QUERY_RESPONSE


async def test_seed_handler_answers_processed_query() -> None:
    """The seed's business logic: result.message is 'Processed query: <query>'."""
    reply = await handle_query(QueryRequest(query="What is Knative?"))
    assert reply.result == {"message": "Processed query: What is Knative?"}


def test_the_query_type_is_served_at_api_v1_query() -> None:
    """Its facade name is `query`: /api/v1/query, and `query` messages on the WebSocket."""
    assert QUERY_REQUEST.facade_path == "/api/v1/query"
    assert QUERY_REQUEST.message_type == "query"


# -------------------------------------------------------------------------------------------
# The payload models
# -------------------------------------------------------------------------------------------


def test_query_request_accepts_a_query_and_optional_parameters() -> None:
    """query is required; parameters is an optional free-form object."""
    assert QueryRequest.model_validate({"query": "q"}).parameters is None
    request = QueryRequest.model_validate({"query": "q", "parameters": {"lang": "en", "n": 3}})
    assert request.parameters == {"lang": "en", "n": 3}


@pytest.mark.parametrize(
    ("payload", "error_type"),
    [
        ({}, "missing"),
        ({"query": ""}, "string_too_short"),
        ({"query": " \t\n"}, "string_pattern_mismatch"),
        ({"query": None}, "string_type"),
        ({"query": 1}, "string_type"),
        ({"query": "q", "parameters": "x"}, "dict_type"),
        ({"query": "q", "other": 1}, "extra_forbidden"),
        ({"query": "x" * (MAX_QUERY_LENGTH + 1)}, "string_too_long"),
        ({"query": "q", "parameters": {str(i): i for i in range(MAX_PARAMETERS + 1)}}, "too_long"),
    ],
    ids=[
        "missing",
        "empty",
        "blank",
        "null",
        "number",
        "params-not-object",
        "extra",
        "too-long",
        "too-many-params",
    ],
)
def test_query_request_rejects(payload: dict[str, Any], error_type: str) -> None:
    """Invalid queries fail with the named pydantic error type."""
    with pytest.raises(ValidationError) as info:
        QueryRequest.model_validate(payload)
    assert error_type in {e["type"] for e in info.value.errors()}


def test_query_request_keeps_whitespace_around_the_query() -> None:
    """The query is passed on as written."""
    assert QueryRequest.model_validate({"query": "  hi "}).query == "  hi "


def test_query_request_validates_json_bytes() -> None:
    """model_validate_json is what the ingress uses on binary bodies."""
    assert QueryRequest.model_validate_json(b'{"query":"q"}').query == "q"
    with pytest.raises(ValidationError):
        QueryRequest.model_validate_json(b'{"query":')


def test_query_response_metadata_timestamp_defaults_to_now_in_utc() -> None:
    """metadata.timestamp is a real UTC time, filled in when the answer is made."""
    response = QueryResponse(result={"message": "m"})
    assert response.metadata.timestamp.tzinfo is not None
    assert abs(datetime.now(UTC) - response.metadata.timestamp) < timedelta(seconds=5)


def test_query_response_serializes_timestamp_as_rfc3339_utc() -> None:
    """The timestamp is written as RFC 3339 in UTC with a Z, whatever zone it was made in."""
    made = datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    body = orjson.loads(
        QueryResponse(result={}, metadata=QueryMetadata(timestamp=made)).model_dump_json()
    )
    assert body["metadata"]["timestamp"] == "2026-01-02T03:04:05.123456Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["metadata"]["timestamp"])


def test_query_metadata_requires_an_aware_timestamp() -> None:
    """A naive timestamp is not a UTC instant and is rejected."""
    with pytest.raises(ValidationError):
        QueryMetadata(timestamp=datetime(2026, 1, 1))


def test_query_metadata_allows_extra_facts() -> None:
    """Handlers may add facts such as the model used to the metadata."""
    metadata = QueryMetadata.model_validate({"timestamp": "2026-01-01T00:00:00Z", "model": "m1"})
    assert metadata.model_dump()["model"] == "m1"


def test_query_response_rejects_unknown_fields() -> None:
    """The answer has result and metadata only."""
    with pytest.raises(ValidationError):
        QueryResponse.model_validate({"result": {}, "other": 1})


def test_examples_validate_against_their_models() -> None:
    """The OpenAPI examples are themselves valid payloads."""
    for model in (QueryRequest, QueryResponse):
        examples = model.model_json_schema()["examples"]
        assert examples
        for example in examples:
            model.model_validate(example)


def test_deeply_nested_parameters_are_rejected() -> None:
    """parameters may not nest deeper than MAX_PARAMETERS_DEPTH (the reply must serialize)."""
    deep: Any = "leaf"
    for _ in range(MAX_PARAMETERS_DEPTH + 2):
        deep = {"k": deep}
    with pytest.raises(ValidationError, match="nest deeper"):
        QueryRequest.model_validate({"query": "q", "parameters": deep})
    shallow = {"a": [{"b": 1}], "c": {}}
    assert QueryRequest.model_validate({"query": "q", "parameters": shallow}).parameters == shallow
