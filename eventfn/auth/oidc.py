"""`OIDCVerifier`: checks the OIDC tokens Knative sends, against the issuer's JWKS.

Knative Eventing with `authentication-oidc` sends each delivery with `Authorization: Bearer <JWT>`
signed by the cluster's service-account issuer for the subscriber's audience. The verifier checks
such tokens with PyJWT against the issuer's JWKS, fetched with one httpx client, cached, and
refreshed on an unknown `kid` no more often than `OIDC_JWKS_MIN_REFRESH_SECONDS`. An issuer that
cannot be reached is a 503 the broker retries, never an open door; so is a key id it cannot look
up while the keys cannot be refreshed. Nothing here logs a token. Who may present a token, and
where, is `eventfn.auth.policy`.
"""

from __future__ import annotations

import asyncio
import copy
import math
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventfn.core.config import Settings
from eventfn.core.errors import Forbidden, TransientError, Unauthenticated
from eventfn.observability.logs import get_logger

if TYPE_CHECKING:  # PyJWT (with cryptography) and httpx: imported only where OIDC is configured
    import httpx
    import jwt

log = get_logger("eventfn.auth.oidc")

# Only asymmetric algorithms: a JWKS holds public keys, and refusing HS*/none closes the
# algorithm-confusion and unsigned-token doors before PyJWT is even asked.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Far above a real service-account token (~1-2 KB); bounds the work an attacker can ask for.
MAX_TOKEN_BYTES = 16 * 1024
# Verified tokens remembered, by their exact bytes, until they expire. Knative reuses a delivery
# token for its lifetime, and PyJWT spends ~200 us per decode (pure-Python base64 checks) on top
# of the signature check.
VERIFIED_CACHE_SIZE = 1024
# Refused tokens remembered this long (seconds), so that a flood of the same bad token costs one
# verification per interval; an issuer that cannot be reached is never remembered (503).
REFUSED_SECONDS = 5.0
REFUSED_CACHE_SIZE = 1024
# PyJWT's messages can quote parts of the token; these are ours, and say what to fix.
_REASONS: tuple[tuple[str, str], ...] = (
    ("ExpiredSignatureError", "the token has expired"),
    ("ImmatureSignatureError", "the token is not valid yet (nbf or iat in the future)"),
    ("InvalidAudienceError", "the token is not for this audience"),
    ("InvalidIssuerError", "the token is from another issuer"),
    ("InvalidSignatureError", "the token's signature does not verify"),
    ("InvalidAlgorithmError", "the token's algorithm does not match its key"),
    ("DecodeError", "the bearer token is not a well-formed JWT"),
)


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


def _reason(error: Exception) -> str:
    import jwt

    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token has no {error.claim!r} claim"
    return next(
        (text for kind, text in _REASONS if isinstance(error, getattr(jwt, kind))),
        "invalid token",
    )


def looks_like_jwt(credentials: str) -> bool:
    return credentials.count(".") == 2


class OIDCVerifier:
    """Verifies JWTs against the configured issuer's keys; a `Component` (owns an httpx client)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.oidc_audience:
            raise ValueError("OIDCVerifier needs OIDC_AUDIENCE")
        if not (settings.oidc_issuer or settings.oidc_jwks_url):
            raise ValueError("OIDC_AUDIENCE is set: set OIDC_ISSUER or OIDC_JWKS_URL as well")
        self.settings = settings
        self.audience = settings.oidc_audience
        self.subjects = tuple(settings.oidc_allowed_subjects)
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._jwks_url = settings.oidc_jwks_url
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last fetch attempt, successful or not
        self._loaded_at: float | None = None  # last successful fetch
        self._lock = asyncio.Lock()
        # token bytes -> (claims, exp): only tokens that passed every check, subject included.
        self._verified: dict[bytes, tuple[dict[str, Any], float]] = {}
        # token bytes -> (the 401/403 it got, until when that answer is given again unchecked).
        self._refused: dict[bytes, tuple[Unauthenticated | Forbidden, float]] = {}
        self.fetches = 0  # how many JWKS fetches were made (exposed for tests and metrics)
        self._finished = 0  # how many fetches have ended, in success or failure
        self._loads = 0  # how many fetches have succeeded
        self.verifications = 0  # how many tokens were checked in full (not from the caches)

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
        log.info(
            "oidc_enabled",
            audience=self.audience,
            issuer=self.settings.oidc_issuer,
            jwks_url=self._jwks_url,
            allowed_subjects=list(self.subjects) or None,
        )

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def verify(self, token: str | bytes) -> dict[str, Any]:
        """The token's claims, or Unauthenticated/Forbidden/IssuerUnavailable.

        Answered from memory for a token seen before, by its exact bytes: until its `exp` when
        it passed, for `REFUSED_SECONDS` when it was refused.
        """
        raw = token if isinstance(token, bytes) else token.encode()
        cached = self._verified.get(raw)
        if cached is not None:
            if time.time() < cached[1] + self.settings.oidc_leeway_seconds:
                return cached[0]
            del self._verified[raw]
        refused = self._refused.get(raw)
        if refused is not None:
            if self._clock() < refused[1]:
                # A fresh copy each time: callers add to the error (the facade's challenge), and
                # re-raising one object would grow its traceback with every request.
                raise copy.copy(refused[0]).with_traceback(None)
            del self._refused[raw]
        try:
            claims, expires = await self._verify_bytes(raw)
        except (Unauthenticated, Forbidden) as error:
            if len(self._refused) >= REFUSED_CACHE_SIZE:
                del self._refused[next(iter(self._refused))]  # the oldest entry
            self._refused[raw] = (copy.copy(error), self._clock() + REFUSED_SECONDS)
            raise
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[raw] = (claims, expires)
        return claims

    async def _verify_bytes(self, raw: bytes) -> tuple[dict[str, Any], float]:
        """Check a token in full: its claims and its `exp` as a float."""
        self.verifications += 1
        if len(raw) > MAX_TOKEN_BYTES:
            raise Unauthenticated("the bearer token is too long", invalid_token=True)
        try:
            token = raw.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthenticated(
                "the bearer token is not a well-formed JWT", invalid_token=True
            ) from None
        claims = await self._verify(token)
        try:  # PyJWT compares `exp` as an int: one signed as 10**400 passes it, not float()
            expires = float(claims["exp"])
        except (OverflowError, TypeError, ValueError):
            expires = math.inf
        if not math.isfinite(expires):
            raise Unauthenticated("the token's expiry is out of range", invalid_token=True)
        return claims, expires

    async def _verify(self, token: str) -> dict[str, Any]:
        import jwt

        try:
            unverified = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated(
                "the bearer token is not a well-formed JWT", invalid_token=True
            ) from None
        algorithm = unverified.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthenticated(
                "the token's algorithm is not accepted (asymmetric only)", invalid_token=True
            )
        kid = unverified.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None)
        claims = self._decode(token, key, algorithm)
        subject = str(claims.get("sub", ""))
        if self.subjects and not subject.startswith(self.subjects):
            raise Forbidden("the token's subject is not allowed to call this function")
        return claims

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        import jwt

        required = ["exp", "aud", "sub"] + (["iss"] if self.settings.oidc_issuer else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.settings.oidc_issuer,
                leeway=self.settings.oidc_leeway_seconds,
                options={"require": required},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:  # a key of another type
            raise Unauthenticated(_reason(error), invalid_token=True) from None
        return claims

    async def _key(self, kid: str | None) -> jwt.PyJWK:
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
