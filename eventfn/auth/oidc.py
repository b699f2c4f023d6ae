"""`OIDCVerifier`: checks the OIDC tokens Knative sends, against the issuer's keys.

Knative Eventing with `authentication-oidc` sends each delivery with `Authorization: Bearer <JWT>`
signed by the cluster's service-account issuer for the subscriber's audience. The verifier checks
such tokens with PyJWT against a key of the issuer's JWKS, which `eventfn.auth.jwks.KeySet`
fetches, caches and refreshes (an issuer that cannot be reached is a 503 the broker retries, never
an open door), and remembers what it decided: a verified token until its `exp`, a refused one for
a few seconds. Nothing here logs a token. Who may present a token, and where, is
`eventfn.auth.policy`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from eventfn.auth.jwks import KeySet
from eventfn.core.config import Settings
from eventfn.core.errors import Forbidden, Unauthenticated
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
# What PyJWT checks after the times: a token it refuses for one of these is checked for its times
# first, so that a token wrong in both is refused for the same reason as by PyJWT alone.
_AFTER_TIMES = (
    "InvalidIssuerError",
    "InvalidAudienceError",
    "InvalidSubjectError",
    "InvalidJTIError",
)


def check_times(claims: Mapping[str, Any], *, now: float, leeway: float) -> None:
    """PyJWT's checks of `iat`, `nbf` and `exp`, in its order and with its errors, at `now`.

    PyJWT reads the wall clock itself; the verifier asks it to skip these and checks them here
    against its own (`wall_clock`), which a test can move. A claim that is absent is not checked
    (`require` is PyJWT's); one that is present is an integer (`int()` of it) or refused.
    """
    import jwt

    if "iat" in claims:
        try:
            iat = int(claims["iat"])
        except (ValueError, TypeError, OverflowError):
            raise jwt.InvalidIssuedAtError("Issued At claim (iat) must be an integer.") from None
        if iat > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (iat)")
    if "nbf" in claims:
        try:
            nbf = int(claims["nbf"])
        except (ValueError, TypeError, OverflowError):
            raise jwt.DecodeError("Not Before claim (nbf) must be an integer.") from None
        if nbf > now + leeway:
            raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    if "exp" in claims:
        try:
            exp = int(claims["exp"])
        except (ValueError, TypeError, OverflowError):
            raise jwt.DecodeError("Expiration Time claim (exp) must be an integer.") from None
        if exp <= now - leeway:
            raise jwt.ExpiredSignatureError("Signature has expired")


def _after_times(error: Exception, token: str) -> Mapping[str, Any] | None:
    """The claims of a token PyJWT refused for a check it makes after the times, else None.

    Its signature was verified by then (PyJWT checks claims only after it): reading the claims
    again, unverified, is reading what was verified."""
    import jwt
    import jwt.exceptions

    if isinstance(error, tuple(getattr(jwt.exceptions, kind) for kind in _AFTER_TIMES)):
        return jwt.decode(token, options={"verify_signature": False})
    if isinstance(error, jwt.MissingRequiredClaimError):
        # `require` passed unless the claim it names is absent: this one came from `aud` or `iss`
        # (an empty audience, say), which PyJWT checks after the times.
        claims = jwt.decode(token, options={"verify_signature": False})
        return claims if claims.get(error.claim) is not None else None
    return None


def refusal_reason(error: Exception) -> str:
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
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (monotonic seconds) times the JWKS refresh bounds and how long a refused
        token is remembered; `wall_clock` (Unix seconds) is what `exp`, `nbf` and `iat` are
        checked against."""
        if not settings.oidc_audience:
            raise ValueError("OIDCVerifier needs OIDC_AUDIENCE")
        if not (settings.oidc_issuer or settings.oidc_jwks_url):
            raise ValueError("OIDC_AUDIENCE is set: set OIDC_ISSUER or OIDC_JWKS_URL as well")
        self.settings = settings
        self.audience = settings.oidc_audience
        self.subjects = tuple(settings.oidc_allowed_subjects)
        self._clock = clock
        self._wall_clock = wall_clock
        self.keys = KeySet(settings, transport=transport, clock=clock)
        # token bytes -> (claims, exp): only tokens that passed every check, subject included.
        self._verified: dict[bytes, tuple[dict[str, Any], float]] = {}
        # token bytes -> (the 401/403 it got, until when that answer is given again unchecked).
        self._refused: dict[bytes, tuple[Unauthenticated | Forbidden, float]] = {}
        self.verifications = 0  # how many tokens were checked in full (not from the caches)

    async def start(self) -> None:
        await self.keys.start()
        log.info(
            "oidc_enabled",
            audience=self.audience,
            issuer=self.settings.oidc_issuer,
            jwks_url=self.settings.oidc_jwks_url,
            allowed_subjects=list(self.subjects) or None,
        )

    async def stop(self) -> None:
        await self.keys.stop()

    async def verify(self, token: str | bytes) -> dict[str, Any]:
        """The token's claims, or Unauthenticated/Forbidden/IssuerUnavailable.

        Answered from memory for a token seen before, by its exact bytes: until its `exp` when
        it passed, for `REFUSED_SECONDS` when it was refused.
        """
        raw = token if isinstance(token, bytes) else token.encode()
        cached = self._verified.get(raw)
        if cached is not None:
            if self._wall_clock() < cached[1] + self.settings.oidc_leeway_seconds:
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
        key = await self.keys.key(kid if isinstance(kid, str) else None)
        claims = self._decode(token, key, algorithm)
        subject = str(claims.get("sub", ""))
        if self.subjects and not subject.startswith(self.subjects):
            raise Forbidden("the token's subject is not allowed to call this function")
        return claims

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        import jwt

        required = ["exp", "aud", "sub"] + (["iss"] if self.settings.oidc_issuer else [])
        now, leeway = self._wall_clock(), self.settings.oidc_leeway_seconds
        try:
            try:
                # The times are checked by `check_times`, against `wall_clock`, not PyJWT's.
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    audience=self.audience,
                    issuer=self.settings.oidc_issuer,
                    options={
                        "require": required,
                        "verify_exp": False,
                        "verify_nbf": False,
                        "verify_iat": False,
                    },
                )
            except jwt.InvalidTokenError as error:
                refused = _after_times(error, token)
                if refused is not None:  # PyJWT would have refused it for its times first
                    check_times(refused, now=now, leeway=leeway)
                raise
            check_times(claims, now=now, leeway=leeway)
        except (jwt.PyJWTError, ValueError, TypeError) as error:  # a key of another type
            raise Unauthenticated(refusal_reason(error), invalid_token=True) from None
        return claims
