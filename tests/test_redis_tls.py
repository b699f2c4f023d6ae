"""Redis over TLS, as managed Redis services and in-cluster operators with TLS on serve it.

`REDIS_URL=rediss://…` with redis-py's TLS options in its query: `ssl_ca_certs` (the CA that
signed the server's certificate, mounted from a Secret), and `ssl_certfile` + `ssl_keyfile` where
Redis demands a client certificate. Every Redis component goes through it: the dedupe store (its
multiplexed connection included), the outbox, the dead letters, readiness. A certificate the
function cannot verify is an outage (503, not ready), never a connection without verification.
Each test runs a TLS-only `redis-server` of its own (Debian's is built with TLS).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from eventfn.stores.outbox import RedisOutbox
from eventfn.stores.redis import redis_client
from tests.faults import OwnRedis, own_redis
from tests.support import (
    RESPONSE,
    ServerProcess,
    binary_headers,
    client_for,
    dumps,
    make_app,
    new_id,
    query,
    test_settings,
)

pytestmark = pytest.mark.redis


class Certificates:
    """A CA, a certificate for the server at 127.0.0.1 and one for the function, as files."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.server_cert, self.server_key = self._issue(directory, "server", "127.0.0.1")
        self.client_cert, self.client_key = self._issue(
            directory, "client", "knative-python-backend"
        )

    def _issue(self, directory: Path, name: str, identity: str) -> tuple[Path, Path]:
        issued = self.ca.issue_cert(identity)
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        for blob in issued.cert_chain_pems:
            with cert.open("ab") as out:
                out.write(blob.bytes())
        issued.private_key_pem.write_to_path(str(key))
        return cert, key

    @property
    def server(self) -> tuple[Path, Path, Path]:
        return self.server_cert, self.server_key, self.ca_file

    def url(self, server: OwnRedis, *, client_cert: bool = False, trusted: bool = True) -> str:
        options = [f"ssl_ca_certs={self.ca_file}"] if trusted else []
        if client_cert:
            options += [f"ssl_certfile={self.client_cert}", f"ssl_keyfile={self.client_key}"]
        return server.url + ("?" + "&".join(options) if options else "")


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path)


@pytest.fixture
def tls_redis(certificates: Certificates) -> Iterator[OwnRedis]:
    with own_redis(tls=certificates.server) as server:
        yield server


@contextlib.asynccontextmanager
async def function_on(url: str, tmp: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = test_settings(redis_url=url, data_dir=tmp, **overrides)
    async with client_for(make_app(settings)) as client:
        yield client


async def deliver(client: httpx.AsyncClient, event_id: str) -> httpx.Response:
    headers = {**binary_headers(id=event_id), "prefer": "reply"}
    return await client.post("/", headers=headers, content=dumps(query("over TLS")))


async def test_two_replicas_share_their_dedupe_over_tls(
    tls_redis: OwnRedis, certificates: Certificates, tmp_path: Path
) -> None:
    """The second replica replays the first one's reply, read from Redis over TLS."""
    url = certificates.url(tls_redis)
    event_id = new_id()
    async with function_on(url, tmp_path / "a") as a, function_on(url, tmp_path / "b") as b:
        assert (await a.get("/health/readiness")).status_code == 200
        first = await deliver(a, event_id)
        second = await deliver(b, event_id)
    assert first.status_code == second.status_code == 200
    assert first.headers["ce-type"] == RESPONSE
    assert second.headers["ce-id"] == first.headers["ce-id"]
    assert second.content == first.content


async def test_the_dead_letters_and_the_outbox_live_in_redis_over_tls(
    tls_redis: OwnRedis, certificates: Certificates, tmp_path: Path
) -> None:
    url = certificates.url(tls_redis)
    async with function_on(url, tmp_path) as client:
        letter = {**binary_headers(id=new_id()), "ce-knativeerrorcode": "500"}
        stored = await client.post("/deadletter", headers=letter, content=dumps(query()))
        listed = await client.get("/api/v1/deadletters")
    assert stored.status_code == 202
    assert [x["event"]["id"] for x in listed.json()["items"]] == [letter["ce-id"]]
    outbox = RedisOutbox(redis_client(url, 1.0))
    try:
        assert await outbox.depth() == 0  # reachable, over the same TLS options
    finally:
        await outbox.stop()


async def test_a_server_certificate_the_function_cannot_verify_is_an_outage(
    tls_redis: OwnRedis, certificates: Certificates, tmp_path: Path
) -> None:
    """Without the CA that signed Redis' certificate: 503 + Retry-After and not ready, never a
    connection that skips verification."""
    async with function_on(certificates.url(tls_redis, trusted=False), tmp_path) as client:
        delivered = await deliver(client, new_id())
        ready = await client.get("/health/readiness")
    assert delivered.status_code == 503
    assert delivered.headers["retry-after"] == "1"
    assert delivered.json()["type"].endswith("/store-unavailable")
    assert ready.status_code == 503


async def test_a_redis_demanding_a_client_certificate_gets_the_one_the_url_names(
    certificates: Certificates, tmp_path: Path
) -> None:
    with own_redis(tls=certificates.server, auth_clients="yes") as server:
        anonymous = certificates.url(server)
        async with function_on(anonymous, tmp_path / "anonymous") as client:
            refused = await deliver(client, new_id())
        with_cert = certificates.url(server, client_cert=True)
        async with function_on(with_cert, tmp_path / "client") as client:
            accepted = await deliver(client, new_id())
            ready = await client.get("/health/readiness")
    assert refused.status_code == 503
    assert accepted.status_code == 200
    assert ready.status_code == 200


def test_a_managed_redis_with_tls_and_a_password_and_the_password_stays_out_of_the_logs(
    certificates: Certificates,
) -> None:
    """`rediss://:PASSWORD@…` as managed services hand it out, to a real `python -m eventfn`:
    the right password is served, a wrong one is an outage (503, not ready), and neither
    appears in what the process prints."""
    secret, wrong = "s3cret-of-the-redis", "not-the-password"
    with own_redis(tls=certificates.server, password=secret) as server:
        outputs = {}
        for password in (secret, wrong):
            url = certificates.url(server).replace("rediss://", f"rediss://:{password}@")
            function = ServerProcess({"REDIS_URL": url}).spawn().wait_alive()
            try:
                delivered = httpx.post(
                    function.url + "/",
                    headers={**binary_headers(id=new_id()), "prefer": "reply"},
                    content=dumps(query("over TLS")),
                    timeout=5,
                )
                ready = httpx.get(function.url + "/health/readiness", timeout=5)
            finally:
                outputs[password] = function.stop()
            expected = 200 if password == secret else 503
            assert (delivered.status_code, ready.status_code) == (expected, expected)
    assert "redis_unavailable" in outputs[wrong]
    for output in outputs.values():
        assert secret not in output
        assert wrong not in output
