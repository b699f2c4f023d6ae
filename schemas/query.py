"""Payloads of the query event types: what the broker and the UI send, what the function answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

# Bounds on what a caller controls: a query is text for a person to read, not a document upload.
MAX_QUERY_LENGTH = 10_000
MAX_PARAMETERS = 100
# JSON nesting inside `parameters`: pydantic cannot serialize past ~250 levels (a 500 on the
# dedupe fingerprint and every reply), and no real parameter needs more than a few.
MAX_PARAMETERS_DEPTH = 32


def _bounded_depth(value: Any) -> Any:
    """Reject containers nested deeper than MAX_PARAMETERS_DEPTH (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        children = list(item.values()) if isinstance(item, dict) else item
        if not isinstance(children, list) or not children:
            continue
        if depth >= MAX_PARAMETERS_DEPTH:
            raise ValueError(f"parameters nest deeper than {MAX_PARAMETERS_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)
    return value


class QueryRequest(BaseModel):
    """A question for the query handler."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=False,
        json_schema_extra={
            "examples": [{"query": "What is Knative?", "parameters": {"lang": "en"}}],
        },
    )

    query: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_QUERY_LENGTH,
            pattern=r"\S",
            description="The question; must contain at least one non-blank character.",
        ),
    ]
    parameters: Annotated[
        dict[str, Any] | None,
        Field(
            default=None,
            max_length=MAX_PARAMETERS,
            description="Optional free-form parameters handed to the query handler.",
        ),
        AfterValidator(_bounded_depth),  # after Field: its constraints stay on the dict schema
    ] = None


def _in_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class QueryMetadata(BaseModel):
    """Facts about how the answer was produced."""

    model_config = ConfigDict(extra="allow")

    # Kept in UTC (a given time is converted on validation), which pydantic's own serializer
    # writes as RFC 3339 with a `Z`: no Python serializer call per reply.
    timestamp: Annotated[AwareDatetime, AfterValidator(_in_utc)] = Field(
        default_factory=utc_now,
        description="When the answer was produced (RFC 3339, UTC).",
    )


class QueryResponse(BaseModel):
    """The answer to a `QueryRequest`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "result": {"message": "Processed query: What is Knative?"},
                    "metadata": {"timestamp": "2026-11-25T12:00:00.000000Z"},
                }
            ],
        },
    )

    result: dict[str, Any] = Field(description="What the query handler produced.")
    metadata: QueryMetadata = Field(default_factory=QueryMetadata)
