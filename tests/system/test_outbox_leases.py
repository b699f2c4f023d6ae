"""Outbox leases that cover the work: two replicas on one Redis outbox never send one event at once.

Each replica's redeliverer takes parked events one at a time, leased for the one attempt it
makes; a pass of many events to a slow sink takes far longer than any one lease.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventfn.binding import Event
from eventfn.delivery.build import Delivery, build_delivery
from tests.helpers import support
from tests.helpers.faults import recording_sink
from tests.helpers.support import cloud_event, suite_settings, until

pytestmark = [pytest.mark.chaos, pytest.mark.redis, pytest.mark.server]


def event() -> Event:
    return cloud_event(source="/tests/leases")


@contextlib.asynccontextmanager
async def replica(**settings: Any) -> AsyncIterator[Delivery]:
    """The delivery side of one replica (outbox, publisher, redeliverer), started."""
    delivery = build_delivery(suite_settings(**settings))
    for component in delivery.components:
        await component.start()
    try:
        yield delivery
    finally:
        for component in reversed(delivery.components):
            await component.stop()


async def test_two_redeliverers_never_send_the_same_parked_event_at_once(tmp_path: Path) -> None:
    """20 parked events, a sink taking 0.4 s each, two replicas: no send of an id overlaps."""
    with recording_sink(delay=0.4) as sink:
        settings = {"redis_url": support.redis_url(7), "k_sink": sink.url, "data_dir": tmp_path,
                    "publish_timeout_seconds": 1.0, "outbox_poll_seconds": 0.05,
                    "publish_flush_seconds": 1.0}  # fmt: skip
        async with replica(**settings) as a:
            assert a.publisher is not None
            events = [event() for _ in range(20)]
            for parked in events:
                await a.publisher.outbox.park(parked, attempts=1, delay=0, error="down")
            async with replica(**settings):
                await sink.until(lambda s: len(set(s.accepted)) == len(events), within=30)
            outbox = a.publisher.outbox

            async def emptied() -> bool:
                return await outbox.depth() == 0

            # Every entry removed, so nothing is left that a replica could take and send again;
            # once this replica has stopped too, no attempt is in flight.
            await until(emptied, what="every delivered event gone from the outbox")
    arrived, accepted = sink.snapshot()
    assert sink.max_overlap == 1
    assert sorted(set(accepted)) == sorted(e.id for e in events)
    assert len(arrived) == len(events)  # nothing sent twice: every lease covered its attempt
