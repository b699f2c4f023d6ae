"""Real local Redis topologies for tests: a 3-master Cluster, and a master + replica + 3 sentinels.

Every server is a `redis-server` process of its own on a free loopback port below 55536 (a
Cluster node's bus is its port + 10000), without persistence, in a temporary folder, and is
stopped by its PID. Nothing here touches the machine's own Redis.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import redis

from tests.helpers.support import wait_until

MASTER_NAME = "knfn-test-master"


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` ports free on loopback, each with its bus port (+10000) free as well."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45000)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return found


def ready_within(check: Callable[[], object], what: str, within: float = 20.0) -> None:
    """`wait_until` `check` holds, a Redis error or a refused connection counting as not yet:
    real redis-server and Sentinel processes coming up send no event to wait on."""
    wait_until(check, within, what, ignoring=(redis.RedisError, OSError), every=0.05)


@dataclass
class Servers:
    """The processes of one topology, by port."""

    folder: Path
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, port: int, *args: str) -> None:
        argv = [redis_server_binary(), *args] if args and args[0].endswith(".conf") else None
        if argv is None:
            argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
            argv += ["--save", "", "--appendonly", "no", "--dir", str(self.folder), *args]
        self.procs[port] = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        ready_within(lambda: redis.Redis(port=port, socket_timeout=1).ping(), f":{port} answers")

    def kill(self, port: int) -> None:
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


def cluster_state_ok(port: int) -> bool:
    return bool(redis.Redis(port=port).cluster("info")["cluster_state"] == "ok")


@contextlib.contextmanager
def cluster() -> Iterator[list[int]]:
    """Three masters sharing the 16384 slots; yields their ports."""
    with cluster_servers() as (_, ports):
        yield ports


@contextlib.contextmanager
def cluster_servers() -> Iterator[tuple[Servers, list[int]]]:
    """`cluster`, with its processes (for the tests that kill or freeze nodes)."""
    ports = free_ports(3)
    with tempfile.TemporaryDirectory(prefix="knfn-cluster-") as folder:
        servers = Servers(Path(folder))
        try:
            for port in ports:
                servers.start(
                    port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"
                )
            create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
            create += ["--cluster-replicas", "0", "--cluster-yes"]
            subprocess.run(create, check=True, capture_output=True, timeout=60)
            for port in ports:
                ready_within(partial(cluster_state_ok, port), f"the cluster's state ok at :{port}")
            yield servers, ports
        finally:
            servers.stop()


@dataclass
class SentinelSet:
    """A master, its replica and three sentinels watching them."""

    servers: Servers
    master: int
    replica: int
    sentinels: list[int]

    @property
    def sentinel_setting(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)

    def current_master(self) -> int:
        client = redis.Redis(port=self.sentinels[0], socket_timeout=1)
        return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])


@contextlib.contextmanager
def sentinel_set() -> Iterator[SentinelSet]:
    """Master + replica + 3 sentinels (quorum 2, down after 1 s); yields the set."""
    master, replica, *sentinels = free_ports(5)
    with tempfile.TemporaryDirectory(prefix="knfn-sentinel-") as folder:
        servers = Servers(Path(folder))
        try:
            servers.start(master)
            servers.start(replica, "--replicaof", "127.0.0.1", str(master))
            ready_within(
                lambda: redis.Redis(port=replica).info("replication")["master_link_status"] == "up",
                "the replica's link to its master up",
            )
            for port in sentinels:
                conf = Path(folder) / f"sentinel-{port}.conf"
                conf.write_text(
                    f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                    f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                    f"sentinel parallel-syncs {MASTER_NAME} 1\n"
                )
                servers.start(port, str(conf), "--sentinel")
            found = SentinelSet(servers, master, replica, sentinels)
            ready_within(
                lambda: all(
                    redis.Redis(port=p).sentinel_master(MASTER_NAME)["num-other-sentinels"] == 2
                    for p in sentinels
                ),
                "every sentinel seeing the two others",
            )
            yield found
        finally:
            servers.stop()
