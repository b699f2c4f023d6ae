"""A token's times (`iat`, `nbf`, `exp`) checked against the verifier's own wall clock.

PyJWT reads the wall clock itself; the verifier asks it to skip the times and checks them with
`check_times` against `wall_clock`, which a test moves by hand. These tests hold `check_times`
to PyJWT's own checks: the boundaries with and without leeway, what is not an integer, the
order, and a token wrong in several ways refused for the reason PyJWT alone would give.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from eventfn.auth.oidc import OIDCVerifier, check_times, refusal_reason
from eventfn.core.errors import Unauthenticated
from tests.helpers.oidc import AUDIENCE, SUBJECT, Issuer
from tests.helpers.support import Clock, suite_settings

NOW = 1_000_000.5  # a wall clock between two whole seconds, as it usually is
LEEWAY = 30.0


def refusal(claims: dict[str, Any], now: float = NOW, leeway: float = LEEWAY) -> type | None:
    """The PyJWT error `check_times` raises for `claims`, or None when it lets them pass."""
    try:
        check_times(claims, now=now, leeway=leeway)
    except jwt.PyJWTError as error:
        return type(error)
    return None


# -- the boundaries: `exp` refused from `now - leeway` on, `nbf`/`iat` beyond `now + leeway` --


@pytest.mark.parametrize(
    ("exp", "leeway", "expected"),
    [
        (999_971, LEEWAY, None),  # 970.5 s after it by the leeway: still valid
        (999_970, LEEWAY, jwt.ExpiredSignatureError),  # exp <= now - leeway
        (999_969, LEEWAY, jwt.ExpiredSignatureError),
        (1_000_001, 0.0, None),  # half a second left
        (1_000_000, 0.0, jwt.ExpiredSignatureError),  # half a second ago
        (1_000_030, 29.5, None),
        (999_971, 29.5, jwt.ExpiredSignatureError),  # exactly now - leeway: refused
    ],
)
def test_exp_is_refused_from_now_minus_the_leeway_on(
    exp: int, leeway: float, expected: type | None
) -> None:
    assert refusal({"exp": exp}, leeway=leeway) is expected


def test_exp_at_exactly_now_is_expired() -> None:
    """`exp` is the first second the token is refused in (RFC 7519 4.1.4: "on or after")."""
    assert refusal({"exp": 1_000_000}, now=1_000_000.0, leeway=0.0) is jwt.ExpiredSignatureError
    assert refusal({"exp": 1_000_001}, now=1_000_000.0, leeway=0.0) is None


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize(
    ("value", "leeway", "expected"),
    [
        (1_000_030, LEEWAY, None),  # 29.5 s ahead: within the leeway
        (1_000_031, LEEWAY, jwt.ImmatureSignatureError),  # beyond now + leeway
        (1_000_000, 0.0, None),  # half a second ago
        (1_000_001, 0.0, jwt.ImmatureSignatureError),  # half a second ahead
        (1_000_031, 30.5, None),  # exactly now + leeway: still valid
        (1_000_032, 30.5, jwt.ImmatureSignatureError),
        (0, 0.0, None),
    ],
)
def test_nbf_and_iat_are_refused_beyond_now_plus_the_leeway(
    claim: str, value: int, leeway: float, expected: type | None
) -> None:
    assert refusal({claim: value}, leeway=leeway) is expected


def test_absent_times_are_not_checked() -> None:
    """Whether `exp` must be there is `require`'s (PyJWT's); absent claims pass here."""
    assert refusal({}) is None
    assert refusal({"sub": SUBJECT, "aud": AUDIENCE}) is None


# -- what is not an integer: PyJWT's `int()` of it, and its errors ---------------------------


@pytest.mark.parametrize(
    ("value", "fine"),
    [
        ("abc", False),
        (None, False),
        ([1], False),
        ({"at": 1}, False),
        (float("inf"), False),  # OverflowError
        (float("nan"), False),  # ValueError
        ("12", True),  # a numeric string is what int() makes of it
        (12.9, True),  # truncated to 12, as PyJWT does
        (True, True),  # int(True) == 1
    ],
)
@pytest.mark.parametrize(
    ("claim", "malformed", "far_past"),
    [
        ("exp", jwt.DecodeError, jwt.ExpiredSignatureError),
        ("nbf", jwt.DecodeError, None),
        ("iat", jwt.InvalidIssuedAtError, None),
    ],
)
def test_a_time_that_is_no_integer_is_refused_as_pyjwt_refuses_it(
    claim: str, malformed: type, far_past: type | None, value: Any, fine: bool
) -> None:
    assert refusal({claim: value}) is (far_past if fine else malformed)


def test_the_reasons_of_the_time_errors() -> None:
    """The 401's detail for each error `check_times` raises (the reasons are the verifier's)."""
    assert refusal_reason(jwt.ExpiredSignatureError()) == "the token has expired"
    immature = "the token is not valid yet (nbf or iat in the future)"
    assert refusal_reason(jwt.ImmatureSignatureError()) == immature
    assert refusal_reason(jwt.DecodeError()) == "the bearer token is not a well-formed JWT"
    assert refusal_reason(jwt.InvalidIssuedAtError()) == "invalid token"


def test_the_times_are_checked_in_pyjwts_order() -> None:
    """`iat`, then `nbf`, then `exp`: a token wrong in several is refused for the first."""
    future, past = NOW + 1000, NOW - 1000
    assert refusal({"iat": "x", "nbf": "x", "exp": "x"}) is jwt.InvalidIssuedAtError
    assert refusal({"iat": future, "nbf": "x", "exp": past}) is jwt.ImmatureSignatureError
    assert refusal({"nbf": "x", "exp": past}) is jwt.DecodeError
    assert refusal({"nbf": future, "exp": "x"}) is jwt.ImmatureSignatureError
    assert refusal({"iat": past, "nbf": past, "exp": past}) is jwt.ExpiredSignatureError


# -- the same answers as PyJWT's own checks, on the real clock (far from any boundary) --------

SAMPLES: list[Any] = [
    -100_000,
    -100,
    100,
    100_000,
    "abc",
    None,
    [1],
    float("inf"),
    float("nan"),
    "12",
    1.5,
]


def pyjwt_refusal(claims: dict[str, Any], leeway: float) -> type | None:
    token = jwt.encode(claims, "k" * 32, algorithm="HS256")
    options: Any = {"verify_signature": False, "verify_exp": True, "verify_nbf": True}
    try:
        jwt.decode(token, options={**options, "verify_iat": True}, leeway=leeway)
    except jwt.PyJWTError as error:
        return type(error)
    return None


@pytest.mark.parametrize("leeway", [0.0, LEEWAY])
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_check_times_answers_as_pyjwt_does(claim: str, leeway: float) -> None:
    """Each claim at values around now (offsets in seconds) and of wrong types."""
    for sample in SAMPLES:
        now = time.time()
        value = now + sample if type(sample) is int else sample
        claims = {claim: value}
        assert refusal(claims, now=now, leeway=leeway) is pyjwt_refusal(claims, leeway), sample


def test_several_times_answer_as_pyjwt_does() -> None:
    now = time.time()
    future, past = int(now + 1000), int(now - 1000)
    for claims in (
        {"iat": future, "nbf": future, "exp": past},
        {"iat": past, "nbf": future, "exp": past},
        {"iat": "x", "exp": past},
        {"nbf": None, "exp": past},
        {"iat": past, "nbf": past, "exp": future},
    ):
        assert refusal(claims, now=now) is pyjwt_refusal(claims, LEEWAY), claims


# -- through the verifier: its wall clock, and PyJWT's order with the other checks -----------


@pytest.fixture
async def verifier(issuer: Issuer) -> AsyncIterator[tuple[OIDCVerifier, Clock]]:
    """A verifier on `issuer`'s JWKS (a MockTransport) whose wall clock the test moves."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": issuer.url, "jwks_uri": f"{issuer.url}/k"})
        return httpx.Response(200, json=issuer.jwks())

    wall = Clock(now=time.time())
    settings = suite_settings(oidc_audience=AUDIENCE, oidc_issuer=issuer.url)
    subject = OIDCVerifier(settings, transport=httpx.MockTransport(handle), wall_clock=wall)
    await subject.start()
    yield subject, wall
    await subject.stop()


