"""OIDC verification at the speed of a dict look-up, and its edge cases: real tokens, real JWKS.

Knative's dispatcher sends the same token bytes on every delivery until shortly before it
expires; a flood of a bad token must cost one verification per interval, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt

from eventfn.auth.oidc import OIDCVerifier
from eventfn.testing import app_client
from tests.helpers.oidc import AUDIENCE, SUBJECT, Issuer
from tests.helpers.support import deliver, make_app
from tests.helpers.support import suite_settings as settings_for


@contextlib.asynccontextmanager
async def function(
    issuer: Issuer, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A function with OIDC on, trusting `issuer`; yields its client and its verifier."""
    settings = settings_for(oidc_audience=AUDIENCE, oidc_issuer=issuer.url, **overrides)
    app = make_app(settings)
    async with app_client(app) as client:
        verifier = app.state.runtime.delivery_auth.verifier
        assert isinstance(verifier, OIDCVerifier)
        yield client, verifier


async def test_the_same_token_bytes_are_verified_once(issuer: Issuer) -> None:
    """Twenty deliveries with one token: one full verification, twenty 200s."""
    token = issuer.token()
    async with function(issuer) as (client, verifier):
        statuses = [(await deliver(client, token=token)).status_code for _ in range(20)]
    assert statuses == [200] * 20
    assert verifier.verifications == 1


async def test_a_refused_token_is_refused_from_memory_for_a_while(issuer: Issuer) -> None:
    """A flood of one bad token: every delivery 401, one full verification for all of them."""
    token = issuer.token(aud="someone-else")
    async with function(issuer) as (client, verifier):
        responses = [await deliver(client, token=token) for _ in range(20)]
    assert {r.status_code for r in responses} == {401}
    assert {r.json()["detail"] for r in responses} == {"the token is not for this audience"}
    assert verifier.verifications == 1


async def test_a_token_signed_with_an_absurd_expiry_is_401(issuer: Issuer) -> None:
    """`exp = 10**400` passes PyJWT's integer check; the function refuses it (401, not 500)."""
    private, _ = issuer.keys["rsa-1"]
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": SUBJECT, "iat": 0, "exp": 10**400}
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "rsa-1"})
    async with function(issuer) as (client, _):
        response = await deliver(client, token=token)
    assert response.status_code == 401
    assert response.json()["detail"] == "the token's expiry is out of range"


async def test_requests_waiting_for_the_jwks_share_the_fetch_they_waited_for(
    issuer: Issuer,
) -> None:
    """With the refresh bound below the HTTP timeout, ten waiters on the JWKS cost one fetch."""
    overrides = {"oidc_jwks_min_refresh_seconds": 0, "oidc_http_timeout_seconds": 5}
    async with function(issuer, **overrides) as (client, _):
        assert (await deliver(client, token=issuer.token())).status_code == 200
        issuer.delay = 0.5  # every waiter arrives while the fetch is in flight
        unknown = [issuer.token(kid="rsa-2", sub=f"{SUBJECT}-{n}") for n in range(10)]
        responses = await asyncio.gather(*(deliver(client, token=token) for token in unknown))
    assert {r.status_code for r in responses} == {401}
    assert issuer.jwks_requests == 2  # the first token's, then one for all ten waiters
