"""Publishing in a secured cluster: the OIDC token and the TLS trust SinkBinding gives the function.

The sink here plays a Broker with `authentication-oidc` and `transport-encryption` on: HTTPS with
a certificate of a CA made in the test, and a bearer token it requires (401 without it). The
function gets what a SinkBinding injects, under the same names: `K_SINK` (https), `K_CA_CERTS`
(PEM), trust bundles under a directory (`/knative-custom-certs` in a pod) and the token file
(`/oidc/token` in a pod), the last two moved under the test's folder by their settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from eventfn.delivery import identity
from eventfn.testing import app_client, isolated_settings
from tests.helpers.sink import Sink, https_sink
from tests.helpers.support import (
    RESPONSE,
    ServerProcess,
    binary_headers,
    dumps,
    make_app,
    query,
    suite_client,
    suite_settings,
    until,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9.the-sinkbinding-token.sig"


@dataclass
class SinkBinding:
    """What a SinkBinding gives the function: environment variables and mounted files."""

    sink: Sink
    env: dict[str, str]
    token_file: Path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The same, as settings of an in-process function."""
        return {
            "k_sink": self.env["K_SINK"],
            "k_ca_certs": self.env.get("K_CA_CERTS"),
            "oidc_sink_token_file": Path(self.env["OIDC_SINK_TOKEN_FILE"]),
            "knative_custom_certs_dir": Path(self.env["KNATIVE_CUSTOM_CERTS_DIR"]),
            "publish_attempts": 1,
            "publish_timeout_seconds": 2.0,
            **overrides,
        }

    def rotate(self, token: str) -> None:
        """Rotate the token as a projected volume does: a new file swapped in by a rename."""
        fresh = self.token_file.with_name(".token.new")
        fresh.write_text(token)
        os.replace(fresh, self.token_file)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SinkBinding]:
    """A sink demanding TLS (its CA in K_CA_CERTS) and the token (in the mounted file)."""
    ca = trustme.CA()
    sink = https_sink(ca, TOKEN)
    oidc = tmp_path / "oidc"
    oidc.mkdir()
    (oidc / "token").write_text(TOKEN + "\n")
    bundles = tmp_path / "knative-custom-certs"
    bundles.mkdir()
    env = {
        "K_SINK": sink.url,
        "K_CA_CERTS": ca.cert_pem.bytes().decode(),
        "OIDC_SINK_TOKEN_FILE": str(oidc / "token"),
        "KNATIVE_CUSTOM_CERTS_DIR": str(bundles),
    }
    try:
        yield SinkBinding(sink, env, oidc / "token")
    finally:
        sink.stop()


@pytest.mark.server
async def test_a_function_with_a_sinkbindings_environment_publishes_to_a_secured_sink(
    cluster: SinkBinding, tmp_path: Path
) -> None:
    """A real process given OIDC + TLS by SinkBinding: a reply without `Prefer: reply` reaches
    the sink over TLS, with the token."""
    server = ServerProcess({**cluster.env, "DATA_DIR": str(tmp_path / "data")}).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.post("/", headers=binary_headers(), content=dumps(query()))
        [received] = await cluster.sink.wait_for(1)
    finally:
        server.stop()
    assert response.status_code == 202
    assert received.headers["authorization"] == f"Bearer {TOKEN}"
    assert received.headers["ce-type"] == RESPONSE


