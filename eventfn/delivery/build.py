"""The delivery side of the runtime, chosen once from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventfn.binding import Event
from eventfn.core.config import Settings
from eventfn.delivery.publisher import Publisher
from eventfn.observability.metrics import Metrics
from eventfn.stores.deadletters import DeadLetterStore
from eventfn.stores.outbox import Outbox


@dataclass
class Delivery:
    """The delivery side of the runtime, chosen once from the settings."""

    publisher: Publisher | None  # None without K_SINK
    deadletters: DeadLetterStore
    components: list[Any]  # in start order; they stop in reverse (redeliverer first)


def build_delivery(
    settings: Settings,
    *,
    redis: Any = None,
    metrics: Metrics | None = None,
    observe: Callable[[Event], None] | None = None,
) -> Delivery:
    """Dead-letter store always; with K_SINK also the outbox, the publisher and the redeliverer.

    Redis when `redis_url` is set (shared by replicas; on the runtime's client `redis`, or on
    clients of their own), SQLite files under `data_dir` otherwise.
    """
    from eventfn.delivery.redeliver import Redeliverer
    from eventfn.stores.deadletters import RedisDeadLetterStore, SQLiteDeadLetterStore
    from eventfn.stores.outbox import RedisOutbox, SQLiteOutbox
    from eventfn.stores.redis import client_for

    deadletters: DeadLetterStore
    outbox: Outbox
    url = settings.redis_url
    if url:
        deadletters = RedisDeadLetterStore(client_for(settings, redis))
    else:
        deadletters = SQLiteDeadLetterStore(settings.data_dir / "deadletters.sqlite3")
    if not settings.k_sink:
        return Delivery(None, deadletters, [deadletters])
    if url:
        outbox = RedisOutbox(client_for(settings, redis))
    else:
        outbox = SQLiteOutbox(settings.data_dir / "outbox.sqlite3")
    publisher = Publisher(
        settings,
        sink=settings.k_sink,
        outbox=outbox,
        deadletters=deadletters,
        metrics=metrics,
        observe=observe,
    )
    redeliverer = Redeliverer(
        outbox,
        publisher,
        poll=settings.outbox_poll_seconds,
        batch=settings.outbox_batch_size,
        flush=settings.publish_flush_seconds,
    )
    return Delivery(publisher, deadletters, [deadletters, outbox, publisher, redeliverer])
