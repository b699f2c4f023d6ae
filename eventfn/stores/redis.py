"""What every Redis store shares: one client per process, its errors, how an outage is answered.

One client and one connection pool serve the dedupe store, the outbox, the dead letters and the
live feed of a runtime (`shared_redis` around the runtime's build: every `redis_client` call in
it gets the same client; the pool closes when the last of its holders closes it). The client
is the one `REDIS_MODE` asks for:

    standalone  REDIS_URL                          redis.asyncio.Redis, a BlockingConnectionPool
    cluster     REDIS_URL names any one node        redis.asyncio.cluster.RedisCluster
    sentinel    REDIS_SENTINELS + _SENTINEL_MASTER  redis.asyncio.sentinel.Sentinel.master_for
                (REDIS_URL gives db, password, TLS)

The pool is sized from `REDIS_MAX_CONNECTIONS` and, in standalone mode, blocks (up to
`REDIS_TIMEOUT_SECONDS`) when every connection is taken instead of failing at once: a burst of
deliveries waits for a connection, it is never answered as an outage.

`AutoPipeline` sends the commands issued in one turn of the event loop together, on one
connection shared by all of them (multiplexed, `eventfn.stores.redis_mux`): under load the dedupe
claims (and completions) of every request the loop read in that turn share one write.

redis-py is imported on first use: it costs ~140 ms, paid only by replicas configured for Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Coroutine, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from eventfn.core.errors import StoreUnavailable
from eventfn.observability.logs import get_logger
from eventfn.stores.redis_mux import Link

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from eventfn.core.config import Settings

log = get_logger("eventfn.stores.redis")


RETRY_AFTER = 1  # seconds: Redis blips are short; the broker's own backoff grows from there
# Most commands in one Cluster pipeline; more wait for the next one.
MAX_PIPELINE = 512

# The client every `redis_client` call shares while a runtime is being built (`shared_redis`).
_SHARED: ContextVar[tuple[str, Any] | None] = ContextVar("eventfn_shared_redis", default=None)


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


class _Shared:
    """A client held by several stores: `aclose` closes it when the last holder lets go."""

    holders = 0
    # Clients closed with this one: in Sentinel mode, the connections to the sentinels.
    companions: tuple[Any, ...] = ()

    async def aclose(self, *args: Any, **kwargs: Any) -> None:
        self.holders -= 1
        if self.holders <= 0:
            await super().aclose(*args, **kwargs)  # type: ignore[misc]
            for companion in self.companions:
                await companion.aclose()


class _Deadline:
    """A Cluster client whose every command ends within `deadline` seconds, retries included.

    redis-py's Cluster client retries a command on a connection error or a timeout, and
    rediscovers the slots from the nodes in between, each step with a socket timeout of its
    own: with one node frozen, a command took 17 s to fail with `REDIS_TIMEOUT_SECONDS=2`.
    The whole command (a pipeline's too), retries and rediscovery included, is held to the one
    deadline here.
    """

    deadline: float | None = None
    pipeline_class: type[Any]

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with asyncio.timeout(self.deadline):
            return await super().execute_command(*args, **kwargs)  # type: ignore[misc]

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        if shard_hint:  # what redis-py answers, kept
            return super().pipeline(transaction, shard_hint)  # type: ignore[misc]
        return self.pipeline_class(self, transaction)


def _classes() -> tuple[type[Any], type[Any]]:
    """The shared standalone and cluster client classes (built on first use: redis' import)."""
    global _CLASSES  # noqa: PLW0603 - a cache of two classes, made once
    if _CLASSES is None:
        import redis.asyncio as aioredis
        from redis.asyncio.cluster import ClusterPipeline, RedisCluster

        async def execute(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            async with asyncio.timeout(pipe.cluster_client.deadline):
                return await ClusterPipeline.execute(pipe, *args, **kwargs)

        bounded = type(
            "BoundedClusterPipeline", (ClusterPipeline,), {"__slots__": (), "execute": execute}
        )
        _CLASSES = (
            type("SharedRedis", (_Shared, aioredis.Redis), {}),
            type(
                "SharedRedisCluster",
                (_Shared, _Deadline, RedisCluster),
                {"pipeline_class": bounded},
            ),
        )
    return _CLASSES


_CLASSES: tuple[type[Any], type[Any]] | None = None


def _sentinel_nodes(value: list[str]) -> list[tuple[str, int]]:
    nodes = []
    for item in value:
        host, _, port = item.rpartition(":")
        nodes.append((host or item, int(port) if port else 26379))
    return nodes


def build_client(settings: Settings) -> aioredis.Redis:
    """The client `settings` ask for (REDIS_MODE); connects lazily (no I/O here)."""
    from redis.asyncio.connection import BlockingConnectionPool, parse_url

    url = settings.redis_url
    if url is None:
        raise ValueError("Redis is not configured (REDIS_URL)")
    timeout = settings.redis_timeout_seconds
    common: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "health_check_interval": 30,
    }
    standalone, cluster = _classes()
    if settings.redis_mode == "cluster":
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # One retry at once (a node that failed over answers the next try); the deadline of
        # `_Deadline` bounds the whole command anyway.
        client: Any = cluster.from_url(
            url,
            max_connections=settings.redis_max_connections,
            retry=Retry(NoBackoff(), 1),
            **common,
        )
        client.deadline = timeout
    elif settings.redis_mode == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        options: dict[str, Any] = {
            k: v for k, v in parse_url(url).items() if k not in ("host", "port", "path")
        }
        if options.pop("connection_class", None) is not None and url.startswith("rediss:"):
            options["ssl"] = True
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            _sentinel_nodes(settings.redis_sentinels),
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
            **common,
        )
        client = sentinel.master_for(
            settings.redis_sentinel_master or "",
            redis_class=standalone,
            max_connections=settings.redis_max_connections,
            **options,
        )
        client.companions = tuple(sentinel.sentinels)
    else:
        pool = BlockingConnectionPool.from_url(
            url, max_connections=settings.redis_max_connections, timeout=timeout, **common
        )
        client = standalone(connection_pool=pool)
        client.auto_close_connection_pool = True
    client.holders = 0
    return client  # type: ignore[no-any-return]


@contextlib.contextmanager
def shared_redis(settings: Settings) -> Iterator[None]:
    """While building a runtime: every `redis_client` for `settings.redis_url` shares one client."""
    if not settings.redis_url:
        yield
        return
    token = _SHARED.set((settings.redis_url, build_client(settings)))
    try:
        yield
    finally:
        _SHARED.reset(token)


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    """A client for `url`: the runtime's shared one while it is built, else a standalone one.

    Connects lazily (no I/O here). Each caller closes it with `aclose` once; the shared client's
    pool closes with the last of them.
    """
    from eventfn.core.config import Settings

    shared = _SHARED.get()
    client: Any
    if shared is not None and shared[0] == url:
        client = shared[1]
    else:
        client = build_client(Settings(redis_url=url, redis_timeout_seconds=timeout))
    client.holders += 1
    return client  # type: ignore[no-any-return]


def is_cluster(client: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def hash_tagged(client: Any, prefix: str) -> str:
    """`prefix` with its name in braces on a Cluster (`knfn:{outbox}:`): one slot for all keys.

    A script or transaction that touches several keys needs them in one slot; outside a
    Cluster the key names stay as they always were.
    """
    if not is_cluster(client):
        return prefix
    head, _, rest = prefix.rstrip(":").partition(":")
    return f"{head}:{{{rest}}}:" if rest else f"{{{head}}}:"


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


class AutoPipeline:
    """Commands issued during one turn of the event loop, sent to Redis together.

    redis-py has no automatic pipelining, hence this. A command sent on its own through the
    client (pool checkout, pure-Python packing, the read, the response callbacks) costs about
    ten times the CPU of one sent here. On a standalone or Sentinel client the commands are
    packed by hiredis as they are issued and written at the end of the turn on one multiplexed
    connection (`eventfn.stores.redis_mux`), which several turns' commands share while in
    flight. On a Cluster the turn's commands go through redis-py's cluster pipeline, which
    routes each to its slot's node and follows MOVED/ASK. Commands are raw argument tuples and
    answer raw replies (`SET` answers b"OK", or the old value with `GET`). A command's error
    reaches its own caller only; a failure of the connection (lost, timed out) reaches every
    caller waiting on it, and the next command connects again.
    """

    def __init__(self, client: Any) -> None:
        from hiredis import pack_command  # comes with redis[hiredis], a dependency

        self._client = client
        self._pool = None if is_cluster(client) else client.connection_pool
        kwargs = {} if self._pool is None else self._pool.connection_kwargs
        self._timeout: float | None = kwargs.get("socket_timeout")
        self._pack = pack_command
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._link: Link | None = None
        self._connecting: asyncio.Task[None] | None = None

    def call(self, *command: Any) -> asyncio.Future[Any]:
        """Queue `command` (e.g. `"SET", key, value, "PX", 1000`) for this turn's write."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        if self._pool is None:
            self._pending.append((command, future))
        else:
            self._pending.append((self._pack(command), future))
        return future

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._pool is None:
            batch, self._pending = self._pending[:MAX_PIPELINE], self._pending[MAX_PIPELINE:]
            if self._pending:
                asyncio.get_running_loop().call_soon(self._flush)
            self._spawn(self._cluster(batch))
            return
        link = self._link
        if link is not None and link.open and link.loop is asyncio.get_running_loop():
            batch, self._pending = self._pending, []
            link.send(batch)
        elif self._connecting is None:  # the pending commands wait for the connection
            self._connecting = self._spawn(self._connect())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return task

    async def _connect(self) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        try:
            connection = await self._pool.get_connection()  # type: ignore[union-attr]
        except BaseException as exc:  # handed to every command waiting for it
            closed = isinstance(exc, asyncio.CancelledError)  # by aclose: a closed link's error
            _fail(
                self._pending,
                RedisConnectionError("the Redis connection was closed") if closed else exc,
            )
            self._pending = []
            if closed:
                raise
            return
        finally:
            self._connecting = None
        self._link = Link(self._pool, connection, self._timeout)
        self._flush()

    async def _cluster(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    pipe.execute_command(*command, **{"get": True} if "GET" in command else {})
                results: list[Any] = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # handed to every caller of the batch
            _fail(batch, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller gave up waiting
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def aclose(self) -> None:
        """Close the multiplexed connection (the client's pool is closed by its holders).

        A connection still being made is abandoned: the commands waiting for it get
        `ConnectionError` (a 503 upstream), and redis-py's pool disconnects what it had begun.
        """
        connecting = self._connecting
        if connecting is not None:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
        if self._link is not None:
            await self._link.aclose()
            self._link = None


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def database_of(url: str | None) -> str:
    """The database number a Redis URL names ('0' when it names none)."""
    if not url:
        return "0"
    path = urlsplit(url).path.strip("/")
    return path or "0"


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
