"""The fault suite: real processes, a Redis of our own frozen, killed and restarted, a sink that
hangs and fails on cue. It asserts invariants, not timings:

- every accepted event is handled at least once and answered (no dead letter of an event that
  never ran); no 5xx but 503 and 504;
- nothing is handled twice while its record lives;
- every facade answer is published at least once, through a hanging sink, a failing one and a
  kill -9 of the process.

`make chaos` runs the `chaos` marker alone; `make test` (and CI) runs it with the rest. Bounded
loops, loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.helpers.faults import OwnRedis, own_redis, recording_sink
from tests.helpers.support import ServerProcess, new_id, query
from tests.system.test_claims import FAST_BROKER, broker

pytestmark = [pytest.mark.chaos, pytest.mark.server, pytest.mark.redis]


def handled_ids(log: str) -> Counter[str]:
    """How many times each event id ran its handler, from the ingress's log lines."""
    runs: Counter[str] = Counter()
    for line in log.splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            doc = orjson.loads(line)
            if isinstance(doc, dict) and doc.get("event") == "event" and doc.get("outcome") == "ok":
                runs[doc["id"]] += 1
    return runs


@contextlib.contextmanager
def function_on(redis: OwnRedis, tmp_path: Path, **env: str) -> Iterator[ServerProcess]:
    server = ServerProcess(
        {
            "REDIS_URL": redis.url,
            "REDIS_TIMEOUT_SECONDS": "0.3",
            "DEDUPE_LEASE_SECONDS": str(FAST_BROKER.claim_lease()),
            "DATA_DIR": str(tmp_path),
            **env,
        }
    ).start()
    try:
        yield server
    finally:
        server.stop()


async def test_broker_traffic_through_a_frozen_then_restarted_redis(tmp_path: Path) -> None:
    """Redis frozen past its timeout, then killed and restarted: every event handled, once."""
    with own_redis() as redis, function_on(redis, tmp_path) as server:
        ids = [new_id() for _ in range(60)]

        async def spread(n: int) -> list[int]:
            await asyncio.sleep(n * 0.05)  # spread over both faults, which run on real time
            async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as client:
                return await broker(client, f"q{n}", FAST_BROKER, event_id=ids[n])

        deliveries = asyncio.gather(*(spread(n) for n in range(len(ids))))
        # A real redis-server frozen (SIGSTOP), thawed, then restarted while the broker's
        # deliveries run: its faults and the client timeouts they cause are on real time.
        await asyncio.sleep(0.5)  # deliveries under way
        redis.freeze()
        await asyncio.sleep(1.0)  # frozen past the client timeout
        redis.thaw()
        await asyncio.sleep(0.5)  # thawed, then killed and restarted
        redis.restart()
        results = await deliveries
        log = server.stop()
    statuses = {s for r in results for s in r}
    assert [r for r in results if r[-1] >= 300] == []  # nothing dead-lettered
    assert statuses <= {200, 409, 503, 504}
    runs = handled_ids(log)
    assert all(runs[i] >= 1 for i in ids)
    assert max(runs.values()) == 1


async def test_every_facade_answer_is_published_through_sink_faults_and_kill_9(
    tmp_path: Path,
) -> None:
    """Sink hanging, then failing, the process killed, then all well: every answer arrives."""
    env = {"PUBLISH_TIMEOUT_SECONDS": "0.5", "PUBLISH_ATTEMPTS": "2",
           "PUBLISH_BACKOFF_SECONDS": "0.05", "PUBLISH_BACKOFF_MAX_SECONDS": "0.1",
           "OUTBOX_POLL_SECONDS": "0.2", "OUTBOX_BACKOFF_MAX_SECONDS": "0.5"}  # fmt: skip
    texts = [f"answer-{n}" for n in range(30)]
    with own_redis() as redis, recording_sink("hang") as sink:
        env["K_SINK"] = sink.url
        first = ServerProcess({"REDIS_URL": redis.url, "DATA_DIR": str(tmp_path), **env}).start()
        try:
            async with httpx.AsyncClient(base_url=first.url) as client:
                for n, text in enumerate(texts):
                    if n == 10:
                        sink.set_mode("fail")
                    response = await client.post("/api/v1/query", json=query(text))
                    assert response.status_code == 200
        finally:
            first.kill()  # kill -9 with publishes in flight, parked and failing
        sink.set_mode("ok")
        with function_on(redis, tmp_path, **env):
            await sink.until(lambda s: len(s.bodies) >= len(texts), within=40)
    published = {orjson.loads(body)["result"]["message"] for body in sink.bodies.values()}
    assert published == {f"Processed query: {text}" for text in texts}
