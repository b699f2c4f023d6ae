"""The facade and WebSocket: API keys, OIDC tokens, what stays open, what never leaks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from eventfn.core.errors import Forbidden, Unauthenticated
from eventfn.facade.guards import authenticate_websocket
from eventfn.testing import app_client
from tests.helpers.oidc import AUDIENCE, Issuer
from tests.helpers.support import (
    QUERY,
    binary_headers,
    dumps,
    make_app,
    query,
    running_server,
)
from tests.helpers.support import suite_settings as settings_for

KEYS = ["key-one-5f2c9a7e", "key-two-8d41b3c6"]
QUERY_PATH = "/api/v1/query"
# API descriptions are documentation, open like /openapi.json (they hold no user data).
OPEN_DOCS = ["/api/v1/asyncapi.json"]
# The WWW-Authenticate challenges (RFC 9110 11.6.1, RFC 6750 3).
BEARER = 'Bearer realm="knative-python-backend"'
API_KEY = 'ApiKey header="X-API-Key"'


@contextlib.asynccontextmanager
async def facade(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app(settings_for(**overrides))) as client:
        yield client


@pytest.fixture
async def api_key_client() -> AsyncIterator[httpx.AsyncClient]:
    """A function with API_KEYS set (and OIDC off)."""
    async with facade(api_keys=KEYS) as client:
        yield client


async def ask(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(QUERY_PATH, json=query("hi"), headers=headers or {})


async def test_missing_credentials_is_401(api_key_client: httpx.AsyncClient) -> None:
    """No key at all: 401 problem+json."""
    response = await ask(api_key_client)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "wrong"},
        {"x-api-key": ""},
        {"authorization": "Bearer wrong"},
        {"authorization": f"Basic {KEYS[0]}"},
        {"x-api-key": KEYS[0][:-1]},
    ],
    ids=["wrong key", "empty key", "wrong bearer", "other scheme", "prefix of a key"],
)
async def test_wrong_credentials_are_401(
    api_key_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A key that is not one of API_KEYS is 401 (unauthenticated), never an echo of the key."""
    response = await ask(api_key_client, headers)
    assert response.status_code == 401
    assert KEYS[0] not in response.text


async def test_401_offers_bearer_and_the_api_key_header(api_key_client: httpx.AsyncClient) -> None:
    """Where API keys are accepted, the challenge names Bearer and then `X-API-Key`."""
    response = await ask(api_key_client)
    assert response.headers.get_list("www-authenticate") == [f"{BEARER}, {API_KEY}"]


async def test_wrong_bearer_credentials_are_an_invalid_token(
    api_key_client: httpx.AsyncClient,
) -> None:
    """Refused `Authorization: Bearer` credentials add RFC 6750's `error="invalid_token"`."""
    response = await ask(api_key_client, {"authorization": "Bearer wrong"})
    assert response.headers["www-authenticate"] == f'{BEARER}, error="invalid_token", {API_KEY}'


async def test_wrong_api_key_is_not_an_invalid_token(api_key_client: httpx.AsyncClient) -> None:
    """A refused `X-API-Key` is no bearer token: the challenge carries no error code."""
    response = await ask(api_key_client, {"x-api-key": "wrong"})
    assert response.headers["www-authenticate"] == f"{BEARER}, {API_KEY}"


@pytest.mark.parametrize("key", KEYS)
async def test_x_api_key_is_accepted(api_key_client: httpx.AsyncClient, key: str) -> None:
    """Each configured key works in `X-API-Key`."""
    response = await ask(api_key_client, {"x-api-key": key})
    assert response.status_code == 200
    assert response.json()["result"] == {"message": "Processed query: hi"}


async def test_bearer_api_key_is_accepted(api_key_client: httpx.AsyncClient) -> None:
    """A key works as `Authorization: Bearer <key>` too."""
    response = await ask(api_key_client, {"authorization": f"Bearer {KEYS[1]}"})
    assert response.status_code == 200


async def test_every_api_route_is_protected(api_key_client: httpx.AsyncClient) -> None:
    """Every /api/v1 route of the OpenAPI document but the AsyncAPI document needs credentials."""
    spec = (await api_key_client.get("/openapi.json")).json()
    paths = [p for p in spec["paths"] if p.startswith("/api/v1/") and p not in OPEN_DOCS]
    assert QUERY_PATH in paths
    for path in paths:
        for method in spec["paths"][path]:
            concrete = path.replace("{event_type}", QUERY)
            concrete = concrete.replace("{", "").replace("}", "")
            response = await api_key_client.request(method.upper(), concrete)
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"].startswith(BEARER), (method, path)


@pytest.mark.parametrize(
    "path",
    ["/health/liveness", "/health/readiness", "/openapi.json", "/docs", "/metrics", *OPEN_DOCS],
)
async def test_operational_paths_stay_open(api_key_client: httpx.AsyncClient, path: str) -> None:
    """Probes, metrics and the API docs need no credentials (they carry no user data)."""
    response = await api_key_client.get(path)
    assert response.status_code != 401
    assert response.status_code != 403


