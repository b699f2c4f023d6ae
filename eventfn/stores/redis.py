"""What every Redis store shares: the client, its errors, and how an outage is answered.

redis-py is imported on first use: it costs ~140 ms, paid only by replicas configured for Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventfn.core.errors import StoreUnavailable
from eventfn.observability.logs import get_logger

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = get_logger("eventfn.stores.redis")


RETRY_AFTER = 1  # seconds: Redis blips are short; the broker's own backoff grows from there


def redis_errors() -> type[Exception]:
    """redis' base exception class, imported on first use (see the TYPE_CHECKING import)."""
    from redis.exceptions import RedisError

    return RedisError


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    """A client for `url` with explicit timeouts; connects lazily (no I/O here)."""
    import redis.asyncio as aioredis

    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
    )
    return client


def unavailable(what: str, exc: Exception) -> StoreUnavailable:
    """The 503 an unreachable Redis turns into (the exception's text stays in the logs)."""
    log.warning("redis_unavailable", store=what, error=type(exc).__name__, detail=str(exc))
    return StoreUnavailable(
        f"the {what} store is unreachable; retry later", retry_after=RETRY_AFTER
    )
