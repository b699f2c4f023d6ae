"""Key rotation while the keys cannot be refreshed: a 503 the broker retries, never a 401.

A 401 is final for the broker: the delivery is dead-lettered. A token whose `kid` is not among
the keys held may well be valid, signed by a key published since the last fetch; it is refused
only once keys fetched after it arrived do not hold its `kid`. The verifier runs on an injected
clock (the refresh interval) and an `httpx.MockTransport` issuer; the last test runs the issuer
as a real HTTP server answering 500.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from eventfn.auth.jwks import IssuerUnavailable
from eventfn.auth.oidc import OIDCVerifier
from eventfn.core.errors import Unauthenticated
from tests.helpers.oidc import AUDIENCE, Issuer
from tests.helpers.support import Clock, binary_headers, dumps, query, suite_client, suite_settings


class MockIssuer:
    """`issuer`'s discovery document and JWKS over a MockTransport; `failing` answers 500."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.failing = False
        self.fetches = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.failing:
            return httpx.Response(500, json={"error": "down"})
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200, json={"issuer": self.issuer.url, "jwks_uri": f"{self.issuer.url}/keys"}
            )
        self.fetches += 1
        return httpx.Response(200, json=self.issuer.jwks())


async def verifier_for(
    issuer: Issuer, clock: Clock, **overrides: Any
) -> tuple[OIDCVerifier, MockIssuer]:
    mock = MockIssuer(issuer)
    settings = suite_settings(
        oidc_audience=AUDIENCE,
        oidc_issuer=issuer.url,
        oidc_jwks_min_refresh_seconds=30,
        **overrides,
    )
    verifier = OIDCVerifier(settings, transport=httpx.MockTransport(mock.handle), clock=clock)
    await verifier.start()
    return verifier, mock


async def test_an_unknown_kid_within_the_refresh_interval_is_503_with_retry_after(
    issuer: Issuer,
) -> None:
    """Keys fetched 10 s ago, interval 30 s: the new kid waits (503, Retry-After 20), no fetch."""
    clock = Clock()
    verifier, mock = await verifier_for(issuer, clock)
    await verifier.verify(issuer.token())
    issuer.published.add("rsa-2")  # rotated in after the fetch
    clock.now += 10
    with pytest.raises(IssuerUnavailable) as raised:
        await verifier.verify(issuer.token(kid="rsa-2"))
    assert raised.value.status_code == 503
    assert raised.value.retry_after == 20
    assert mock.fetches == 1
    await verifier.stop()


async def test_an_unknown_kid_refetches_once_the_interval_allows(issuer: Issuer) -> None:
    """After the interval, the unknown kid refetches the JWKS and the rotated key is accepted."""
    clock = Clock()
    verifier, mock = await verifier_for(issuer, clock)
    await verifier.verify(issuer.token())
    issuer.published.add("rsa-2")
    clock.now += 31
    claims = await verifier.verify(issuer.token(kid="rsa-2"))
    assert claims["aud"] == AUDIENCE
    assert mock.fetches == 2
    await verifier.stop()


async def test_a_kid_missing_from_keys_fetched_after_the_token_is_401(issuer: Issuer) -> None:
    """Fresh keys that do not hold the kid are the issuer's word: 401, invalid_token."""
    clock = Clock()
    verifier, _ = await verifier_for(issuer, clock)
    await verifier.verify(issuer.token())
    clock.now += 31
    with pytest.raises(Unauthenticated) as raised:
        await verifier.verify(issuer.token(kid="rsa-2"))
    assert raised.value.invalid_token
    await verifier.stop()


async def test_an_unknown_kid_during_an_outage_is_503(issuer: Issuer) -> None:
    """The issuer answering 500 when an unknown kid needs a refetch: 503, the old keys kept."""
    clock = Clock()
    verifier, mock = await verifier_for(issuer, clock)
    await verifier.verify(issuer.token())
    mock.failing = True
    clock.now += 31
    with pytest.raises(IssuerUnavailable):
        await verifier.verify(issuer.token(kid="rsa-2"))
    await verifier.verify(issuer.token(expires_in=299))  # the known key still serves
    await verifier.stop()


