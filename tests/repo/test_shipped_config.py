"""The function as `eventing/` deploys it: the ConfigMap's settings, the Secret's, SinkBinding's.

A real `python -m eventfn` gets every setting of `eventing/configmap.yaml` as it is, and the keys
of `eventing/secret.example.yaml`. Only what a pod mounts or what names the cluster's services
is moved to the test's own: the service CA and the tokens under the test's folder, the issuer
(HTTPS, a CA of the test's own), a TLS Redis with a password, a sink that demands TLS and the
SinkBinding's token. So OIDC on deliveries, API keys on the facade, Redis dedupe over TLS and
publishing with an identity all run together, with the limits and timeouts that ship.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml

from eventfn.dispatch.replies import reply_id
from tests.helpers.faults import RedisCertificates, own_redis
from tests.helpers.oidc import Issuer
from tests.helpers.sink import https_sink
from tests.helpers.support import (
    RESPONSE,
    ROOT,
    SUITE_REGISTRY,
    ServerProcess,
    binary_headers,
    dumps,
    new_id,
    query,
)

pytestmark = [pytest.mark.server, pytest.mark.redis]

EVENTING = ROOT / "eventing"
API_KEY = "a-facade-key-of-the-test"
SINK_TOKEN = "eyJhbGciOiJSUzI1NiJ9.the-sinkbinding-token.sig"
REDIS_PASSWORD = "s3cret-of-the-redis"
# What a pod mounts or what names the cluster: moved to the test's own, nothing else.
MOVED = {
    "DATA_DIR",
    "FUNCTION_REGISTRY",
    "KNATIVE_CUSTOM_CERTS_DIR",
    "OIDC_CA_FILE",
    "OIDC_ISSUER",
    "OIDC_JWKS_TOKEN_FILE",
    "OIDC_SINK_TOKEN_FILE",
}


def shipped(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EVENTING / name).read_text())
    return document


def test_the_shipped_configmap_turns_oidc_on_and_the_secret_holds_redis_and_the_keys() -> None:
    config = shipped("configmap.yaml")["data"]
    assert config["OIDC_AUDIENCE"], "the shipped ConfigMap turns OIDC on"
    assert config.keys() >= MOVED
    assert {"REDIS_URL", "API_KEYS"} <= shipped("secret.example.yaml")["stringData"].keys()


def test_the_function_serves_as_eventing_deploys_it(tmp_path: Path) -> None:
    config: dict[str, str] = {k: str(v) for k, v in shipped("configmap.yaml")["data"].items()}
    audience = config["OIDC_AUDIENCE"]
    issuer_ca, sink_ca = trustme.CA(), trustme.CA()
    files = tmp_path / "mounted"
    files.mkdir()
    (files / "service-ca.crt").write_bytes(issuer_ca.cert_pem.bytes())
    (files / "sa-token").write_text("sa-token-for-jwks\n")
    (files / "sink-token").write_text(SINK_TOKEN + "\n")
    (files / "knative-custom-certs").mkdir()
    certificates = RedisCertificates(files)
    sink = https_sink(sink_ca, SINK_TOKEN)
    issuer = Issuer(issuer_ca)
    with issuer.serving(), own_redis(tls=certificates.server, password=REDIS_PASSWORD) as redis:
        env = {
            **config,
            # moved: what the pod mounts, the issuer the cluster names, and the function's code
            # (the suite's own, where the image holds the user's)
            "DATA_DIR": str(tmp_path / "data"),
            "FUNCTION_REGISTRY": SUITE_REGISTRY,
            "KNATIVE_CUSTOM_CERTS_DIR": str(files / "knative-custom-certs"),
            "OIDC_CA_FILE": str(files / "service-ca.crt"),
            "OIDC_ISSUER": issuer.url,
            "OIDC_JWKS_TOKEN_FILE": str(files / "sa-token"),
            "OIDC_SINK_TOKEN_FILE": str(files / "sink-token"),
            # the Secret's keys
            "REDIS_URL": certificates.url(redis, password=REDIS_PASSWORD),
            "API_KEYS": API_KEY,
            # what the SinkBinding injects
            "K_SINK": sink.url,
            "K_CA_CERTS": sink_ca.cert_pem.bytes().decode(),
        }
        changed = {name for name, value in config.items() if env[name] != value}
        assert changed == MOVED  # every other setting exactly as it ships
        server = ServerProcess(env).start()
        try:
            results = exercise(server.url, issuer.token(aud=audience))
            # the facade's answer and the reply nobody asked for
            published = asyncio.run(sink.wait_for(2, within=15))
        finally:
            output = server.stop()
            sink.stop()
    assert server.proc is not None
    assert server.proc.returncode == 0, output[-2000:]
    assert results["ready"] == 200
    assert results["reply"] == (200, RESPONSE)
    assert results["redelivered_same_id"]
    assert results["without_token"] == 401
    assert results["unrequested"] == 202
    assert results["facade"] == (200, 401)
    assert results["metrics"] == 200
    assert reply_id("/tests", results["unrequested_id"]) in {r.id for r in published}
    for request in published:
        assert request.headers["authorization"] == f"Bearer {SINK_TOKEN}"
        assert request.headers["ce-type"] == RESPONSE
    assert issuer.jwks_authorization == "Bearer sa-token-for-jwks"
    assert REDIS_PASSWORD not in output
    assert '"level":"error"' not in output, output[-2000:]


def exercise(url: str, token: str) -> dict[str, Any]:
    """Broker deliveries (with a reply, a redelivery, none requested, no token), the facade
    with and without its key, readiness and metrics."""
    bearer = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=10) as client:
        event = {**binary_headers(id=new_id()), **bearer, "prefer": "reply"}
        first = client.post("/", headers=event, content=dumps(query("shipped")))
        again = client.post("/", headers=event, content=dumps(query("shipped")))
        unrequested_id = new_id()
        unrequested = client.post(
            "/", headers={**binary_headers(id=unrequested_id), **bearer}, content=dumps(query())
        )
        without = client.post("/", headers=binary_headers(id=new_id()), content=dumps(query()))
        facade = client.post("/api/v1/query", json=query(), headers={"x-api-key": API_KEY})
        no_key = client.post("/api/v1/query", json=query())
        return {
            "ready": client.get("/health/readiness").status_code,
            "reply": (first.status_code, first.headers.get("ce-type")),
            "redelivered_same_id": again.headers.get("ce-id") == first.headers.get("ce-id"),
            "unrequested": unrequested.status_code,
            "unrequested_id": unrequested_id,
            "without_token": without.status_code,
            "facade": (facade.status_code, no_key.status_code),
            "metrics": client.get("/metrics").status_code,
        }