async def test_a_rotated_token_is_sent_from_the_next_publish_on(
    cluster: SinkBinding, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token file is re-read when it changes (a new inode), not before."""
    monkeypatch.setattr(identity, "_CHECK_SECONDS", 0.0)
    async with suite_client(**cluster.settings(data_dir=tmp_path)) as client:
        await client.post("/api/v1/query", json=query("first"))
        await cluster.sink.wait_for(1)
        cluster.sink.token = "rotated-token"
        cluster.rotate("rotated-token")
        await client.post("/api/v1/query", json=query("second"))
        received = await cluster.sink.wait_for(2)
    assert [r.headers["authorization"] for r in received] == [
        f"Bearer {TOKEN}",
        "Bearer rotated-token",
    ]


async def test_an_unchanged_token_file_is_not_read_again(
    cluster: SinkBinding, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between changes the token comes from memory: the file is read once."""
    monkeypatch.setattr(identity, "_CHECK_SECONDS", 0.0)
    reads: list[Path] = []
    read_text = Path.read_text

    def counting(path: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(path)
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    token = identity.SinkToken(cluster.token_file, expected=True)
    assert [token.header() for _ in range(5)] == [f"Bearer {TOKEN}"] * 5
    assert reads == [cluster.token_file]


async def test_without_the_sinks_ca_nothing_is_sent_and_the_event_is_kept(
    cluster: SinkBinding, tmp_path: Path
) -> None:
    """The system CAs alone do not trust the cluster's CA: the TLS handshake fails, the event
    waits in the outbox."""
    settings = cluster.settings(k_ca_certs=None, data_dir=tmp_path)
    async with suite_client(**settings) as client:
        await client.post("/api/v1/query", json=query())
        app_outbox = client._transport.app.state.runtime.publisher.outbox  # type: ignore[attr-defined]
        depth = await app_outbox.depth()
    assert cluster.sink.received == []
    assert depth == 1


async def test_a_trust_bundle_mounted_in_the_directory_is_trusted(tmp_path: Path) -> None:
    """A CA in a PEM file under the trust-bundle directory is trusted like K_CA_CERTS."""
    ca = trustme.CA()
    sink = https_sink(ca, token=None)
    # As a projected ConfigMap: a file per key (any name) in a timestamped directory, with
    # `..data` pointing at it and the keys linked from the top.
    certs = tmp_path / "certs"
    data = certs / "..2026_12_02_12_00_00.1"
    data.mkdir(parents=True)
    ca.cert_pem.write_to_path(str(data / "ca.crt"))
    (certs / "..data").symlink_to(data.name)
    (certs / "ca.crt").symlink_to("..data/ca.crt")
    (certs / "notes").write_text("not a certificate")
    try:
        settings = {
            "k_sink": sink.url,
            "knative_custom_certs_dir": tmp_path / "certs",
            "oidc_sink_token_file": tmp_path / "no-token",
            "data_dir": tmp_path,
        }
        async with suite_client(**settings) as client:
            await client.post("/api/v1/query", json=query())
            [received] = await sink.wait_for(1)
    finally:
        sink.stop()
    assert "authorization" not in received.headers  # no token file: none sent


async def test_a_refused_identity_waits_in_the_outbox_until_the_token_comes(
    cluster: SinkBinding, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No token: the sink's 401 is counted, the event neither retried at once nor dead-lettered
    but kept in the outbox; once SinkBinding's token is there, the next try delivers it."""
    monkeypatch.setattr(identity, "_CHECK_SECONDS", 0.0)
    cluster.token_file.unlink()
    settings = cluster.settings(
        data_dir=tmp_path,
        publish_attempts=4,
        publish_backoff_max_seconds=0.05,
        publish_refused_hold_seconds=0.3,
        outbox_poll_seconds=0.05,
    )
    app = make_app(suite_settings(**settings))
    async with app_client(app) as client:
        await client.post("/api/v1/query", json=query())
        await cluster.sink.wait_for(1)
        publisher = app.state.runtime.publisher
        # The publish is over once the refusal ends it: no retry in memory is left to come, and
        # the event waits in the outbox with its hold ahead of it.
        await until(lambda: publisher.pending == 0, what="the refused publish ended")
        refused_once = len(cluster.sink.received)
        letters = (await client.get("/api/v1/deadletters")).json()["items"]
        metrics = (await client.get("/metrics")).text
        cluster.token_file.write_text(TOKEN)
        received = await cluster.sink.wait_for(2)
    assert refused_once == 1
    assert letters == []
    assert "function_publish_unauthorized_total 1.0" in metrics
    assert received[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_refusal_hold_shorter_than_the_retry_cap_is_refused_at_start_up() -> None:
    """The hold must exceed the in-memory backoff cap, or a refused event is retried at once."""
    with pytest.raises(ValueError, match="PUBLISH_REFUSED_HOLD_SECONDS"):
        isolated_settings(publish_refused_hold_seconds=1, publish_backoff_max_seconds=10)


@pytest.mark.server
def test_a_missing_token_file_is_a_start_up_warning_not_a_crash(
    cluster: SinkBinding, tmp_path: Path
) -> None:
    """The process starts and is ready; its log says the token is missing, and where."""
    cluster.token_file.unlink()
    server = ServerProcess({**cluster.env, "DATA_DIR": str(tmp_path / "data")}).start()
    out = server.stop()
    assert '"event":"sink_token_missing"' in out
    assert str(cluster.token_file) in out


@pytest.mark.parametrize(
    ("mounted", "oidc_audience", "expected"),
    [(False, None, False), (True, None, True), (False, "aud", True)],
    ids=["laptop", "sinkbinding-mounted", "oidc-on"],
)
def test_a_token_is_expected_only_where_oidc_is_on_or_mounted(
    tmp_path: Path, mounted: bool, oidc_audience: str | None, expected: bool
) -> None:
    """The token file setting alone (the ConfigMap always sets it) does not expect a token."""
    from eventfn.delivery.publisher import Publisher
    from eventfn.stores.outbox import SQLiteOutbox

    directory = tmp_path / "oidc"
    if mounted:
        directory.mkdir()
    settings = isolated_settings(
        oidc_sink_token_file=directory / "token",
        oidc_audience=oidc_audience,
        oidc_jwks_url="http://127.0.0.1:9/keys" if oidc_audience else None,
    )
    outbox = SQLiteOutbox(tmp_path / "outbox.sqlite3")
    publisher = Publisher(settings, sink="http://127.0.0.1:9/", outbox=outbox)
    assert publisher.client.token.expected is expected
