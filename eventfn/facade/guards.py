"""The facade's side of authentication: FastAPI's dependency and the WebSocket handshake check.

Kept apart from `eventfn.auth.policy` (the checks themselves) so that the ingress, which needs only
those, never imports FastAPI (see `eventfn.app`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.websockets import WebSocket

from eventfn.auth.policy import API_KEY_HEADER, FacadeAuth, bearer

_API_KEY = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="One of API_KEYS.")
_BEARER = HTTPBearer(
    auto_error=False, description="An API key, or an OIDC token for OIDC_AUDIENCE."
)


def facade_dependency(auth: FacadeAuth) -> Callable[..., Any]:
    """The FastAPI dependency guarding a router; also documents both schemes in OpenAPI."""

    async def authenticate(
        api_key: Annotated[str | None, Security(_API_KEY)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    ) -> None:
        await auth.check(api_key, credentials.credentials if credentials else None)

    return authenticate


async def authenticate_websocket(websocket: WebSocket) -> None:
    """Check a WebSocket handshake before it is accepted; raises like `FacadeAuth.check`.

    Browsers cannot set headers on a WebSocket, so a `token` query parameter (API key or JWT)
    is accepted too; `X-API-Key` and `Authorization: Bearer` work for other clients.
    """
    auth: FacadeAuth | None = websocket.app.state.runtime.facade_auth
    if auth is None:
        return
    api_key = websocket.headers.get(API_KEY_HEADER)  # Starlette's headers ignore case
    credentials = bearer(websocket.headers.get("authorization"))
    if api_key is None and credentials is None:
        credentials = websocket.query_params.get("token") or None
    await auth.check(api_key, credentials)
