"""`GET /api/v1/schemas`: the event types of the catalogue and the JSON Schema of each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from eventfn.core.errors import NotFound
from eventfn.facade.openapi import problems, runtime_of

router = APIRouter(prefix="/api/v1", tags=["facade"])


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
