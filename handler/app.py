"""The app factory: `create_app(settings)` assembles the function; nothing happens at import."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from handler import asyncapi, deadletter, facade, health, security, ws
from handler.auth import facade_dependency
from handler.binding import is_json
from handler.config import Settings
from handler.errors import (
    ClientError,
    FunctionError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    SchemaViolation,
    UnsupportedMediaType,
    problem_response,
)
from handler.ingress import Ingress, declared_length, send_response
from handler.logs import configure_logging
from handler.metrics import MetricsEndpoint, sampler
from handler.registry import Registry
from handler.runtime import Runtime
from handler.security import HeaderLimits
from handler.tracing import telemetry_config
from schemas import CATALOGUE, Catalogue

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
        error.status_code = exc.status_code  # type: ignore[misc]
        error.title = HTTPStatus(exc.status_code).phrase  # type: ignore[misc]
    response = _error_response(request, error)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


class FunctionApp(FastAPI):
    """FastAPI, with the CloudEvents ingress served ahead of the middleware stack.

    `POST /` is the hot path: one replica should do the work of three. Starlette's middleware and
    routing cost more per request than the whole ingress, so the ingress paths are dispatched
    here, at the ASGI entry, and everything else (facade, health, docs) is plain FastAPI.
    """

    fast_paths: dict[str, Any]
    body_limit: int
    header_limits: HeaderLimits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            # uvicorn's httptools parser bounds no header, so every HTTP request is checked here.
            too_large = self.header_limits.exceeded(scope["headers"])
            if too_large is not None:
                await self.header_limits.reject(scope, send, too_large)
                return
            endpoint = self.fast_paths.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
            error = self._body_error(scope["headers"])
            if error is not None:
                await send_response(send, *problem_response(error, instance=scope["path"]))
                return
            receive = self._bounded(receive)
        await super().__call__(scope, receive, send)

    def _body_error(self, headers: list[tuple[bytes, bytes]]) -> FunctionError | None:
        """A declared Content-Length over the limit is refused before anything reads it."""
        try:
            length = declared_length(headers)
        except FunctionError as error:
            return error
        if length > self.body_limit:
            return PayloadTooLarge(f"the body exceeds {self.body_limit} bytes")
        return None

    def _bounded(self, receive: Any) -> Any:
        """`receive` that raises PayloadTooLarge once a streamed body passes the limit.

        Raised while a route reads its body, the error reaches the exception handlers and is
        answered in problem+json (FastAPI's own `max_body_size` would answer text/plain).
        """
        limit, seen = self.body_limit, 0

        async def bounded_receive() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(f"the body exceeds {limit} bytes")
            return message

        return bounded_receive


def create_app(
    settings: Settings | None = None,
    *,
    registry: Registry | None = None,
    catalogue: Catalogue = CATALOGUE,
) -> FastAPI:
    """Build the function: the ingress, the facade, health, error mapping and lifecycle."""
    if settings is None:
        settings = Settings()
    if registry is None:
        from handler.functions import registry as default_registry

        registry = default_registry
    configure_logging(settings)
    runtime = Runtime.build(settings, registry, catalogue)
    app = FunctionApp(
        title="knative-python-backend",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=runtime.lifespan,
        redoc_url=None,
        # FastAPI's native OpenTelemetry: OTLP export of the facade's spans when configured.
        telemetry=telemetry_config(settings.otel_exporter_otlp_endpoint),  # type: ignore[arg-type]
    )
    app.state.runtime = runtime
    app.body_limit = settings.max_body_bytes
    app.add_exception_handler(FunctionError, _function_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(health.router)
    # Every /api/v1 router is included with `**api`: behind API keys / OIDC when either is set.
    api: dict[str, Any] = {}
    if runtime.facade_auth is not None:
        api = {
            "dependencies": [Depends(facade_dependency(runtime.facade_auth))],
            "responses": facade.problems(401, 403, 503),
        }
    app.include_router(facade.router, **api)
    app.include_router(deadletter.router, **api)
    # API descriptions are documentation, open like /openapi.json.
    app.include_router(asyncapi.router)
    ws.install(app, runtime)
    scrape = MetricsEndpoint(runtime.metrics, sampler(runtime, app.state))
    app.fast_paths = {"/": Ingress(runtime), "/metrics": scrape}
    if runtime.deadletters is not None:
        app.fast_paths["/deadletter"] = deadletter.DeadLetterSink(runtime, runtime.deadletters)
    app.header_limits = HeaderLimits(settings.max_header_count, settings.max_header_bytes)
    security.install(app, settings)
    facade.document_400_not_422(app)
    return app