async def test_openapi_documents_both_schemes(api_key_client: httpx.AsyncClient) -> None:
    """The OpenAPI document declares the API key and bearer schemes and the 401 answer."""
    spec = (await api_key_client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"apiKey", "http"}
    assert "401" in spec["paths"][QUERY_PATH]["post"]["responses"]


async def test_facade_is_open_without_keys_or_oidc() -> None:
    """Without API_KEYS and OIDC_AUDIENCE the facade needs nothing (local development)."""
    async with facade() as client:
        assert (await ask(client)).status_code == 200


async def test_api_keys_do_not_guard_deliveries(api_key_client: httpx.AsyncClient) -> None:
    """API keys are for people; the broker cannot send them, so POST / stays as OIDC says."""
    response = await api_key_client.post("/", headers=binary_headers(), content=dumps(query()))
    assert response.status_code == 200


def test_keys_are_kept_only_as_digests() -> None:
    """The runtime holds SHA-256 digests of the keys, never the keys."""
    app = make_app(settings_for(api_keys=KEYS))
    auth = app.state.runtime.facade_auth
    assert len(auth.digests) == 2
    assert all(len(d) == 32 for d in auth.digests)
    assert not any(k.encode() in d for k in KEYS for d in auth.digests)
    assert not any(k in repr(auth) for k in KEYS)


class TestOIDCOnTheFacade:
    """With OIDC on, a service-account token works wherever an API key does."""

    async def test_jwt_bearer_is_accepted(self, issuer: Issuer) -> None:
        """A valid token for OIDC_AUDIENCE passes the facade alongside API keys."""
        async with facade(api_keys=KEYS, oidc_audience=AUDIENCE, oidc_issuer=issuer.url) as c:
            response = await ask(c, {"authorization": f"Bearer {issuer.token()}"})
        assert response.status_code == 200

    async def test_bad_jwt_is_401(self, issuer: Issuer) -> None:
        """A token for another audience is 401."""
        async with facade(api_keys=KEYS, oidc_audience=AUDIENCE, oidc_issuer=issuer.url) as c:
            response = await ask(c, {"authorization": f"Bearer {issuer.token(aud='other')}"})
        assert response.status_code == 401

    async def test_bad_jwt_is_challenged_as_invalid_token(self, issuer: Issuer) -> None:
        """With OIDC alone, a refused token is challenged for Bearer only, as `invalid_token`."""
        async with facade(oidc_audience=AUDIENCE, oidc_issuer=issuer.url) as c:
            response = await ask(c, {"authorization": f"Bearer {issuer.token(aud='other')}"})
        assert response.headers["www-authenticate"] == f'{BEARER}, error="invalid_token"'

    async def test_oidc_alone_challenges_for_bearer_only(self, issuer: Issuer) -> None:
        """Without API_KEYS the challenge offers no API key header."""
        async with facade(oidc_audience=AUDIENCE, oidc_issuer=issuer.url) as c:
            response = await ask(c)
        assert response.headers["www-authenticate"] == BEARER

    async def test_forbidden_subject_is_403(self, issuer: Issuer) -> None:
        """A valid token whose subject is not allowed is 403 on the facade too."""
        async with facade(
            oidc_audience=AUDIENCE,
            oidc_issuer=issuer.url,
            oidc_allowed_subjects=["system:serviceaccount:ui:"],
        ) as c:
            response = await ask(c, {"authorization": f"Bearer {issuer.token()}"})
        assert response.status_code == 403

    async def test_oidc_alone_protects_the_facade(self, issuer: Issuer) -> None:
        """With OIDC_AUDIENCE but no API_KEYS, the facade requires a token."""
        async with facade(oidc_audience=AUDIENCE, oidc_issuer=issuer.url) as c:
            assert (await ask(c)).status_code == 401
            assert (await ask(c, {"x-api-key": "anything"})).status_code == 401
            token = issuer.token()
            assert (await ask(c, {"authorization": f"Bearer {token}"})).status_code == 200


def handshake(app: Any, headers: dict[str, str] | None = None, query_string: str = "") -> WebSocket:
    """The WebSocket object a route would see for this handshake (not yet accepted)."""
    scope = {
        "type": "websocket",
        "path": "/api/v1/ws",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "query_string": query_string.encode(),
        "app": app,
    }

    async def nothing() -> dict[str, Any]:
        raise AssertionError("the handshake must not be read")

    async def refuse(_: Any) -> None:
        raise AssertionError("nothing may be sent during authentication")

    return WebSocket(scope, nothing, refuse)


