"""How a Redis store answers when Redis cannot serve it: the errors, the 503, the log lines.

Every store built on Redis (dedupe, outbox, dead letters, the feed) catches `transient_errors()`
(every error class redis-py defines, the socket's and the deadlines) and answers them with the
`StoreUnavailable` 503 the broker retries, through one `Outage` per store that logs an outage
once (then at most every `every` seconds) rather than once per request. `usable` is the
readiness check of a Redis: reachable, writable and of the configured mode.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from eventfn.core.errors import StoreUnavailable
from eventfn.observability.logs import get_logger
from eventfn.stores.redis import is_cluster

log = get_logger("eventfn.stores.redis")

RETRY_AFTER = 1  # seconds: Redis blips are short; the broker's own backoff grows from there


def transient_errors() -> tuple[type[Exception], ...]:
    """What an unreachable, failing-over or overloaded Redis raises: a 503, never a 500.

    Every class `redis.exceptions` defines, not only `RedisError`: redis-py has several roots
    (a Cluster with no reachable node raises `RedisClusterException`, which is not a
    `RedisError`), and an error of the library is never a reason to answer 500. Then the
    socket's own errors and the deadlines (`OSError`, `TimeoutError`).
    """
    import redis.exceptions

    library = tuple(
        kind
        for kind in vars(redis.exceptions).values()
        if isinstance(kind, type)
        and issubclass(kind, Exception)
        and kind.__module__ == redis.exceptions.__name__
    )
    return (*library, OSError, asyncio.TimeoutError)


class WrongMode(Exception):
    """The Redis reached is not of the mode configured: a Cluster node without REDIS_MODE."""


async def usable(client: Any, outage: Outage) -> bool:
    """True when `client` can serve the stores: reachable, writable, and of the right mode.

    A cluster node reached as a standalone server answers PING but MOVED to most keys, and a
    replica left behind by a failover is read-only: both are a Redis the function cannot use.
    A failed check is a failure of `outage` (a readiness probe every few seconds logs no line
    of its own), a passing one its end: a replica out of the Service's endpoints gets no
    delivery to end it with.
    """
    errors: tuple[type[Exception], ...] = (WrongMode, *outage.errors)
    try:
        if not is_cluster(client):
            info = await client.info("cluster")
            if info.get("cluster_enabled"):
                raise WrongMode("a Cluster node, reached as one server: set REDIS_MODE=cluster")
        await client.set(f"knfn:ready:{os.getpid()}", b"1", px=5000)
    except errors as exc:
        outage.failed(exc)
        return False
    outage.ok()
    return True


class Outage:
    """How one Redis store says it cannot reach Redis: once per outage, not once per request.

    `with outage:` around a store's Redis calls turns its transient errors into the 503 the
    broker retries (`StoreUnavailable`, with Retry-After), and a clean exit marks Redis usable
    again; the dedupe hot path calls `failed` and `ok` itself, to spare a context manager.

    The first failure of an outage logs `redis_unavailable`; while it lasts, at most one
    `redis_still_unavailable` line every `every` seconds counts the failures since it began;
    the first success after it logs `redis_recovered` with how long it lasted. Logged per
    failed call instead, a Redis down under 5,000 deliveries/s means 5,000 warnings a second,
    beside each delivery's own 503 line, and nothing says when it is back.

    Built by a Redis store (so redis is imported already): `errors` is what it catches.
    """

    __slots__ = ("_clock", "_every", "_logged", "errors", "failures", "since", "what")

    def __init__(self, what: str, *, every: float = 10.0, clock: Any = time.monotonic) -> None:
        self.what = what
        self.errors = transient_errors()
        self._every = every
        self._clock = clock
        self.since: float | None = None  # when the outage began; None while Redis answers
        self.failures = 0  # failed calls since it began
        self._logged = 0.0

    def failed(self, exc: BaseException) -> StoreUnavailable:
        """The 503 for a call that failed with `exc`; logged as above."""
        now = self._clock()
        self.failures += 1
        error, detail = type(exc).__name__, str(exc)
        if self.since is None:
            self.since = self._logged = now
            log.warning("redis_unavailable", store=self.what, error=error, detail=detail)
        elif now - self._logged >= self._every:
            self._logged = now
            log.warning(
                "redis_still_unavailable",
                store=self.what,
                error=error,
                detail=detail,
                failures=self.failures,
                seconds=round(now - self.since, 1),
            )
        return StoreUnavailable(
            f"the {self.what} store is unreachable; retry later", retry_after=RETRY_AFTER
        )

    def ok(self) -> None:
        """A call succeeded: the end of the outage, if there was one."""
        if self.since is not None:
            log.info(
                "redis_recovered",
                store=self.what,
                failures=self.failures,
                seconds=round(self._clock() - self.since, 1),
            )
            self.since, self.failures = None, 0

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> None:
        if exc is None:
            self.ok()
        elif isinstance(exc, self.errors):
            raise self.failed(exc) from None
