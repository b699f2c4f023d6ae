"""What the deployed configuration needs around the function: a Redis and an OIDC issuer.

`eventing/` deploys the function with `REDIS_URL` (dedupe shared by replicas) and OIDC on
(`OIDC_AUDIENCE`): every broker delivery carries an RS256 service-account token. The benchmark
gives both, on loopback, for the run:

* a `redis-server` of its own on a free port (no persistence), so no other user of the
  machine's Redis changes the figures and nothing of theirs is touched;
* an issuer: an RSA key made here, its JWKS served as a static file by `python -m http.server`,
  and one token signed with it, sent on every request the way Knative's dispatcher does (it
  caches a token per audience until shortly before it expires: the same bytes every time).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import cpus

AUDIENCE = "knative-python-backend.default.svc"
ISSUER = "https://kubernetes.default.svc"
SUBJECT = "system:serviceaccount:knative-eventing:mt-broker-ingress-oidc"
TOKEN_LIFETIME = 3600  # seconds; Knative asks for one hour


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {port}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private `redis-server` on a free loopback port; yields its URL (database 0)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    argv += ["no", "--daemonize", "no"]
    proc = subprocess.Popen(  # noqa: S603
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=cpus.preexec("others"),  # noqa: PLW1509 - no threads here
    )
    try:
        _wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


def flush(url: str) -> None:
    """Empty the benchmark's Redis between two loads, so each starts from the same state."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


@dataclass(frozen=True)
class Issuer:
    """The benchmark's OIDC issuer: where its JWKS is served and a token it signed."""

    jwks_url: str
    token: str

    def env(self) -> dict[str, str]:
        """The function's OIDC settings for this issuer, as `eventing/` sets them."""
        return {
            "OIDC_AUDIENCE": AUDIENCE,
            "OIDC_ISSUER": ISSUER,
            "OIDC_JWKS_URL": self.jwks_url,
        }


def sign_token(private_key: object, kid: str, lifetime: float = TOKEN_LIFETIME) -> str:
    """An RS256 service-account token for the function's audience, like Knative's."""
    import jwt

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "nbf": now}
    claims["exp"] = now + int(lifetime)
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


@contextlib.contextmanager
def issuer() -> Iterator[Issuer]:
    """A fresh RSA key, its JWKS served on loopback, and one token signed with it."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    with tempfile.TemporaryDirectory(prefix="bench-jwks-") as folder:
        document = {"keys": [{**jwk, "kid": "bench-1", "alg": "RS256", "use": "sig"}]}
        (Path(folder) / "jwks.json").write_text(json.dumps(document))
        port = free_port()
        argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        argv += ["--directory", folder]
        proc = subprocess.Popen(  # noqa: S603 - our interpreter, the stdlib's server
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
            preexec_fn=cpus.preexec("others"),  # noqa: PLW1509 - no threads here
        )
        try:
            _wait_for_port(port, proc, "the JWKS server")
            yield Issuer(f"http://127.0.0.1:{port}/jwks.json", sign_token(key, "bench-1"))
        finally:
            _stop(proc)
