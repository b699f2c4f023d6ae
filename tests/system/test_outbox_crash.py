"""The write-ahead outbox under a real crash: kill -9 while a publish is in flight loses nothing.

A real `python -m eventfn` publishes a facade answer to a sink that hangs; the process is killed
with SIGKILL while the attempt is in flight; a new process on the same DATA_DIR (or REDIS_URL)
starts with the sink healthy, and the answer arrives.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.helpers import support
from tests.helpers.faults import recording_sink
from tests.helpers.support import ServerProcess, query

pytestmark = [pytest.mark.chaos, pytest.mark.server]

# Short fast path: 2 attempts of at most 1 s, 0.2 s apart: its lease ends ~3.5 s after the publish.
FAST = {
    "PUBLISH_TIMEOUT_SECONDS": "1",
    "PUBLISH_ATTEMPTS": "2",
    "PUBLISH_BACKOFF_SECONDS": "0.1",
    "PUBLISH_BACKOFF_MAX_SECONDS": "0.2",
    "OUTBOX_POLL_SECONDS": "0.2",
}


def store_env(store: str, tmp_path: Path) -> dict[str, str]:
    env = {"DATA_DIR": str(tmp_path)}
    if store == "redis":
        env["REDIS_URL"] = support.redis_url(8)
    return env


@pytest.mark.parametrize("store", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_publish_in_flight_survives_kill_9_and_arrives_after_restart(
    store: str, tmp_path: Path
) -> None:
    """Killed mid-publish, restarted on the same store, sink healthy: the answer is delivered."""
    with recording_sink("hang") as sink:
        env = {"K_SINK": sink.url, **FAST, **store_env(store, tmp_path)}
        first = ServerProcess(env).start()
        try:
            async with httpx.AsyncClient(base_url=first.url) as client:
                response = await client.post(
                    "/api/v1/query", json=query("crash"), headers={"x-request-id": "crash-1"}
                )
            assert response.status_code == 200
            await sink.until(lambda s: len(s.arrived) >= 1, within=10)  # the attempt is in flight
        finally:
            first.kill()
        [published] = sink.snapshot()[0]
        assert sink.snapshot()[1] == []  # nothing was delivered before the crash
        sink.set_mode("ok")
        second = ServerProcess(env).start()
        try:
            await sink.until(lambda s: published in s.accepted, within=20)
        finally:
            second.stop()


async def test_emitted_events_survive_kill_9_and_a_redelivery_sends_the_same_ids(
    tmp_path: Path,
) -> None:
    """A handler's emitted events are written ahead before the 200: killed with both in
    flight, restarted, they arrive; the broker's redelivery of the event emits nothing new."""
    event = {
        "ce-specversion": "1.0",
        "ce-id": "order-crash-1",
        "ce-source": "/shop",
        "ce-type": "dev.eventfn.tests.order.placed",
        "content-type": "application/json",
        "prefer": "reply",
    }
    with recording_sink("hang") as sink:
        env = {
            "K_SINK": sink.url,
            "FUNCTION_REGISTRY": "tests.functions.emitting:registry",
            **FAST,
            **store_env("sqlite", tmp_path),
        }
        first = ServerProcess(env).start()
        try:
            async with httpx.AsyncClient(base_url=first.url) as client:
                response = await client.post("/", headers=event, content=b'{"sku": "book"}')
            assert response.status_code == 200
            await sink.until(lambda s: len(s.arrived) >= 2, within=10)  # both in flight
        finally:
            first.kill()
        emitted = set(sink.snapshot()[0])
        assert len(emitted) == 2
        assert sink.snapshot()[1] == []
        sink.set_mode("ok")
        second = ServerProcess(env).start()
        try:
            await sink.until(lambda s: emitted <= set(s.accepted), within=20)
            # The broker redelivers (the answer was lost with the process): handled again on a
            # new process, whose dedupe store never saw it, it emits the same two ids.
            async with httpx.AsyncClient(base_url=second.url) as client:
                again = await client.post("/", headers=event, content=b'{"sku": "book"}')
            assert again.status_code == 200
            await sink.until(lambda s: len(s.accepted) >= 4, within=20)
        finally:
            second.stop()
    assert set(sink.snapshot()[1]) == emitted
