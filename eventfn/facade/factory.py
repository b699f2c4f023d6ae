"""The facade: the FastAPI app behind `/api/v1`, the WebSocket, OpenAPI and the docs.

Built by `FunctionApp` on the first request that needs it (see `eventfn.app`), so this is the
only place the function imports FastAPI. Error mapping: every `FunctionError` becomes its
problem+json; FastAPI's own validation errors become 400 (or 415 for a body that is not JSON)
and its HTTP errors the problem of the same status.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from eventfn.binding import is_json
from eventfn.core.errors import (
    ClientError,
    FunctionError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SchemaViolation,
    UnsupportedMediaType,
    problem_response,
)
from eventfn.facade import asyncapi, deadletters, events, openapi, schemas, security, status
from eventfn.facade.guards import facade_dependency
from eventfn.facade.ws import endpoint as ws
from eventfn.ingress import probes as health
from eventfn.observability.logs import get_logger
from eventfn.observability.tracing import telemetry_config

if TYPE_CHECKING:
    from eventfn.runtime import Runtime

log = get_logger("eventfn.facade.factory")

DESCRIPTION = """
A CloudEvents-driven Knative Eventing function.

* **`POST /`** is the CloudEvents ingress the Knative Broker delivers to (binary, structured and
  batched content modes, spec versions 1.0 and 0.3). It answers `200` with the reply event in the
  mode of the request, `202` when there is nothing to say, `4xx` problem+json for events that must
  not be retried, `409`/`5xx` for those the broker should retry.
* **`/api/v1/...`** is the synchronous facade for the Streamlit UI.
* **`WS /api/v1/ws`** streams queries (progress, then one result or error per query `id`) and
  the live event feed (`{"type": "subscribe", "types": [...]}`); JSON text messages, described
  as AsyncAPI 3.0 at [`/api/v1/asyncapi.json`](/api/v1/asyncapi.json).
"""


def _error_response(request: Request, error: FunctionError) -> Response:
    status, headers, body = problem_response(error, instance=request.url.path)
    return Response(
        content=body,
        status_code=status,
        headers={k.decode(): v.decode() for k, v in headers if k != b"content-length"},
    )


async def _function_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FunctionError)  # noqa: S101 - registered for FunctionError only
    return _error_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    content_type = request.headers.get("content-type")
    about_body = any(e.get("loc", ("",))[0] == "body" for e in exc.errors())
    if about_body and (content_type is None or not is_json(content_type)):
        # FastAPI reports a body it would not parse as a validation error; it is a media type one.
        unsupported = UnsupportedMediaType(
            f"this endpoint reads application/json, not {content_type}"
        )
        return _error_response(request, unsupported)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return _error_response(
        request, SchemaViolation("the request does not match its schema", errors)
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    error: FunctionError
    if isinstance(exc.__cause__, FunctionError):
        # FastAPI wraps what reading the body raised (our PayloadTooLarge) in a plain 400.
        error = exc.__cause__
    elif exc.status_code == 404:
        error = NotFound(f"no route for {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    elif exc.status_code == 413:
        error = PayloadTooLarge(f"the body exceeds {request.app.body_limit} bytes")
    else:
        # A 4xx from FastAPI (e.g. an unparsable body) is the client's error, not an internal one.
        error = (ClientError if exc.status_code < 500 else FunctionError)(str(exc.detail))
        error.status_code = exc.status_code
        error.title = HTTPStatus(exc.status_code).phrase  # type: ignore[misc]
    response = _error_response(request, error)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A bug of ours: a 500 in problem+json like every other error, and nothing of its internals
    (Starlette would answer text/plain; the exception goes to the log, not to the client)."""
    log.error("facade_bug", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return _error_response(request, FunctionError("the function failed unexpectedly; retry"))


def _health_routes() -> APIRouter:
    """The probes as routes, for the OpenAPI document (the ASGI entry answers them first)."""
    router = APIRouter(tags=["health"])

    @router.get(health.LIVENESS, summary="Liveness probe")
    async def liveness() -> JSONResponse:
        """200 while the process serves requests at all."""
        status, body = health.liveness()
        return JSONResponse(body, status_code=status)

    @router.get(
        health.READINESS,
        summary="Readiness probe",
        responses={503: {"description": "Starting up or shutting down"}},
    )
    async def readiness(request: Request) -> JSONResponse:
        """200 once start-up is done; 503 before that and again while shutting down."""
        status, body = health.readiness(request.app.state.runtime)
        return JSONResponse(body, status_code=status)

    return router


def build_facade(runtime: Runtime) -> tuple[FastAPI, list[Any]]:
    """The FastAPI app of everything but the fast paths (its lifespan is the function's), and
    what it brings to the runtime: (component, sample, on_drain) to attach."""
    settings = runtime.settings
    app = FastAPI(
        title="knative-python-backend",
        version="0.1.0",
        description=DESCRIPTION,
        redoc_url=None,
        # FastAPI's native OpenTelemetry: OTLP export of the facade's spans when configured.
        telemetry=telemetry_config(settings.otel_exporter_otlp_endpoint),  # type: ignore[arg-type]
    )
    app.state.runtime = runtime
    app.body_limit = settings.max_body_bytes  # type: ignore[attr-defined]
    app.add_exception_handler(FunctionError, _function_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(_health_routes())
    # Every /api/v1 router is included with `**api`: behind API keys / OIDC when either is set.
    api: dict[str, Any] = {}
    if runtime.facade_auth is not None:
        api = {
            "dependencies": [Depends(facade_dependency(runtime.facade_auth))],
            "responses": openapi.problems(401, 403, 503),
        }
    app.include_router(schemas.router, **api)
    events.add_routes(app, runtime.catalogue, **api)
    app.include_router(deadletters.router, **api)
    app.include_router(status.router, **api)
    # API descriptions are documentation, open like /openapi.json.
    app.include_router(asyncapi.router)
    sessions = ws.install(app, runtime)
    security.install(app, settings)
    openapi.document_400_not_422(app)
    return app, [(sessions, sessions.sample, sessions.drain)]
