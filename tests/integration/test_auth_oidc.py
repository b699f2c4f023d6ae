"""Broker deliveries with Knative Eventing OIDC: real tokens, a real JWKS served over HTTP(S)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import trustme

from eventfn import create_app
from eventfn.core.clock import Clocks
from eventfn.dispatch.registry import Registry
from eventfn.testing import app_client
from tests.functions import ASK, ASK_CATALOGUE, Answer, Question
from tests.helpers.oidc import AUDIENCE, SUBJECT, Issuer, unsigned_token
from tests.helpers.support import (
    RESPONSE,
    Clock,
    binary_headers,
    deliver,
    dumps,
    free_port,
    make_app,
    query,
)
from tests.helpers.support import suite_settings as settings_for

BEARER = 'Bearer realm="knative-python-backend"'
INVALID_TOKEN = BEARER + ', error="invalid_token"'


class Recorder:
    """A registry whose query handler records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[Question] = []
        self.registry = Registry(ASK_CATALOGUE)

        @self.registry.handles(ASK)
        async def record(request: Question) -> Answer:
            self.calls.append(request)
            return Answer(result={"ok": True})


@contextlib.asynccontextmanager
async def oidc_client(
    issuer: Issuer,
    recorder: Recorder | None = None,
    *,
    clock: Clock | None = None,
    wall_clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """A function with OIDC on, trusting `issuer`; its verifier's intervals on `clock`, the
    tokens' times checked against `wall_clock`."""
    settings = settings_for(**{"oidc_audience": AUDIENCE, "oidc_issuer": issuer.url, **overrides})
    registry = (recorder or Recorder()).registry
    clocks = Clocks(monotonic=clock or time.monotonic, wall=wall_clock or time.time)
    app = create_app(settings, registry, clocks=clocks)
    async with app_client(app) as client:
        yield client


def assert_refused(response: httpx.Response, status: int, token: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "ce-type" not in response.headers  # no reply event
    if token is not None:
        assert token not in response.text
        assert not any(part in response.text for part in token.split(".") if len(part) > 16)


async def test_valid_rsa_token_is_handled(issuer: Issuer) -> None:
    """A delivery with a valid RS256 token for our audience is handled and answered."""
    recorder = Recorder()
    async with oidc_client(issuer, recorder) as client:
        response = await deliver(client, token=issuer.token())
    assert response.status_code == 200
    assert response.headers["ce-type"] == RESPONSE
    assert len(recorder.calls) == 1


async def test_valid_ec_token_is_handled(issuer: Issuer) -> None:
    """An ES256 token signed by a published EC key is accepted as well."""
    async with oidc_client(issuer) as client:
        response = await deliver(client, token=issuer.token(kid="ec-1"))
    assert response.status_code == 200


async def test_keys_are_cached_between_deliveries(issuer: Issuer) -> None:
    """The JWKS is fetched once for many deliveries, not once per request."""
    async with oidc_client(issuer) as client:
        for _ in range(5):
            assert (await deliver(client, token=issuer.token())).status_code == 200
    assert issuer.jwks_requests == 1


async def test_missing_token_is_401_and_nothing_is_handled(issuer: Issuer) -> None:
    """Without a token: 401 problem+json, no reply event, the handler never runs."""
    recorder = Recorder()
    async with oidc_client(issuer, recorder) as client:
        response = await deliver(client, token=None)
    assert_refused(response, 401)
    assert recorder.calls == []


async def test_other_scheme_is_401(issuer: Issuer) -> None:
    """`Authorization: Basic ...` is not a bearer token: 401."""
    async with oidc_client(issuer) as client:
        headers = {**binary_headers(), "authorization": "Basic dXNlcjpwYXNz"}
        response = await client.post("/", headers=headers, content=dumps(query()))
    assert_refused(response, 401)


BAD_TOKENS: dict[str, Any] = {
    "wrong audience": lambda i: i.token(aud="someone-else"),
    "wrong issuer": lambda i: i.token(iss="https://evil.example"),
    "expired beyond leeway": lambda i: i.token(expires_in=-120),
    "not valid yet beyond leeway": lambda i: i.token(not_before_in=300),
    "bad signature": lambda i: i.token(kid="rsa-1", signing_key=i.keys["rsa-2"][0]),
    "alg none": unsigned_token,
    "no exp claim": lambda i: i.token(omit=("exp",)),
    "no sub claim": lambda i: i.token(omit=("sub",)),
    "not a jwt": lambda i: "not-a-jwt",
    "three garbage segments": lambda i: "a.b.c",
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_bad_token_is_401(issuer: Issuer, case: str) -> None:
    """Every way a token can be wrong is a 401; the handler does not run; no token echo."""
    recorder = Recorder()
    token = BAD_TOKENS[case](issuer)
    async with oidc_client(issuer, recorder) as client:
        response = await deliver(client, token=token)
    assert_refused(response, 401, token)
    assert recorder.calls == []


async def test_missing_token_is_challenged_for_a_bearer_token(issuer: Issuer) -> None:
    """A 401 without a token names the Bearer scheme and realm, with no error (RFC 6750 3.1)."""
    async with oidc_client(issuer) as client:
        response = await deliver(client, token=None)
    assert response.headers.get_list("www-authenticate") == [BEARER]


async def test_other_scheme_is_challenged_without_an_error(issuer: Issuer) -> None:
    """`Authorization: Basic ...` presents no bearer token: the plain Bearer challenge."""
    async with oidc_client(issuer) as client:
        headers = {**binary_headers(), "authorization": "Basic dXNlcjpwYXNz"}
        response = await client.post("/", headers=headers, content=dumps(query()))
    assert response.headers["www-authenticate"] == BEARER


@pytest.mark.parametrize("case", list(BAD_TOKENS))
async def test_refused_token_is_challenged_as_invalid_token(issuer: Issuer, case: str) -> None:
    """A presented token that is refused adds `error="invalid_token"`, and nothing else."""
    async with oidc_client(issuer) as client:
        response = await deliver(client, token=BAD_TOKENS[case](issuer))
    assert response.headers["www-authenticate"] == INVALID_TOKEN


async def test_challenge_details_stay_out_of_the_body(issuer: Issuer) -> None:
    """The refused-token flag shapes the header only: the body is the usual problem document."""
    async with oidc_client(issuer) as client:
        response = await deliver(client, token=issuer.token(expires_in=-120))
    assert set(response.json()) == {"type", "title", "status", "detail", "instance"}


async def test_forbidden_subject_carries_no_challenge(issuer: Issuer) -> None:
    """A 403 (valid token, subject not allowed) is not a 401: no WWW-Authenticate."""
    allowed = ["system:serviceaccount:knative-eventing:"]
    async with oidc_client(issuer, oidc_allowed_subjects=allowed) as client:
        response = await deliver(client, token=issuer.token(sub="system:serviceaccount:default:x"))
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers


async def test_small_clock_skew_is_tolerated(issuer: Issuer) -> None:
    """A token that expired 10 s ago is still accepted within the 30 s default leeway."""
    async with oidc_client(issuer) as client:
        response = await deliver(client, token=issuer.token(expires_in=-10))
    assert response.status_code == 200


async def test_a_remembered_token_is_refused_once_expired(issuer: Issuer) -> None:
    """Verified tokens are remembered for speed, but only until their `exp`."""
    token = issuer.token(expires_in=2)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    wall = Clock(now=time.time())
    async with oidc_client(issuer, wall_clock=wall, oidc_leeway_seconds=0) as client:
        assert (await deliver(client, token=token)).status_code == 200
        assert (await deliver(client, token=token)).status_code == 200
        wall.now = expires - 0.01  # the last moment it is remembered
        assert (await deliver(client, token=token)).status_code == 200
        wall.now = expires  # `exp` is the first second it is refused in
        refused = await deliver(client, token=token)
        assert_refused(refused, 401, token)
        assert refused.json()["detail"] == "the token has expired"


async def test_unknown_kid_refreshes_once_then_401(issuer: Issuer) -> None:
    """An unknown `kid` refetches once the interval allows (then 401); within it, 503."""
    async with oidc_client(issuer, oidc_jwks_min_refresh_seconds=60) as client:
        assert (await deliver(client, token=issuer.token())).status_code == 200
        assert issuer.jwks_requests == 1
        first = await deliver(client, token=issuer.token(kid="rsa-2"))
        assert issuer.jwks_requests == 1  # fetched less than a minute ago: no refetch
        assert first.status_code == 503  # the key may be newer than the keys: retried
        assert 1 <= int(first.headers["retry-after"]) <= 60
    clock = Clock(now=time.monotonic())
    async with oidc_client(issuer, clock=clock, oidc_jwks_min_refresh_seconds=0.2) as client:
        assert (await deliver(client, token=issuer.token())).status_code == 200
        clock.now += 0.25
        assert_refused(await deliver(client, token=issuer.token(kid="rsa-2")), 401)
        # The same token again: refused from memory, no fetch.
        assert_refused(await deliver(client, token=issuer.token(kid="rsa-2")), 401)
    assert issuer.jwks_requests == 3  # one per function, plus one refresh after the interval


async def test_rotated_key_is_picked_up(issuer: Issuer) -> None:
    """A token signed by a key published after the first fetch is accepted after one refresh."""
    async with oidc_client(issuer, oidc_jwks_min_refresh_seconds=0) as client:
        assert (await deliver(client, token=issuer.token())).status_code == 200
        issuer.published.add("rsa-2")
        assert (await deliver(client, token=issuer.token(kid="rsa-2"))).status_code == 200
    assert issuer.jwks_requests == 2


async def test_many_unknown_kids_at_once_fetch_once(issuer: Issuer) -> None:
    """Concurrent deliveries with unknown keys share one JWKS fetch (refresh is bounded)."""
    async with oidc_client(issuer, oidc_jwks_min_refresh_seconds=60) as client:
        responses = await asyncio.gather(
            *(deliver(client, token=issuer.token(kid="rsa-2")) for _ in range(20))
        )
    assert {r.status_code for r in responses} == {401}
    assert issuer.jwks_requests == 1


async def test_forbidden_subject_is_403(issuer: Issuer) -> None:
    """A valid token whose `sub` has no allowed prefix is refused with 403."""
    recorder = Recorder()
    allowed = ["system:serviceaccount:knative-eventing:"]
    async with oidc_client(issuer, recorder, oidc_allowed_subjects=allowed) as client:
        ok = await deliver(client, token=issuer.token(sub=SUBJECT))
        refused = await deliver(
            client, token=issuer.token(sub="system:serviceaccount:default:intruder")
        )
    assert ok.status_code == 200
    assert_refused(refused, 403)
    assert len(recorder.calls) == 1


async def test_unreachable_issuer_is_503_not_open(issuer: Issuer) -> None:
    """An issuer nobody answers for is a 503 with Retry-After (the broker retries), not a 2xx."""
    recorder = Recorder()
    dead = f"http://127.0.0.1:{free_port()}"
    async with oidc_client(issuer, recorder, oidc_issuer=dead, oidc_http_timeout_seconds=1) as c:
        response = await deliver(c, token=issuer.token(iss=dead))
        again = await deliver(c, token=issuer.token(iss=dead))
    assert_refused(response, 503)
    assert "retry-after" in response.headers
    assert_refused(again, 503)
    assert recorder.calls == []


async def test_failing_issuer_is_503_then_recovers(issuer: Issuer) -> None:
    """An issuer answering 500 is a 503; once it is back (after the interval) tokens pass."""
    issuer.failing = True
    clock = Clock(now=time.monotonic())
    async with oidc_client(issuer, clock=clock, oidc_jwks_min_refresh_seconds=0.1) as client:
        assert_refused(await deliver(client, token=issuer.token()), 503)
        issuer.failing = False
        clock.now += 0.15
        assert (await deliver(client, token=issuer.token())).status_code == 200


async def test_jwks_url_without_discovery(issuer: Issuer) -> None:
    """OIDC_JWKS_URL alone works: no discovery, `iss` not required."""
    async with oidc_client(issuer, oidc_issuer=None, oidc_jwks_url=f"{issuer.url}/keys") as c:
        response = await deliver(c, token=issuer.token(iss="anything"))
    assert response.status_code == 200


def test_audience_without_issuer_fails_fast() -> None:
    """OIDC_AUDIENCE without OIDC_ISSUER or OIDC_JWKS_URL stops the function from starting."""
    with pytest.raises(ValueError, match="OIDC_ISSUER"):
        make_app(settings_for(oidc_audience=AUDIENCE))


async def test_deliveries_are_open_without_oidc_audience() -> None:
    """Without OIDC_AUDIENCE nothing is checked (local development)."""
    app = make_app(settings_for())
    async with app_client(app) as client:
        response = await deliver(client, token=None)
    assert response.status_code == 200
    assert app.state.runtime.delivery_auth is None


async def test_dead_letter_sink_requires_a_token_too(issuer: Issuer, tmp_path: Path) -> None:
    """POST /deadletter is a delivery like POST /: 401 without a token, accepted with one."""
    async with oidc_client(issuer, data_dir=tmp_path) as client:
        headers = binary_headers()
        refused = await client.post("/deadletter", headers=headers, content=dumps(query()))
        headers["authorization"] = f"Bearer {issuer.token()}"
        accepted = await client.post("/deadletter", headers=headers, content=dumps(query()))
    assert_refused(refused, 401)
    assert refused.headers["www-authenticate"] == BEARER
    assert accepted.status_code < 300


async def test_oversized_token_is_401_without_parsing(issuer: Issuer) -> None:
    """A bearer token over 16 KiB is refused before any parsing or fetching."""
    async with oidc_client(issuer) as client:
        response = await deliver(client, token="e" * 20_000)
    assert_refused(response, 401)
    assert response.json()["detail"] == "the bearer token is too long"  # not a parse error
    assert issuer.jwks_requests == 0


async def test_discovery_naming_another_issuer_is_503(issuer: Issuer) -> None:
    """A discovery document whose `issuer` is not OIDC_ISSUER is not trusted (503, retried)."""
    issuer.claimed_issuer = "https://impostor.example"
    async with oidc_client(issuer) as client:
        assert_refused(await deliver(client, token=issuer.token()), 503)
    assert issuer.jwks_requests == 0


async def test_jwks_without_usable_keys_is_503(issuer: Issuer) -> None:
    """A JWKS with no signing key we can use is a 503, not an open door."""
    issuer.published = set()
    async with oidc_client(issuer) as client:
        assert_refused(await deliver(client, token=issuer.token()), 503)


async def test_jwks_requests_carry_the_service_account_token(
    issuer: Issuer, tmp_path: Path
) -> None:
    """OIDC_JWKS_TOKEN_FILE is sent as a bearer on JWKS requests (the in-cluster API server)."""
    token_file = tmp_path / "token"
    token_file.write_text("sa-token-for-jwks\n")
    async with oidc_client(issuer, oidc_jwks_token_file=token_file) as client:
        assert (await deliver(client, token=issuer.token())).status_code == 200
    assert issuer.jwks_authorization == "Bearer sa-token-for-jwks"


async def test_old_keys_are_refetched_and_kept_if_the_issuer_is_down(issuer: Issuer) -> None:
    """Past OIDC_JWKS_MAX_AGE_SECONDS keys are refetched; a failed refetch keeps the old ones."""
    overrides: dict[str, Any] = {
        "oidc_jwks_max_age_seconds": 0.1,
        "oidc_jwks_min_refresh_seconds": 0,
    }
    clock = Clock(now=time.monotonic())
    async with oidc_client(issuer, clock=clock, **overrides) as client:
        assert (await deliver(client, token=issuer.token())).status_code == 200
        clock.now += 0.15
        assert (await deliver(client, token=issuer.token(kid="ec-1"))).status_code == 200
        assert issuer.jwks_requests == 2
        issuer.failing = True
        clock.now += 0.15
        assert (
            await deliver(client, token=issuer.token(kid="rsa-1", sub=SUBJECT + "-2"))
        ).status_code == 200


@pytest.fixture
def https_issuer() -> Iterator[Issuer]:
    """An issuer served over HTTPS, its certificate from a CA of the test's own."""
    with Issuer(trustme.CA()).serving() as issuer:
        yield issuer


async def test_the_in_cluster_configuration_fetches_keys_over_https_trusting_the_ca_file(
    https_issuer: Issuer, tmp_path: Path
) -> None:
    """What eventing/configmap.yaml sets: an https issuer, its CA (OIDC_CA_FILE, the service
    CA in a pod) and the service-account token for the JWKS request (OIDC_JWKS_TOKEN_FILE)."""
    assert https_issuer.ca is not None
    ca_file = tmp_path / "ca.crt"
    https_issuer.ca.cert_pem.write_to_path(str(ca_file))
    token_file = tmp_path / "token"
    token_file.write_text("sa-token-for-jwks\n")
    overrides = {"oidc_ca_file": ca_file, "oidc_jwks_token_file": token_file}
    async with oidc_client(https_issuer, **overrides) as client:
        accepted = await deliver(client, token=https_issuer.token())
        refused = await deliver(client, token=https_issuer.token(aud="someone-else"))
    assert accepted.status_code == 200
    assert accepted.headers["ce-type"] == RESPONSE
    assert_refused(refused, 401)
    assert https_issuer.jwks_authorization == "Bearer sa-token-for-jwks"


@pytest.mark.parametrize("ca", ["none", "another"])
async def test_an_issuer_certificate_the_function_cannot_verify_is_503_never_open(
    https_issuer: Issuer, tmp_path: Path, ca: str
) -> None:
    """Without OIDC_CA_FILE (the system's CAs) or with the wrong one, the JWKS cannot be
    fetched: 503 + Retry-After (the broker retries), no event handled, no key trusted."""
    overrides: dict[str, Any] = {}
    if ca == "another":
        ca_file = tmp_path / "other-ca.crt"
        trustme.CA().cert_pem.write_to_path(str(ca_file))
        overrides["oidc_ca_file"] = ca_file
    recorder = Recorder()
    async with oidc_client(https_issuer, recorder, **overrides) as client:
        response = await deliver(client, token=https_issuer.token())
    assert_refused(response, 503)
    assert response.headers["retry-after"] == "5"
    assert recorder.calls == []
    assert https_issuer.jwks_requests == 0
