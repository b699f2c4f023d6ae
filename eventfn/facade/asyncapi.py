"""The AsyncAPI 3.0 document of the WebSocket, generated from the catalogue's Pydantic models.

OpenAPI cannot describe a WebSocket, so `/api/v1/asyncapi.json` does: the same schemas the
ingress validates with, so the document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from eventfn.core.errors import PROBLEM_SCHEMA
from eventfn.dispatch.catalogue import Catalogue, EventSpec

router = APIRouter(prefix="/api/v1", tags=["websocket"])

_PROBLEM = PROBLEM_SCHEMA
_ID = {"type": "string", "minLength": 1, "maxLength": 200, "description": "Chosen by the client."}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def _const(value: str) -> dict[str, Any]:
    return {"const": value}


def _ask(spec: EventSpec, default: bool) -> dict[str, Any]:
    """The message asking for `spec` to be handled: its payload's fields, an `id` and a `type`."""
    payload = spec.json_schema()
    kind = _const(spec.message_type)
    payload["properties"] = {"id": _ID, "type": kind, **payload["properties"]}
    payload["required"] = ["id", *([] if default else ["type"]), *payload.get("required", [])]
    payload.pop("additionalProperties", None)
    optional = " (`type` is optional: this is the default)" if default else ""
    return {
        "send": True,
        "summary": f"Ask for {spec.type} to be handled{optional}.",
        "payload": payload,
    }


def messages(catalogue: Catalogue) -> dict[str, dict[str, Any]]:
    """Every message of the protocol: name -> (direction, summary, JSON Schema)."""
    asks = {spec.message_type: _ask(spec, spec is catalogue.default) for spec in catalogue.consumed}
    replies = [s.reply.json_schema() for s in catalogue.consumed if s.reply is not None]
    result = {"oneOf": [*replies, {"type": "null"}]}
    types = {"type": "array", "items": {"enum": sorted(catalogue)}}
    event = {"type": "object", "description": "A structured-mode CloudEvent (JSON format)."}
    id_or_null = {"type": ["string", "null"]}
    return {
        **asks,
        "subscribe": {
            "send": True,
            "summary": "Receive the live feed of these event types (empty: all).",
            "payload": _object({"type": _const("subscribe"), "types": types}, ["type"]),
        },
        "unsubscribe": {
            "send": True,
            "summary": "Stop receiving the live feed.",
            "payload": _object({"type": _const("unsubscribe")}, ["type"]),
        },
        "ping": {
            "send": True,
            "summary": "Application-level heartbeat; answered by pong.",
            "payload": _object({"type": _const("ping"), "id": id_or_null}, ["type"]),
        },
        "progress": {
            "summary": "Progress or a partial result of the query `id` (zero or more).",
            "payload": _object({"id": _ID, "type": _const("progress"), "data": {}}, ["id", "type"]),
        },
        "result": {
            "summary": "The answer to the query `id` (null: nothing to say); ends it.",
            "payload": _object(
                {"id": _ID, "type": _const("result"), "data": result}, ["id", "type", "data"]
            ),
        },
        "error": {
            "summary": "A query failed or a message was refused (`id` null when unknown).",
            "payload": _object(
                {"id": id_or_null, "type": _const("error"), "error": _PROBLEM},
                ["id", "type", "error"],
            ),
        },
        "subscribed": {
            "summary": "The subscription is active.",
            "payload": _object({"type": _const("subscribed"), "types": types}, ["type", "types"]),
        },
        "unsubscribed": {
            "summary": "The subscription ended (`asked`, or `slow consumer` when dropped).",
            "payload": _object(
                {"type": _const("unsubscribed"), "reason": {"type": "string"}}, ["type", "reason"]
            ),
        },
        "event": {
            "summary": "An event this function handled or produced, from any replica.",
            "payload": _object({"type": _const("event"), "event": event}, ["type", "event"]),
        },
        "pong": {
            "summary": "The answer to ping.",
            "payload": _object({"type": _const("pong"), "id": id_or_null}, ["type"]),
        },
    }


def document(catalogue: Catalogue, server_url: str) -> dict[str, Any]:
    """The AsyncAPI document of `/api/v1/ws`."""
    defined = messages(catalogue)
    refs = {name: {"$ref": f"#/channels/ws/messages/{name}"} for name in defined}
    sent = [refs[name] for name, m in defined.items() if m.get("send")]
    received = [refs[name] for name, m in defined.items() if not m.get("send")]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "knative-python-backend WebSocket",
            "version": "0.1.0",
            "description": "Streamed queries and the live event feed; JSON text messages.",
        },
        "servers": {"function": {"host": server_url, "protocol": "ws"}},
        "channels": {
            "ws": {
                "address": "/api/v1/ws",
                "messages": {
                    name: {"name": name, "summary": m["summary"], "payload": m["payload"]}
                    for name, m in defined.items()
                },
            }
        },
        "operations": {
            "sendToFunction": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ws"},
                "messages": sent,
            },
            "receiveFromFunction": {
                "action": "send",
                "channel": {"$ref": "#/channels/ws"},
                "messages": received,
            },
        },
    }


@router.get("/asyncapi.json", summary="AsyncAPI document of the WebSocket")
async def asyncapi(request: Request) -> JSONResponse:
    """The WebSocket protocol (`/api/v1/ws`) as AsyncAPI 3.0, schemas from the catalogue."""
    catalogue: Catalogue = request.app.state.runtime.catalogue
    return JSONResponse(document(catalogue, request.url.netloc))
