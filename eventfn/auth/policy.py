"""Who gets in: OIDC tokens on broker deliveries, API keys or tokens on the facade and WebSocket.

`build_auth` turns the settings into what the runtime checks: `DeliveryTokenAuth` (the ingress
and the dead-letter sink take a valid OIDC token, `eventfn.auth.oidc`), `FacadeAuth` (`/api/v1`
and the WebSocket take an API key or a token), or nothing where nothing is configured, said
loudly at start-up by `log_posture`.

API keys are kept only as SHA-256 digests and compared with `hmac.compare_digest`, so neither
the process memory nor the timing of a comparison gives a key away. Nothing here logs a token.

A 401 raised for a token that was presented and refused says so (`invalid_token=True`): its
challenge then carries RFC 6750's `error="invalid_token"`, so a client knows to get a new token
rather than to add one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventfn.auth.oidc import OIDCVerifier, looks_like_jwt
from eventfn.core.clock import Clocks
from eventfn.core.config import Settings
from eventfn.core.errors import Unauthenticated
from eventfn.core.http import Scope
from eventfn.observability.logs import get_logger

if TYPE_CHECKING:
    import httpx

log = get_logger("eventfn.auth.policy")

# Where the facade takes an API key (a Bearer header takes one too).
API_KEY_HEADER = "X-API-Key"


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header `name` (lowercase) in an ASGI header list."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def bearer(authorization: str | None) -> str | None:
    """The credentials of an `Authorization: Bearer <credentials>` value, else None."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


class DeliveryTokenAuth:
    """`DeliveryAuth` for the ingress and the dead-letter sink: a valid OIDC bearer token."""

    def __init__(self, verifier: OIDCVerifier) -> None:
        self.verifier = verifier

    async def check(self, scope: Scope) -> None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                # Knative's dispatcher sends `Bearer <token>` exactly: the token's bytes are the
                # cache key, with no decoding on the way. Any other spelling takes the long way.
                if value[:7] == b"Bearer " and len(value) > 7 and b" " not in value[7:]:
                    await self.verifier.verify(value[7:])
                    return
                break
        token = bearer(header(scope["headers"], b"authorization"))
        if token is None:
            raise Unauthenticated("deliveries need an `Authorization: Bearer <OIDC token>` header")
        await self.verifier.verify(token)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass
class FacadeAuth:
    """API keys (as digests) and/or OIDC tokens for `/api/v1/*` and the WebSocket."""

    digests: tuple[bytes, ...]
    verifier: OIDCVerifier | None

    @classmethod
    def build(cls, keys: Sequence[str], verifier: OIDCVerifier | None) -> FacadeAuth | None:
        """None when there is nothing to check (the facade runs open)."""
        if not keys and verifier is None:
            return None
        return cls(tuple(digest(k) for k in keys), verifier)

    def _known_key(self, candidate: str) -> bool:
        presented = digest(candidate)
        # Compare with every key, without stopping early, so timing says nothing about which.
        return sum(hmac.compare_digest(presented, d) for d in self.digests) > 0

    async def check(self, api_key: str | None, bearer_credentials: str | None) -> None:
        """Let the caller in, or raise Unauthenticated (401), Forbidden (403) or 503.

        Where API keys are configured, the 401's challenge offers `X-API-Key` next to Bearer.
        """
        try:
            await self._check(api_key, bearer_credentials)
        except Unauthenticated as error:
            if self.digests:
                error.api_key_header = API_KEY_HEADER
            raise

    async def check_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """`check` of the credentials in an ASGI header list (`X-API-Key`, `Authorization`)."""
        headers = list(headers)
        await self.check(
            header(headers, API_KEY_HEADER.lower().encode()),
            bearer(header(headers, b"authorization")),
        )

    async def _check(self, api_key: str | None, bearer_credentials: str | None) -> None:
        if api_key is not None:
            if self._known_key(api_key):
                return
            raise Unauthenticated("the API key is not valid")
        if bearer_credentials is None:
            raise Unauthenticated("send an `X-API-Key` header or `Authorization: Bearer <token>`")
        if self.digests and self._known_key(bearer_credentials):
            return
        if self.verifier is not None and looks_like_jwt(bearer_credentials):
            await self.verifier.verify(bearer_credentials)
            return
        raise Unauthenticated("the bearer credentials are not valid", invalid_token=True)


@dataclass
class AuthSetup:
    """What the settings turn on: the verifier (a Component), delivery auth and facade auth."""

    verifier: OIDCVerifier | None
    delivery: DeliveryTokenAuth | None
    facade: FacadeAuth | None


def build_auth(
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    clocks: Clocks = Clocks(),  # noqa: B008 (frozen: one shared default is the point)
) -> AuthSetup:
    """Build the authentication the settings ask for; no I/O (the verifier fetches lazily),
    the verifier on `clocks`."""
    verifier = None
    if settings.oidc_audience:
        verifier = OIDCVerifier(
            settings, transport=transport, clock=clocks.monotonic, wall_clock=clocks.wall
        )
    return AuthSetup(
        verifier=verifier,
        delivery=DeliveryTokenAuth(verifier) if verifier else None,
        facade=FacadeAuth.build(settings.api_keys, verifier),
    )


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
