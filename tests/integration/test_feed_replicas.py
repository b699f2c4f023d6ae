"""The live feed across replicas: two real `python -m eventfn` processes sharing one Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.live import receive, send, socket
from tests.helpers.support import (
    RESPONSE,
    ServerProcess,
    binary_headers,
    dumps,
    query,
    redis_url,
    until,
)

pytestmark = [pytest.mark.server, pytest.mark.redis]


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Replicas A and B on Redis DB 14, probing for listeners every 100 ms."""
    env = {"REDIS_URL": redis_url(14), "FEED_PROBE_SECONDS": "0.1", "LOG_LEVEL": "warning"}
    a, b = ServerProcess(env), ServerProcess(env)
    a.start()
    try:
        b.start()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


async def test_a_ui_on_one_replica_sees_events_handled_by_another(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """Subscribe on A, deliver events to B: A's socket receives B's request and reply events."""
    a, b = replicas
    async with socket(a.url.removeprefix("http://")) as ws:
        await send(ws, {"type": "subscribe", "types": []})
        assert (await receive(ws))["type"] == "subscribed"
        # B learns that someone listens within one probe period; until then it publishes
        # nothing, so keep delivering (bounded) until the first event crosses over.
        seen: list[dict[str, str]] = []
        deadline = time.monotonic() + 10
        async with httpx.AsyncClient(base_url=b.url) as client:
            n = 0
            while not seen:
                assert time.monotonic() < deadline, "no event crossed from B to A"
                n += 1
                headers = binary_headers(id=f"cross-{n}")
                response = await client.post("/", headers=headers, content=dumps(query(f"{n}")))
                assert response.status_code == 200
                try:
                    seen.append((await receive(ws, wait=0.3))["event"])
                except TimeoutError:
                    continue
        reply = (await receive(ws))["event"]
    assert seen[0]["id"] == f"cross-{n}"
    assert reply["type"] == RESPONSE
    assert reply["data"]["result"]["message"] == f"Processed query: {n}"


async def test_events_handled_on_the_subscribed_replica_arrive_once(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """A's own events reach A's socket directly, not a second time through Redis."""
    a, b = replicas
    async with (
        socket(a.url.removeprefix("http://")) as ws,
        socket(b.url.removeprefix("http://")) as other,
    ):
        for connection in (ws, other):
            await send(connection, {"type": "subscribe", "types": [RESPONSE]})
            await receive(connection)
        async with httpx.AsyncClient(base_url=a.url) as client:
            # A publishes to Redis once its probe (in its own process) has seen B's subscriber:
            # nothing to await but a reply of A's crossing over, so warm up until one does.
            n = 0

            async def crossed() -> bool:
                nonlocal n
                n += 1
                text = f"warm-{n}"
                await client.post("/", headers=binary_headers(id=text), content=dumps(query(text)))
                answered = f"Processed query: {text}"
                assert (await receive(ws))["event"]["data"]["result"]["message"] == answered
                while True:  # B may still get earlier ones first (Redis keeps A's order)
                    try:
                        got = (await receive(other, wait=0.3))["event"]
                    except TimeoutError:
                        return False
                    if got["data"]["result"]["message"] == answered:
                        return True

            await until(crossed, within=10, what="no reply crossed from A to B")
            await client.post("/", headers=binary_headers(id="once"), content=dumps(query()))
        first = await receive(ws)
        assert first["event"]["type"] == RESPONSE
        assert (await receive(other))["event"]["id"] == first["event"]["id"]  # B got it too
        # An absence on a real process's socket: no event says "nothing more is coming".
        with pytest.raises(TimeoutError):
            await receive(ws, wait=0.5)
