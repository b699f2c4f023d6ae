"""A real, local OIDC issuer for tests: generated keys, real tokens, discovery + JWKS over HTTP.

Nothing is mocked: the function fetches `/.well-known/openid-configuration` and the JWKS from a
stdlib HTTP server on a free loopback port, and verifies tokens signed with keys made here. With
a CA (`Issuer(ca)`) it serves HTTPS with a certificate that CA issued for 127.0.0.1, as the
cluster's API server does with the service CA.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import trustme
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.helpers.support import free_port, tls_server_context

AUDIENCE = "knative-python-backend.default.svc"
SUBJECT = "system:serviceaccount:knative-eventing:mt-broker-ingress-oidc"


class Issuer:
    """Signing keys by `kid`, of which `published` appear in the JWKS the server hands out."""

    def __init__(self, ca: trustme.CA | None = None) -> None:
        self.ca = ca
        self.keys: dict[str, tuple[Any, str]] = {
            "rsa-1": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
            "rsa-2": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
            "ec-1": (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        }
        self.published = {"rsa-1", "ec-1"}
        self.jwks_requests = 0
        self.failing = False
        self.delay = 0.0  # seconds the JWKS takes to answer (a slow issuer)
        self.jwks_authorization: str | None = None  # what the last JWKS request sent
        self.claimed_issuer: str | None = None  # a discovery document naming someone else
        self.port = free_port()
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{self.port}"

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in sorted(self.published):
            private, alg = self.keys[kid]
            algorithm = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
            jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def token(
        self,
        *,
        kid: str | None = "rsa-1",
        aud: str | list[str] = AUDIENCE,
        iss: str | None = None,
        sub: str = SUBJECT,
        expires_in: float = 300,
        not_before_in: float | None = None,
        signing_key: Any = None,
        omit: tuple[str, ...] = (),
    ) -> str:
        """A real JWT; every claim can be made wrong on purpose."""
        now = time.time()
        claims: dict[str, Any] = {
            "iss": iss or self.url,
            "aud": aud,
            "sub": sub,
            "iat": int(now),
            "exp": int(now + expires_in),
        }
        if not_before_in is not None:
            claims["nbf"] = int(now + not_before_in)
        for name in omit:
            claims.pop(name)
        private, alg = self.keys[kid or "rsa-1"]
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(claims, signing_key or private, algorithm=alg, headers=headers)

    @contextlib.contextmanager
    def serving(self) -> Iterator[Issuer]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if issuer.failing:
                    self._send(500, {"error": "down"})
                elif self.path == "/.well-known/openid-configuration":
                    claimed = issuer.claimed_issuer or issuer.url
                    self._send(200, {"issuer": claimed, "jwks_uri": f"{issuer.url}/keys"})
                elif self.path == "/keys":
                    issuer.jwks_requests += 1
                    # a slow issuer: its server thread holds the answer (another thread)
                    time.sleep(issuer.delay)
                    issuer.jwks_authorization = self.headers.get("authorization")
                    self._send(200, issuer.jwks())
                else:
                    self._send(404, {})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.ca is not None:
            context = tls_server_context(self.ca)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def reset(self) -> None:
        self.published = {"rsa-1", "ec-1"}
        self.jwks_requests = 0
        self.failing = False
        self.delay = 0.0
        self.jwks_authorization = None
        self.claimed_issuer = None


def unsigned_token(issuer: Issuer) -> str:
    """An `alg: none` token with otherwise perfect claims."""
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 300}
    return jwt.encode(claims, None, algorithm="none", headers={"kid": "rsa-1"})
