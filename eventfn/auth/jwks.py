"""`KeySet`: the OIDC issuer's signing keys, fetched from its JWKS and refreshed within bounds.

The one job here is to hold the keys a token may be signed with: find the JWKS (OIDC_JWKS_URL,
or the issuer's discovery document), fetch it with one httpx client, look a key up by `kid`, and
refetch on an unknown `kid` no more often than `OIDC_JWKS_MIN_REFRESH_SECONDS` (and once the
keys are older than `OIDC_JWKS_MAX_AGE_SECONDS`). An issuer that cannot be reached is
`IssuerUnavailable`, a 503 the broker retries; so is a key id that cannot be looked up while the
keys cannot be refreshed. Checking a token against a key is `eventfn.auth.oidc`'s.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventfn.core.config import Settings
from eventfn.core.errors import TransientError, Unauthenticated
from eventfn.observability.logs import get_logger

if TYPE_CHECKING:  # PyJWT (with cryptography) and httpx: imported only where OIDC is configured
    import httpx
    import jwt

log = get_logger("eventfn.auth.jwks")


class IssuerUnavailable(TransientError):
    """The OIDC issuer or its JWKS could not be fetched: retry later, do not let anyone in."""

    problem = "issuer-unavailable"
    title = "Token issuer unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **extensions: Any) -> None:
        # Every 503 carries Retry-After: an issuer that answered wrongly is retried like one down.
        super().__init__(detail, retry_after=retry_after, **extensions)


def _fetch_errors(httpx: Any) -> tuple[type[Exception], ...]:
    """What fetching a document can raise that is the issuer's fault or the network's: every
    exception class httpx exports (`HTTPError`'s tree, and `InvalidURL`, `CookieConflict` and
    `StreamError`'s, which are not in it), a body that is not JSON (`ValueError`) and a token
    file that cannot be read (`OSError`). None of them is a reason to answer 500."""
    library = tuple(
        kind
        for kind in vars(httpx).values()
        if isinstance(kind, type) and issubclass(kind, Exception)
    )
    return (*library, ValueError, OSError)


class KeySet:
    """The issuer's signing keys by `kid`; owns an httpx client, started and stopped with the
    verifier that holds it."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._jwks_url = settings.oidc_jwks_url
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last fetch attempt, successful or not
        self._loaded_at: float | None = None  # last successful fetch
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many JWKS fetches were made (exposed for tests and metrics)
        self._finished = 0  # how many fetches have ended, in success or failure
        self._loads = 0  # how many fetches have succeeded

    async def start(self) -> None:
        import httpx

        verify: ssl.SSLContext | bool = True
        if self.settings.oidc_ca_file is not None:
            verify = ssl.create_default_context(cafile=str(self.settings.oidc_ca_file))
        self._client = httpx.AsyncClient(
            transport=self._transport,
            verify=verify,
            timeout=self.settings.oidc_http_timeout_seconds,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=4),
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key for `kid`, fetching the JWKS when it is unknown (within the refresh bound).

        An unknown `kid` is a 401 only when keys fetched after the token arrived do not hold it:
        a fetch this request made, or one it waited for. While the keys cannot be refreshed (the
        issuer is down, or the last fetch is more recent than OIDC_JWKS_MIN_REFRESH_SECONDS) the
        key may simply be new, rotated in since: a 503 with Retry-After, which the broker
        retries, never a 401, which it would dead-letter a valid delivery for.
        """
        now = self._clock()
        max_age = self.settings.oidc_jwks_max_age_seconds
        stale = self._loaded_at is None or now - self._loaded_at > max_age
        key = self._lookup(kid)
        if key is not None and not stale:
            return key
        finished, loads = self._finished, self._loads
        async with self._lock:
            key = self._lookup(kid)
            if self._finished == finished and (key is None or stale):
                # No fetch ran while this request waited for the lock: make one, unless one
                # was made less than the minimum interval ago.
                await self._refresh(must=key is None)
                key = self._lookup(kid)
        if key is not None:
            return key
        if self._loads == loads:  # no keys newer than the token: they could not be refreshed
            raise IssuerUnavailable(
                "the token's key id is not among the issuer's keys known here, and they cannot "
                "be refreshed now; retry later",
                retry_after=self._next_fetch_in(),
            )
        raise Unauthenticated(
            "the token's key id is not one of the issuer's keys", invalid_token=True
        )

    def _next_fetch_in(self) -> int:
        """Whole seconds until the next JWKS fetch is allowed (at least 1): the Retry-After."""
        interval = self.settings.oidc_jwks_min_refresh_seconds
        if self._fetched_at is None:
            return max(1, math.ceil(interval))
        return max(1, math.ceil(self._fetched_at + interval - self._clock()))

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None and len(self._keys) == 1:  # a single-key issuer may omit `kid`
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    async def _refresh(self, *, must: bool) -> None:
        """Fetch the JWKS unless one was fetched less than the minimum interval ago.

        `must` means the request cannot be answered from the cache: a fetch failure is then a
        503; otherwise (cache merely old) the old keys keep serving and the failure is logged.
        A fetch skipped for the interval changes nothing: the caller answers 503 from there.
        """
        now = self._clock()
        if (
            self._fetched_at is not None
            and now - self._fetched_at < self.settings.oidc_jwks_min_refresh_seconds
        ):
            return
        self._fetched_at = now
        try:
            self._keys = await self._fetch()
            self._loaded_at = self._clock()
            self._loads += 1
        except IssuerUnavailable:
            if must:
                raise
            log.warning("jwks_refresh_failed", keys_kept=len(self._keys))
        finally:
            self._finished += 1

    async def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        import jwt

        self.fetches += 1
        if self._jwks_url is None:
            issuer = str(self.settings.oidc_issuer).rstrip("/")
            document = await self._get_json(f"{issuer}/.well-known/openid-configuration")
            if document.get("issuer", "").rstrip("/") != issuer or not document.get("jwks_uri"):
                raise IssuerUnavailable("the issuer's discovery document does not match it")
            self._jwks_url = str(document["jwks_uri"])
        jwks = await self._get_json(self._jwks_url)
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in jwks.get("keys", []) if isinstance(jwks.get("keys"), list) else []:
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # a key of a type we cannot use (or `use: enc`): skip it, keep the rest
            keys[key.key_id] = key
        if not keys:
            raise IssuerUnavailable("the issuer's JWKS holds no usable signing key")
        log.info("jwks_fetched", keys=len(keys))
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        import httpx

        assert self._client is not None, "OIDCVerifier used before start()"  # noqa: S101
        headers = {"accept": "application/json"}
        token_file = self.settings.oidc_jwks_token_file
        try:
            if token_file is not None:  # read each time: kubelet rotates projected tokens
                headers["authorization"] = f"Bearer {token_file.read_text().strip()}"
            response = await self._client.get(url, headers=headers)
            response.raise_for_status()
            document = response.json()
        except _fetch_errors(httpx) as error:
            log.warning("jwks_unreachable", url=url, error=type(error).__name__)
            raise IssuerUnavailable(
                "the token issuer could not be reached; retry later", retry_after=5
            ) from None
        if not isinstance(document, dict):
            raise IssuerUnavailable("the issuer answered something other than a JSON object")
        return document