def signed(issuer: Issuer, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": issuer.url, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 300}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not ...}
    private, _ = issuer.keys["rsa-1"]
    return jwt.encode(body, private, algorithm="RS256", headers={"kid": "rsa-1"})


async def detail(verifier: OIDCVerifier, token: str) -> str | None:
    try:
        await verifier.verify(token)
    except Unauthenticated as error:
        return str(error.detail)
    return None


async def test_the_verifier_reads_its_wall_clock(
    issuer: Issuer, verifier: tuple[OIDCVerifier, Clock]
) -> None:
    """`exp` against `wall_clock`, with the 30 s default leeway, fresh and from memory."""
    subject, wall = verifier
    exp = int(wall.now) + 60
    token = signed(issuer, exp=exp)
    assert await detail(subject, token) is None
    wall.now = exp + 29.9  # remembered until `exp` + leeway
    assert await detail(subject, token) is None
    wall.now = exp + 30  # then checked in full, and refused
    assert await detail(subject, token) == "the token has expired"
    assert subject.verifications == 2
    wall.now = exp - 1000  # a token not valid yet, by the same clock
    assert await detail(subject, signed(issuer, nbf=exp, iat=int(wall.now))) == (
        "the token is not valid yet (nbf or iat in the future)"
    )


FAULTS: dict[str, dict[str, Any]] = {
    "expired, other audience": {"exp": -1000, "aud": "someone-else"},
    "expired, empty audience": {"exp": -1000, "aud": ""},
    "expired, other issuer": {"exp": -1000, "iss": "https://evil.example"},
    "expired, subject not a string": {"exp": -1000, "sub": 7},
    "expired, no subject": {"exp": -1000, "sub": ...},
    "expired, no audience": {"exp": -1000, "aud": ...},
    "not yet valid, other audience": {"nbf": 1000, "aud": "someone-else"},
    "issued in the future, other issuer": {"iat": 1000, "iss": "https://evil.example"},
    "bad iat, expired": {"iat": "x", "exp": -1000},
    "other audience alone": {"aud": "someone-else"},
    "empty audience alone": {"aud": []},
    "no exp": {"exp": ...},
}


@pytest.mark.parametrize("case", list(FAULTS))
async def test_a_token_wrong_in_several_ways_is_refused_for_pyjwts_reason(
    issuer: Issuer, verifier: tuple[OIDCVerifier, Clock], case: str
) -> None:
    """The verifier's 401 detail is the one PyJWT's own checks (on the real clock) lead to."""
    subject, _ = verifier
    now = int(time.time())
    claims = {
        k: (now + v if k in ("exp", "nbf", "iat") and type(v) is int else v)
        for k, v in FAULTS[case].items()
    }
    token = signed(issuer, **claims)
    try:
        jwt.decode(
            token,
            issuer.keys["rsa-1"][0].public_key(),
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=issuer.url,
            leeway=30,
            options={"require": ["exp", "aud", "sub", "iss"]},
        )
    except jwt.PyJWTError as error:
        expected = refusal_reason(error)
    else:
        raise AssertionError(f"PyJWT accepts {case}")
    assert await detail(subject, token) == expected
