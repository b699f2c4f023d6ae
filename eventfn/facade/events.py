"""The synchronous routes of the consumed types: the same catalogue, validation and handler as
the CloudEvents ingress, with plain JSON in and out (what the Streamlit UI calls).

Every consumed type of the catalogue gets its route: `POST /api/v1/<name>` for a type with a short
name (`/api/v1/order`), `POST /api/v1/events/<type>` otherwise.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from eventfn.dispatch.catalogue import Catalogue, EventSpec
from eventfn.facade.openapi import problems, runtime_of


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