async def test_many_unknown_kids_at_once_during_an_outage_are_all_503(issuer: Issuer) -> None:
    """50 concurrent tokens with a new kid while the issuer fails: 50 x 503, not 49 x 401."""
    clock = Clock()
    verifier, mock = await verifier_for(issuer, clock)
    await verifier.verify(issuer.token())
    mock.failing = True
    clock.now += 31
    tokens = [issuer.token(kid="rsa-2", expires_in=200 + n) for n in range(50)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(result, IssuerUnavailable) for result in results), {
        type(result).__name__ for result in results
    }
    await verifier.stop()


HTTPX_ERRORS = sorted(
    (
        kind
        for kind in vars(httpx).values()
        if isinstance(kind, type) and issubclass(kind, Exception)
    ),
    key=lambda kind: kind.__name__,
)


def raised_by_httpx(kind: type[Exception], request: httpx.Request) -> Exception:
    """An instance of `kind`, whatever its constructor takes."""
    if issubclass(kind, httpx.HTTPStatusError):
        return kind("failed", request=request, response=httpx.Response(500, request=request))
    if issubclass(kind, httpx.RequestError):
        return kind("failed", request=request)
    if issubclass(kind, httpx.StreamError) and kind is not httpx.StreamError:
        bare: Any = kind  # its subclasses take no message
        return bare()  # type: ignore[no-any-return]
    return kind("failed")


@pytest.mark.parametrize("kind", HTTPX_ERRORS, ids=lambda kind: kind.__name__)
async def test_every_httpx_error_of_a_jwks_fetch_is_503(
    kind: type[Exception], issuer: Issuer
) -> None:
    """Each exception class httpx exports, raised fetching the keys, is a 503, never a 500."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise raised_by_httpx(kind, request)

    settings = suite_settings(oidc_audience=AUDIENCE, oidc_issuer=issuer.url)
    verifier = OIDCVerifier(settings, transport=httpx.MockTransport(fail), clock=Clock())
    await verifier.start()
    with pytest.raises(IssuerUnavailable) as raised:
        await verifier.verify(issuer.token())
    assert raised.value.retry_after is not None
    await verifier.stop()


async def test_an_unreadable_jwks_token_file_is_503(issuer: Issuer, tmp_path: Any) -> None:
    """The pod's token file gone (a rotation caught half-way): a 503, not an OSError's 500."""
    settings = suite_settings(
        oidc_audience=AUDIENCE,
        oidc_issuer=issuer.url,
        oidc_jwks_token_file=tmp_path / "missing-token",
    )
    verifier = OIDCVerifier(settings, transport=httpx.MockTransport(MockIssuer(issuer).handle))
    await verifier.start()
    with pytest.raises(IssuerUnavailable):
        await verifier.verify(issuer.token())
    await verifier.stop()


@pytest.mark.chaos
async def test_a_jwks_issuer_answering_500_turns_new_keys_into_retries(issuer: Issuer) -> None:
    """A real issuer answering 500 while its key rotates: every delivery is 503 + Retry-After."""
    settings = {
        "oidc_audience": AUDIENCE,
        "oidc_issuer": issuer.url,
        "oidc_jwks_min_refresh_seconds": 0,
    }
    async with suite_client(**settings) as client:
        first = binary_headers() | {"authorization": f"Bearer {issuer.token()}"}
        assert (await client.post("/", headers=first, content=dumps(query()))).status_code == 200
        issuer.failing = True
        responses = await asyncio.gather(
            *(
                client.post(
                    "/",
                    headers=binary_headers()
                    | {"authorization": f"Bearer {issuer.token(kid='rsa-2', expires_in=200 + n)}"},
                    content=dumps(query()),
                )
                for n in range(20)
            )
        )
    assert {r.status_code for r in responses} == {503}
    assert all(r.headers["content-type"] == "application/problem+json" for r in responses)
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses)