class TestWebSocketHandshake:
    """`authenticate_websocket` decides before `accept`, from headers or `?token=`."""

    async def test_no_credentials_are_refused(self) -> None:
        """A handshake without credentials raises Unauthenticated."""
        app = make_app(settings_for(api_keys=KEYS))
        with pytest.raises(Unauthenticated):
            await authenticate_websocket(handshake(app))

    @pytest.mark.parametrize(
        ("headers", "query_string"),
        [
            ({"x-api-key": KEYS[0]}, ""),
            ({"authorization": f"Bearer {KEYS[1]}"}, ""),
            ({}, f"token={KEYS[0]}"),
        ],
        ids=["x-api-key", "bearer", "token query parameter"],
    )
    async def test_each_way_of_presenting_a_key_works(
        self, headers: dict[str, str], query_string: str
    ) -> None:
        """A key in X-API-Key, in a Bearer header or in `?token=` is accepted."""
        app = make_app(settings_for(api_keys=KEYS))
        await authenticate_websocket(handshake(app, headers, query_string))

    async def test_wrong_token_parameter_is_refused(self) -> None:
        """A wrong `?token=` raises Unauthenticated."""
        app = make_app(settings_for(api_keys=KEYS))
        with pytest.raises(Unauthenticated):
            await authenticate_websocket(handshake(app, query_string="token=nope"))

    async def test_jwt_token_parameter_is_verified(self, issuer: Issuer) -> None:
        """A JWT in `?token=` is verified against the issuer (a forbidden subject raises 403)."""
        settings = settings_for(
            oidc_audience=AUDIENCE,
            oidc_issuer=issuer.url,
            oidc_allowed_subjects=["system:serviceaccount:knative-eventing:"],
        )
        app = make_app(settings)
        async with app.lifespan_context():
            await authenticate_websocket(handshake(app, query_string=f"token={issuer.token()}"))
            stranger = issuer.token(sub="system:serviceaccount:x:y")
            with pytest.raises(Forbidden):
                await authenticate_websocket(handshake(app, query_string=f"token={stranger}"))

    async def test_open_function_lets_everyone_in(self) -> None:
        """Without API_KEYS and OIDC_AUDIENCE the handshake is not checked."""
        await authenticate_websocket(handshake(make_app(settings_for())))


@pytest.mark.server
def test_logs_never_carry_keys_or_tokens(issuer: Issuer) -> None:
    """A real server, fed good and bad keys and tokens at debug level, never prints one."""
    good_token, bad_token = issuer.token(), issuer.token(aud="someone-else")
    env = {
        "API_KEYS": ",".join(KEYS),
        "OIDC_AUDIENCE": AUDIENCE,
        "OIDC_ISSUER": issuer.url,
        "LOG_LEVEL": "debug",
    }
    secrets = [*KEYS, "wrong-key-0b7e1d", good_token, bad_token]
    with running_server(env) as server:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            statuses = [
                http.post(QUERY_PATH, json=query(), headers={"x-api-key": KEYS[0]}).status_code,
                http.post(QUERY_PATH, json=query(), headers={"x-api-key": secrets[2]}).status_code,
                http.post(
                    QUERY_PATH, json=query(), headers={"authorization": f"Bearer {bad_token}"}
                ).status_code,
                http.post(
                    "/",
                    content=dumps(query()),
                    headers={**binary_headers(), "authorization": f"Bearer {good_token}"},
                ).status_code,
                http.post(
                    "/",
                    content=dumps(query()),
                    headers={**binary_headers(), "authorization": f"Bearer {bad_token}"},
                ).status_code,
            ]
        ws_url = server.url.replace("http://", "ws://") + "/api/v1/ws?token="
        with connect(ws_url + KEYS[1]) as ws:  # a browser's way: the key in the query string
            ws.send('{"type": "ping"}')
            assert "pong" in str(ws.recv(timeout=5))
        with pytest.raises(InvalidStatus):
            connect(ws_url + secrets[2]).close()
        output = server.stop()
    assert statuses == [200, 401, 401, 200, 401]
    assert "/api/v1/ws?token=[redacted]" in output  # uvicorn's lines, without the token
    assert "jwks_fetched" in output  # the server did log around authentication
    for secret in secrets:
        assert secret not in output
        for part in secret.split("."):
            assert len(part) < 16 or part not in output


async def test_error_bodies_carry_no_traceback_or_path(api_key_client: httpx.AsyncClient) -> None:
    """401, 404, 405 and 400 bodies say what is wrong, never where in the code."""
    key = {"x-api-key": KEYS[0]}
    responses = [
        await ask(api_key_client, {"x-api-key": "nope"}),
        await api_key_client.get("/nowhere"),
        await api_key_client.put("/", content=b"x"),
        await api_key_client.post(QUERY_PATH, content=b"{not json", headers=key),
        await api_key_client.post(QUERY_PATH, json={"query": ""}, headers=key),
    ]
    for response in responses:
        assert response.status_code in (400, 401, 404, 405, 415, 422)
        for marker in ("Traceback", 'File "', ".py", "/work/", "site-packages"):
            assert marker not in response.text
