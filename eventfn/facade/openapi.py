"""What the facade's OpenAPI document says of errors: every one a problem+json, 400 not 422."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from eventfn.core.errors import PROBLEM_JSON, PROBLEM_SCHEMA
from eventfn.runtime import Runtime

PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem+json errors."""
    descriptions = {
        400: "Malformed request or payload that fails its schema (field errors listed)",
        401: "Missing or invalid credentials",
        403: "Credentials valid but not allowed",
        404: "Not found",
        409: "Conflict with the function's state (e.g. no K_SINK to replay to)",
        413: "Body too large",
        415: "Unsupported media type",
        422: "The handler rejected the request (`Reject`); do not retry it as it is",
        429: "The handler asked for a retry later (`Retry`); see Retry-After",
        500: "The handler failed (no details are disclosed); retry",
        503: "Temporarily unavailable; retry",
        504: "The handler timed out; retry",
    }
    return {code: {"description": descriptions[code], **PROBLEM} for code in codes}


def document_400_not_422(app: Any) -> None:
    """Make the OpenAPI say what the app does: invalid requests are 400 problem+json, not 422.

    FastAPI documents a 422 for every route with parameters; our error mapping answers 400.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema: dict[str, Any] = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None:
                        responses.setdefault("400", problems(400)[400])
            app.openapi_schema = schema
        result: dict[str, Any] = app.openapi_schema
        return result

    app.openapi = openapi


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
