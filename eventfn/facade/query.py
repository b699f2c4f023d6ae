"""The synchronous HTTP facade the Streamlit UI calls: the same catalogue, validation and handler
as the CloudEvents ingress, with plain JSON in and out.

Every consumed type of the catalogue gets its route: `POST /api/v1/<name>` for a type with a short
name (`/api/v1/query`), `POST /api/v1/events/<type>` otherwise.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from eventfn.core.errors import PROBLEM_JSON, PROBLEM_SCHEMA, NotFound
from eventfn.dispatch.catalogue import Catalogue, EventSpec
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


router = APIRouter(prefix="/api/v1", tags=["facade"])


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _ask(spec: EventSpec) -> Callable[..., Awaitable[Any]]:
    """The route function of one consumed type: its body is typed by the type's own model.

    Written per type (not one route with a path parameter) so that OpenAPI shows every type's
    request and reply schemas and examples, and FastAPI validates the body with that model.
    """

    async def ask(body: BaseModel, request: Request) -> Any:
        runtime = runtime_of(request)
        dispatcher = runtime.dispatcher
        route = dispatcher.route(spec.type)
        request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
        result = await dispatcher.ask(route, body, request_id=request_id, origin=spec.facade_path)
        if result is None:
            return Response(status_code=204)
        if runtime.publisher is not None:
            # Event-driven consumers see UI traffic too; the answer waits on the outbox (an answer
            # given is an answer published, whatever happens next: 503 when it cannot be kept),
            # never on the sink.
            event = dispatcher.replies.answer(spec, result, request_id, spec.facade_path)
            await runtime.publisher.enqueue(event)
        return result

    # FastAPI reads the body's model from the signature: the type's model, set here.
    body = inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=spec.model)
    request = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
    )
    ask.__signature__ = inspect.Signature([body, request])  # type: ignore[attr-defined]
    ask.__name__ = f"ask_{spec.slug.replace('-', '_')}"
    return ask


def add_routes(app: Any, catalogue: Catalogue, **api: Any) -> None:
    """A synchronous `POST` route for every consumed type of `catalogue`, at its `facade_path`."""
    typed = APIRouter(tags=["facade"])
    for spec in catalogue.consumed:
        reply = spec.reply
        typed.add_api_route(
            spec.facade_path,
            _ask(spec),
            methods=["POST"],
            response_model=reply.model if reply is not None else None,
            status_code=200 if reply is not None else 204,
            summary=f"Handle {spec.type} synchronously",
            description=(
                f"{spec.description}\n\nRuns the handler of `{spec.type}` on the body "
                + (
                    f"and returns its answer: the data of the `{reply.type}` reply event."
                    if reply is not None
                    else "(fire-and-forget: 204, nothing to say)."
                )
            ),
            responses={
                204: {"description": "Handled; nothing to say"},
                **problems(400, 413, 415, 422, 429, 500, 503, 504),
            },
        )
    app.include_router(typed, **api)


@router.get("/schemas", summary="List the event types and their schemas")
async def list_schemas(request: Request) -> dict[str, Any]:
    """Every event type of the catalogue, whether the function consumes or produces it."""
    runtime = runtime_of(request)
    return {
        "types": [
            {
                "type": spec.type,
                "description": spec.description,
                "direction": "consumed" if spec.consumes else "produced",
                "reply": spec.reply.type if spec.reply else None,
                "schema": str(request.url_for("get_schema", event_type=spec.type)),
            }
            for spec in runtime.catalogue.values()
        ]
    }


@router.get(
    "/schemas/{event_type}",
    summary="JSON Schema of an event type's data",
    responses=problems(404),
)
async def get_schema(event_type: str, request: Request) -> JSONResponse:
    """The JSON Schema (draft 2020-12) of the data of `event_type`."""
    spec = runtime_of(request).catalogue.get(event_type)
    if spec is None:
        raise NotFound(f"no event type {event_type!r} in the catalogue")
    return JSONResponse(spec.json_schema(), media_type="application/schema+json")
