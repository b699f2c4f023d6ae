"""Redis over TLS, as managed Redis services and in-cluster operators with TLS on serve it.

`REDIS_URL=rediss://…` with redis-py's TLS options in its query: `ssl_ca_certs` (the CA that
signed the server's certificate, mounted from a Secret), and `ssl_certfile` + `ssl_keyfile` where
Redis demands a client certificate. Every Redis component goes through it: the dedupe store (its
multiplexed connection included), the outbox, the dead letters, readiness. A certificate the
function cannot verify is an outage (503, not ready), never a connection without verification.
Each test runs a TLS-only `redis-server` of its own (Debian's is built with TLS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from eventfn.binding import Event
from eventfn.stores.deadletters import RedisDeadLetterStore
from eventfn.stores.outbox import RedisOutbox
from eventfn.stores.redis import redis_client
from tests.helpers.faults import OwnRedis, RedisCertificates, own_redis
from tests.helpers.support import (
    QUERY,
    RESPONSE,
    ServerProcess,
    binary_headers,
    deliver,
    dumps,
    new_id,
    query,
    suite_client,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def certificates(tmp_path: Path) -> RedisCertificates:
    return RedisCertificates(tmp_path)


@pytest.fixture
def tls_redis(certificates: RedisCertificates) -> Iterator[OwnRedis]:
    with own_redis(tls=certificates.server) as server:
        yield server


async def test_two_replicas_share_their_dedupe_over_tls(
    tls_redis: OwnRedis, certificates: RedisCertificates, tmp_path: Path
) -> None:
    """The second replica replays the first one's reply, read from Redis over TLS."""
    url = certificates.url(tls_redis)
    event_id = new_id()
    async with (
        suite_client(redis_url=url, data_dir=tmp_path / "a") as a,
        suite_client(redis_url=url, data_dir=tmp_path / "b") as b,
    ):
        assert (await a.get("/health/readiness")).status_code == 200
        first = await deliver(a, event_id, "over TLS", prefer="reply")
        second = await deliver(b, event_id, "over TLS", prefer="reply")
    assert first.status_code == second.status_code == 200
    assert first.headers["ce-type"] == RESPONSE
    assert second.headers["ce-id"] == first.headers["ce-id"]
    assert second.content == first.content


async def test_the_dead_letters_and_the_outbox_live_in_redis_over_tls(
    tls_redis: OwnRedis, certificates: RedisCertificates, tmp_path: Path
) -> None:
    """A dead letter the function stores is read back from Redis by a store of our own, and an
    event parked in the outbox over the same URL comes back due."""
    url = certificates.url(tls_redis)
    async with suite_client(redis_url=url, data_dir=tmp_path) as client:
        letter = {**binary_headers(id=new_id()), "ce-knativeerrorcode": "500"}
        stored = await client.post("/deadletter", headers=letter, content=dumps(query()))
        listed = await client.get("/api/v1/deadletters")
    assert stored.status_code == 202
    [item] = listed.json()["items"]
    assert item["event"]["id"] == letter["ce-id"]
    deadletters = RedisDeadLetterStore(redis_client(url, 1.0))
    outbox = RedisOutbox(redis_client(url, 1.0))
    try:
        found = await deadletters.get(item["id"])
        assert found is not None
        assert found.event.id == letter["ce-id"]
        event = Event({"specversion": "1.0", "id": new_id(), "source": "/tls", "type": QUERY})
        await outbox.park(event, attempts=1, delay=0, error="test")
        [parked] = await outbox.take_due(10, lease=5)
        assert parked.event.id == event.id
    finally:
        await deadletters.stop()
        await outbox.stop()


async def test_a_server_certificate_the_function_cannot_verify_is_an_outage(
    tls_redis: OwnRedis, certificates: RedisCertificates, tmp_path: Path
) -> None:
    """Without the CA that signed Redis' certificate: 503 + Retry-After and not ready, never a
    connection that skips verification."""
    untrusted = certificates.url(tls_redis, trusted=False)
    async with suite_client(redis_url=untrusted, data_dir=tmp_path) as client:
        delivered = await deliver(client, new_id(), "over TLS", prefer="reply")
        ready = await client.get("/health/readiness")
    assert delivered.status_code == 503
    assert delivered.headers["retry-after"] == "1"
    assert delivered.json()["type"].endswith("/store-unavailable")
    assert ready.status_code == 503


async def test_a_redis_demanding_a_client_certificate_gets_the_one_the_url_names(
    certificates: RedisCertificates, tmp_path: Path
) -> None:
    with own_redis(tls=certificates.server, auth_clients="yes") as server:
        anonymous = certificates.url(server)
        async with suite_client(redis_url=anonymous, data_dir=tmp_path / "anonymous") as client:
            refused = await deliver(client, new_id(), "over TLS", prefer="reply")
        with_cert = certificates.url(server, client_cert=True)
        async with suite_client(redis_url=with_cert, data_dir=tmp_path / "client") as client:
            accepted = await deliver(client, new_id(), "over TLS", prefer="reply")
            ready = await client.get("/health/readiness")
    assert refused.status_code == 503
    assert accepted.status_code == 200
    assert ready.status_code == 200


def test_a_managed_redis_with_tls_and_a_password_and_the_password_stays_out_of_the_logs(
    certificates: RedisCertificates,
) -> None:
    """`rediss://:PASSWORD@…` as managed services hand it out, to a real `python -m eventfn`:
    the right password is served, a wrong one is an outage (503, not ready), and neither
    appears in what the process prints."""
    secret, wrong = "s3cret-of-the-redis", "not-the-password"
    with own_redis(tls=certificates.server, password=secret) as server:
        outputs = {}
        for password in (secret, wrong):
            url = certificates.url(server, password=password)
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
