"""Fault-injection helpers: a sink that hangs or fails on cue, a Redis of our own to freeze, and
small file systems to fill or mount read-only.

`RecordingSink` records every request the moment it arrives (so a hanging one counts as "in
flight"), how many sends of one event id overlapped, and which ids it accepted. `OwnRedis` is a
`redis-server` on a free loopback port, started and stopped by PID, that a test may SIGSTOP,
SIGCONT, kill and restart without touching the Redis other tests share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.helpers.sink import Received, Sink
from tests.helpers.support import free_port, until, wait_until


class RecordingSink(Sink):
    """A `Sink` whose behaviour a test switches: "ok", "hang" or "fail" (503).

    A hanging request waits until the mode changes (or `max_hang` seconds), then gets a 503: its
    sender gave up long ago (or died), so it never counts as accepted.
    `arrived` lists ids on arrival, `accepted` those answered 2xx.
    """

    def __init__(self, mode: str = "ok", *, delay: float = 0.0, max_hang: float = 60.0) -> None:
        super().__init__()
        self.mode = mode
        self.delay = delay
        self.max_hang = max_hang
        self.arrived: list[str] = []
        self.accepted: list[str] = []
        self.bodies: dict[str, bytes] = {}  # the body of each accepted id
        self.max_overlap = 0  # the most sends of one id in flight at once
        self._in_flight: Counter[str] = Counter()
        self._changed = threading.Condition(self._lock)

    def set_mode(self, mode: str) -> None:
        with self._changed:
            self.mode = mode
            self._changed.notify_all()

    def _serve(self, headers: dict[str, str], body: bytes) -> int:
        event_id = headers.get("ce-id", "")
        with self._changed:
            self.received.append(Received(headers, body))
            self.arrived.append(event_id)
            self._in_flight[event_id] += 1
            self.max_overlap = max(self.max_overlap, self._in_flight[event_id])
            hung = self.mode == "hang"
            self._changed.wait_for(lambda: self.mode != "hang", timeout=self.max_hang)
        try:
            if self.delay:
                time.sleep(self.delay)  # a slow peer, simulated in the sink's server thread
            with self._lock:
                if self.mode == "ok" and not hung:
                    self.accepted.append(event_id)
                    self.bodies[event_id] = body
                    return 202
                return 503
        finally:
            with self._lock:
                self._in_flight[event_id] -= 1

    def start(self) -> RecordingSink:
        super().start()
        return self

    def stop(self) -> None:
        self.set_mode("fail")  # hanging handlers end
        super().stop()

    def snapshot(self) -> tuple[list[str], list[str]]:
        with self._lock:
            return list(self.arrived), list(self.accepted)

    async def until(self, check: Callable[[RecordingSink], bool], within: float) -> None:
        """Wait (bounded, without blocking the loop) until `check(self)` holds."""

        def holds() -> bool:
            with self._lock:
                return check(self)

        await until(holds, within, f"arrived {len(self.arrived)}, accepted {len(self.accepted)}")


@contextlib.contextmanager
def recording_sink(mode: str = "ok", **options: Any) -> Iterator[RecordingSink]:
    sink = RecordingSink(mode, **options).start()
    try:
        yield sink
    finally:
        sink.stop()


class OwnRedis:
    """A `redis-server` of the test's own on a free loopback port: freeze, thaw, kill, restart.

    With `tls` (its certificate, key and the CA it trusts for clients) it listens for TLS only
    (`rediss://`), and `auth_clients="yes"` makes it demand a client certificate; with
    `password` it demands that (`requirepass`; `url` does not carry it).
    """

    def __init__(
        self,
        tls: tuple[Path, Path, Path] | None = None,
        auth_clients: str = "no",
        password: str | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("REQUIRE_REDIS"):
                pytest.fail("REQUIRE_REDIS is set but redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.tls = tls
        self.auth_clients = auth_clients
        self.password = password
        self.url = f"{'rediss' if tls else 'redis'}://127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="own-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OwnRedis:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.dir)]  # fmt: skip
        if self.tls is not None:
            cert, key, ca = self.tls
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                     "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                     "--tls-auth-clients", self.auth_clients]  # fmt: skip
        if self.password is not None:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listens() -> bool:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True

        # a real redis-server starting sends no event: its port is tried until it connects
        wait_until(listens, 10, f"redis-server listening on :{self.port}", ignoring=(OSError,))
        return self

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def restart(self) -> None:
        """Start again on the same port (empty: nothing is saved)."""
        self.kill()
        self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.thaw()
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCertificates:
    """For a TLS `OwnRedis`: a CA, a certificate for the server at 127.0.0.1 and one for the
    function (a client certificate), as files, and the `REDIS_URL` that names them."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = directory / "redis-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.server_cert, self.server_key = self._issue(directory, "redis-server", "127.0.0.1")
        self.client_cert, self.client_key = self._issue(
            directory, "redis-client", "knative-python-backend"
        )

    def _issue(self, directory: Path, name: str, identity: str) -> tuple[Path, Path]:
        issued = self.ca.issue_cert(identity)
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(key))
        return cert, key

    @property
    def server(self) -> tuple[Path, Path, Path]:
        """What `OwnRedis(tls=...)` takes: its certificate, its key, the CA of its clients."""
        return self.server_cert, self.server_key, self.ca_file

    def url(
        self,
        server: OwnRedis,
        *,
        client_cert: bool = False,
        trusted: bool = True,
        password: str | None = None,
    ) -> str:
        """`server`'s `rediss://` URL with redis-py's TLS options (the CA unless not `trusted`,
        the client certificate) and `password`, as a Secret would hold it."""
        url = server.url if password is None else server.url.replace("://", f"://:{password}@")
        options = [f"ssl_ca_certs={self.ca_file}"] if trusted else []
        if client_cert:
            options += [f"ssl_certfile={self.client_cert}", f"ssl_keyfile={self.client_key}"]
        return url + ("?" + "&".join(options) if options else "")


@contextlib.contextmanager
def own_redis(
    tls: tuple[Path, Path, Path] | None = None,
    auth_clients: str = "no",
    password: str | None = None,
) -> Iterator[OwnRedis]:
    server = OwnRedis(tls, auth_clients, password).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def tmpfs(*options: str, size: str = "256k") -> Iterator[Path]:
    """A tmpfs of `size` mounted with `options` (e.g. "ro") for a DATA_DIR that can be filled or
    refuse writes; the test is skipped where mounting is not allowed (it needs root)."""
    with tempfile.TemporaryDirectory(prefix="knfn-tmpfs-") as folder:
        mount_binary, umount_binary = shutil.which("mount"), shutil.which("umount")
        if mount_binary is None or umount_binary is None:
            pytest.skip("mount is not installed")
        flags = ",".join((f"size={size}", *options))
        mount = [mount_binary, "-t", "tmpfs", "-o", flags, "tmpfs", folder]
        try:
            done = subprocess.run(mount, capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"cannot mount a tmpfs here: {exc}")
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        try:
            yield Path(folder)
        finally:
            umount = [umount_binary, "-l", folder]
            subprocess.run(umount, capture_output=True, timeout=10, check=False)


def fill(disk: Path) -> Path:
    """Fill the file system of `disk` to the last byte; returns the file to remove to free it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 512, 1):  # big blocks, then what is left of the last one
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler
