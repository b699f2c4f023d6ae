"""The facade's security middleware: CORS for the Streamlit UI and response headers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventfn.core.config import Settings
from eventfn.core.http import Scope
from eventfn.observability.logs import get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI

log = get_logger("eventfn.facade.security")


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
