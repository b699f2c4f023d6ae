"""Security around the app: CORS for the Streamlit UI, response headers, header limits, posture.

uvicorn's default HTTP parser (httptools) puts no bound on request headers: measured, it accepts
a 1 MB header and 50,000 header fields. So the app counts them itself (`HeaderLimits`, checked
at the ASGI entry before any routing) and answers 431. With `--http h11` uvicorn's own bound also
applies (`h11_max_incomplete_event_size`, 16 KiB: a 400 from uvicorn). In Knative, queue-proxy
(Go net/http, 1 MiB of headers at most) is in front of both. A WebSocket handshake is an HTTP
request as well and is held to the same bounds, before the facade sees it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handler.config import Settings
from handler.errors import HeadersTooLarge, problem_response
from handler.logs import get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI

log = get_logger("handler.security")

Scope = dict[str, Any]

# What the UI sends: JSON bodies and credentials in headers.
CORS_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "Accept", "Last-Event-ID")
CORS_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Adds `X-Content-Type-Options: nosniff` everywhere and `Cache-Control: no-store` to /api/.

    Pure ASGI (not BaseHTTPMiddleware) so it streams and costs one header append per response.
    API answers are per-caller data behind credentials: no shared cache may keep them.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                if _NOSNIFF[0] not in names:
                    headers.append(_NOSNIFF)
                if api and _NO_STORE[0] not in names:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeaderLimits:
    """Bounds on the request header fields: count and total bytes (431 above either)."""

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count = max_count
        self.max_bytes = max_bytes

    def exceeded(self, headers: list[tuple[bytes, bytes]]) -> HeadersTooLarge | None:
        """The error to answer, or None; a few hundred nanoseconds for usual requests."""
        if len(headers) > self.max_count:
            return HeadersTooLarge(
                f"the request has {len(headers)} header fields; at most {self.max_count}",
                limit=self.max_count,
            )
        size = 0
        for name, value in headers:
            size += len(name) + len(value)
        if size > self.max_bytes:
            return HeadersTooLarge(
                f"the request headers total {size} bytes; at most {self.max_bytes}",
                limit=self.max_bytes,
            )
        return None

    async def reject(self, scope: Scope, send: Any, error: HeadersTooLarge) -> None:
        """Answer 431 without reading the body (the connection is closed after it)."""
        status, headers, body = problem_response(error, instance=scope["path"])
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def reject_handshake(self, scope: Scope, send: Any, error: HeadersTooLarge) -> None:
        """Refuse a WebSocket handshake before accepting it.

        A 431 problem where the server offers the ASGI denial response (uvicorn does, as
        `handler.ws_session` uses it too); else a close before accept, which the server answers
        with HTTP 403 (ASGI spec), 1008 being the policy-violation code.
        """
        if "websocket.http.response" in scope.get("extensions", {}):
            status, headers, body = problem_response(error, instance=scope["path"])
            start = {"type": "websocket.http.response.start", "status": status, "headers": headers}
            await send(start)
            await send({"type": "websocket.http.response.body", "body": body})
            return
        await send({"type": "websocket.close", "code": 1008})


def cors_options(origins: list[str]) -> dict[str, Any]:
    """CORSMiddleware options: credentials only with explicit origins (never with `*`)."""
    wildcard = "*" in origins
    if wildcard:
        log.warning("cors_wildcard", detail="CORS_ORIGINS has '*': credentials are not allowed")
    return {
        "allow_origins": ["*"] if wildcard else origins,
        "allow_credentials": not wildcard,
        "allow_methods": list(CORS_METHODS),
        "allow_headers": list(CORS_HEADERS),
        # WWW-Authenticate is not CORS-safelisted: exposed, the UI can read a 401's challenge.
        "expose_headers": ["Retry-After", "Location", "WWW-Authenticate"],
        "max_age": 600,
    }


def install(app: FastAPI, settings: Settings) -> None:
    """Add the CORS and security-header middleware to the facade `app`."""
    from starlette.middleware.cors import CORSMiddleware

    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, **cors_options(list(settings.cors_origins)))


def log_posture(settings: Settings) -> None:
    """Say at start-up who is let in; loudly when nobody is asked for credentials."""
    if not settings.api_keys and not settings.oidc_audience:
        log.warning(
            "running_open",
            detail="neither API_KEYS nor OIDC_AUDIENCE is set: deliveries, /api/v1 and the "
            "WebSocket accept anyone. Fine on a laptop; never in a cluster.",
        )
        return
    log.info(
        "auth_enabled",
        deliveries="oidc" if settings.oidc_audience else "open",
        facade=[
            *(["api_keys"] if settings.api_keys else []),
            *(["oidc"] if settings.oidc_audience else []),
        ],
        api_key_count=len(settings.api_keys),
    )
    if not settings.oidc_audience:
        log.warning("deliveries_open", detail="OIDC_AUDIENCE is not set: POST / accepts anyone")
