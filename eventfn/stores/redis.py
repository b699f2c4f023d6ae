"""The Redis client: one per process, shared by the stores, of the mode the settings ask for.

One client and one connection pool serve the dedupe store, the outbox, the dead letters and the
live feed of a runtime: the runtime builds it (`build_client`) and hands it to each store it
builds (`hold`); the pool closes when the last of its holders closes it. The client is the one
`REDIS_MODE` asks for:

    standalone  REDIS_URL                          redis.asyncio.Redis, a BlockingConnectionPool
    cluster     REDIS_URL names any one node        redis.asyncio.cluster.RedisCluster
    sentinel    REDIS_SENTINELS + _SENTINEL_MASTER  redis.asyncio.sentinel.Sentinel.master_for
                (REDIS_URL gives db, password, TLS)

The pool is sized from `REDIS_MAX_CONNECTIONS` and, in standalone mode, blocks (up to
`REDIS_TIMEOUT_SECONDS`) when every connection is taken instead of failing at once: a burst of
deliveries waits for a connection, it is never answered as an outage.

How a store answers an outage is `eventfn.stores.redis_outage`; how it batches its commands,
`eventfn.stores.redis_pipeline`.

redis-py is imported on first use: it costs ~140 ms, paid only by replicas configured for Redis.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from eventfn.observability.logs import get_logger

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from eventfn.core.config import Settings

log = get_logger("eventfn.stores.redis")


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
    """The shared standalone and cluster client classes, defined on first use: redis-py is
    imported only by replicas configured for Redis (see the module docstring)."""
    global _CLASSES  # noqa: PLW0603 - a cache of two classes, made once
    if _CLASSES is None:
        import redis.asyncio as aioredis
        from redis.asyncio.cluster import ClusterPipeline, RedisCluster

        class BoundedClusterPipeline(ClusterPipeline):
            """A Cluster pipeline held to its client's deadline, like its commands."""

            __slots__ = ()

            async def execute(self, *args: Any, **kwargs: Any) -> Any:
                async with asyncio.timeout(self.cluster_client.deadline):  # type: ignore[attr-defined]
                    return await super().execute(*args, **kwargs)

        class SharedRedis(_Shared, aioredis.Redis):  # type: ignore[misc]  # redis-py's mixins
            """A standalone or Sentinel client the stores of a runtime share (the ignore: two of
            redis-py's own command mixins type `command_info` differently)."""

        class SharedRedisCluster(_Shared, _Deadline, RedisCluster):  # type: ignore[misc]  # idem
            """A Cluster client the stores share, its commands held to one deadline."""

            pipeline_class = BoundedClusterPipeline

        _CLASSES = (SharedRedis, SharedRedisCluster)
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


def hold(client: aioredis.Redis) -> aioredis.Redis:
    """`client` for one more store: each holder closes it once with `aclose`, and the pool
    closes with the last of them (the runtime builds one client and hands it to every store)."""
    shared: Any = client
    shared.holders += 1
    return client


def client_for(settings: Settings, shared: aioredis.Redis | None = None) -> aioredis.Redis:
    """A store's client: the runtime's `shared` one held once more, else one of its own."""
    if shared is not None:
        return hold(shared)
    return hold(build_client(settings))


def redis_client(url: str, timeout: float) -> aioredis.Redis:
    """A client of its own for `url` (a tool, a test), held once: `aclose` closes it.

    Connects lazily (no I/O here).
    """
    from eventfn.core.config import Settings

    return hold(build_client(Settings(redis_url=url, redis_timeout_seconds=timeout)))


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


def database_of(url: str | None) -> str:
    """The database number a Redis URL names ('0' when it names none)."""
    if not url:
        return "0"
    path = urlsplit(url).path.strip("/")
    return path or "0"
