"""Two real replicas (`python -m eventfn` processes) sharing one Redis behave like one function.

The in-process specification is tests/integration/test_redis_dedupe.py; this module proves the
same over real sockets and real processes, including a replica killed (SIGKILL) in the middle of
an event.
"""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers import support
from tests.helpers.support import ServerProcess, binary_headers, dumps, new_id, query
from tests.integration.test_drain import slow_functions, wait_for_file

pytestmark = [pytest.mark.server, pytest.mark.redis]


def post(url: str, event_id: str, text: str, **parameters: object) -> httpx.Response:
    return httpx.post(
        f"{url}/",
        headers=binary_headers(id=event_id),
        content=dumps(query(text, **parameters)),
        timeout=10,
    )


def test_a_redelivery_to_the_other_process_replays_the_first_reply() -> None:
    """Replica B answers A's event with A's reply (same id, time and body), even if the payload
    changed; B logs that change as a producer error."""
    env = {"REDIS_URL": support.redis_url(12)}
    event_id = new_id()
    a, b = ServerProcess(env), ServerProcess(env)
    with ThreadPoolExecutor(2) as pool:  # start-up is the slow part: start both at once
        list(pool.map(ServerProcess.start, (a, b)))
    try:
        first = post(a.url, event_id, "original")
        replayed = post(b.url, event_id, "original")
        changed = post(b.url, event_id, "changed")
    finally:
        a.stop()
        b_log = b.stop()
    assert first.status_code == replayed.status_code == changed.status_code == 200
    assert replayed.headers["ce-id"] == changed.headers["ce-id"] == first.headers["ce-id"]
    assert replayed.headers["ce-time"] == first.headers["ce-time"]
    assert replayed.content == changed.content == first.content
    assert "producer_error_payload_changed" in b_log


async def test_a_replica_killed_mid_event_loses_nothing(tmp_path: Path) -> None:
    """A dies (SIGKILL) while handling; B answers 409 during A's lease, then handles the event."""
    env = {
        "REDIS_URL": support.redis_url(12),
        "DEDUPE_LEASE_SECONDS": "1.0",
        "REDIS_TIMEOUT_SECONDS": "0.5",  # a renewal must fit in the lease
        "HANDLER_TIMEOUT_SECONDS": "0.9",
    }
    event_id = new_id()
    with slow_functions(tmp_path / "a", tmp_path / "b", **env) as [a, b]:
        doomed = asyncio.create_task(asyncio.to_thread(post, a.url, event_id, "q", sleep=30))
        await wait_for_file(a.started_marker)
        a.proc.send_signal(signal.SIGKILL)
        with pytest.raises(httpx.HTTPError):
            await doomed
        during_lease = await asyncio.to_thread(post, b.url, event_id, "q")
        # the dead replica's lease is a PX on the Redis server, expired by its clock
        await asyncio.sleep(1.1)
        after_lease = await asyncio.to_thread(post, b.url, event_id, "q")
    assert during_lease.status_code == 409
    assert after_lease.status_code == 200
    assert after_lease.json()["result"] == {"finished": "q"}
